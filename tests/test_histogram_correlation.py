import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings, strategies as st

from regutils.stats import Corr, event_histogram, histogram_correlation


def test_event_histogram_by_hand():
    np.testing.assert_allclose(event_histogram([0, 0, 1, 3]), [0.5, 0.25, 0.0, 0.25])
    np.testing.assert_allclose(event_histogram(np.array([[2, 2]]), n_bins=4), [0, 0, 1, 0])


def test_histogram_correlation_by_hand():
    # train: 6 samples with counts 0,0,0,0,1,2 -> p = (4, 1, 1)/6
    # test:  4 samples with counts 0,0,0,1     -> q = (3, 1, 0)/4, padded to the 3 bins of train
    p, q = np.array([4, 1, 1]) / 6, np.array([3, 1, 0]) / 4
    pc, qc = p - p.mean(), q - q.mean()
    expected = (pc @ qc) / np.sqrt((pc @ pc) * (qc @ qc))
    c = histogram_correlation([0, 0, 0, 0, 1, 2], [0, 0, 0, 1], n_boot=0)
    assert c.r == pytest.approx(expected, abs=1e-12)
    assert c.n == 3 and np.isnan(c.low) and np.isnan(c.high)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=60),
       st.lists(st.integers(0, 6), min_size=1, max_size=60))
def test_matches_loop_reference(a, b):
    top = max(max(a), max(b))
    p = [sum(v == k for v in a) / len(a) for k in range(top + 1)]
    q = [sum(v == k for v in b) / len(b) for k in range(top + 1)]
    if top < 2 or len(set(p)) == 1 or len(set(q)) == 1:
        with pytest.warns(RuntimeWarning):
            assert np.isnan(histogram_correlation(a, b, n_boot=0).r)
    else:
        assert histogram_correlation(a, b, n_boot=0).r == pytest.approx(
            scipy.stats.pearsonr(p, q).statistic, abs=1e-9)


def test_same_distribution_correlates_and_interval_is_seeded():
    rng = np.random.default_rng(0)
    a = rng.poisson(0.7, 3000)
    b = rng.poisson(0.7, 1000)
    c = histogram_correlation(a, b, n_boot=300, seed=4)
    assert isinstance(c, Corr)
    assert c.r > 0.99 and c.low <= c.r <= c.high <= 1
    assert c == histogram_correlation(a, b, n_boot=300, seed=4)
    # a very different shape correlates less
    assert histogram_correlation(a, rng.integers(0, 6, 1000), n_boot=0).r < 0.5


def test_bootstrap_matches_resampling_reference():
    # the multinomial shortcut has the distribution of histograms of resampled samples
    rng = np.random.default_rng(1)
    a, b = rng.poisson(1.0, 200), rng.poisson(1.3, 150)
    c = histogram_correlation(a, b, n_boot=2000, ci=0.9, seed=2)
    top = max(a.max(), b.max()) + 1
    boot = []
    for _ in range(2000):
        pa = np.bincount(rng.choice(a, a.size), minlength=top) / a.size
        pb = np.bincount(rng.choice(b, b.size), minlength=top) / b.size
        boot.append(np.corrcoef(pa, pb)[0, 1])
    low, high = np.nanpercentile(boot, [5, 95])
    assert c.low == pytest.approx(low, abs=0.02) and c.high == pytest.approx(high, abs=0.02)


def test_bad_inputs():
    with pytest.raises(ValueError, match="non-negative integers"):
        histogram_correlation([0, 1.5, 2], [0, 1, 2])
    with pytest.raises(ValueError, match="non-negative integers"):
        event_histogram([-1, 0, 2])
    with pytest.raises(ValueError, match="empty"):
        histogram_correlation([], [0, 1, 2])
    with pytest.raises(ValueError, match="n_bins"):
        event_histogram([0, 3], n_bins=3)
    with pytest.raises(ValueError, match="ci"):
        histogram_correlation([0, 1, 2], [0, 1, 2], ci=1.0)
