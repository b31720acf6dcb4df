import numpy as np
import pytest
import scipy.stats

from regutils.stats import (Corr, correlation_matrix, mean_off_diagonal, pearson,
                            ranking_agreement, spearman)


def correlated_pair(rng, rho, n):
    cov = [[1.0, rho], [rho, 1.0]]
    x, y = rng.multivariate_normal([0.0, 0.0], cov, size=n).T
    return x, y


def test_point_estimates_equal_scipy():
    rng = np.random.default_rng(0)
    x, y = correlated_pair(rng, 0.4, 150)
    y_ties = np.round(y)  # ties exercise average ranks
    assert pearson(x, y, n_boot=0).r == pytest.approx(
        scipy.stats.pearsonr(x, y).statistic, abs=1e-12)
    assert spearman(x, y_ties, n_boot=0).r == pytest.approx(
        scipy.stats.spearmanr(x, y_ties).statistic, abs=1e-12)


@pytest.mark.parametrize("corr", [pearson, spearman])
def test_interval_contains_estimate_and_is_seeded(corr):
    rng = np.random.default_rng(1)
    x, y = correlated_pair(rng, 0.5, 120)
    c = corr(x, y, n_boot=500, seed=3)
    assert isinstance(c, Corr) and c.n == 120
    assert c.low < c.r < c.high
    assert corr(x, y, n_boot=500, seed=3) == c
    assert corr(x, y, n_boot=500, seed=4) != c
    narrow = corr(x, y, n_boot=500, ci=0.5, seed=3)
    assert c.low < narrow.low < narrow.high < c.high


def test_bootstrap_replicates_are_correlations_of_resampled_pairs():
    # the chunked, vectorized bootstrap against a loop over the same resamples
    rng = np.random.default_rng(5)
    x, y = correlated_pair(rng, 0.3, 40)
    n_boot, seed = 300, 11
    idx = np.random.default_rng(seed).integers(0, x.size, size=(n_boot, x.size))
    for corr, ref in ((pearson, scipy.stats.pearsonr), (spearman, scipy.stats.spearmanr)):
        boot = np.array([ref(x[i], y[i]).statistic for i in idx])
        low, high = np.percentile(boot, [2.5, 97.5])
        c = corr(x, y, n_boot=n_boot, seed=seed)
        assert (c.low, c.high) == pytest.approx((low, high), abs=1e-12)


def test_bootstrap_chunking_keeps_results(monkeypatch):
    import regutils.stats as stats
    rng = np.random.default_rng(6)
    x, y = correlated_pair(rng, 0.3, 50)
    whole = pearson(x, y, n_boot=200, seed=2)
    monkeypatch.setattr(stats, "_BOOT_ELEMENTS", 50 * 7)  # 7 replicates per chunk
    assert pearson(x, y, n_boot=200, seed=2) == whole


def test_bootstrap_coverage():
    rho, n, reps = 0.6, 200, 200
    rng = np.random.default_rng(7)
    covered = 0
    for rep in range(reps):
        x, y = correlated_pair(rng, rho, n)
        c = pearson(x, y, n_boot=200, seed=rep)
        covered += c.low <= rho <= c.high
    assert 0.88 <= covered / reps <= 0.99


def test_no_bootstrap_gives_nan_interval():
    c = pearson([1.0, 2.0, 4.0, 3.0], [2.0, 1.0, 5.0, 4.0], n_boot=0)
    assert np.isnan(c.low) and np.isnan(c.high) and np.isfinite(c.r)


@pytest.mark.parametrize("corr", [pearson, spearman])
def test_constant_input_warns_and_returns_nan(corr):
    with pytest.warns(RuntimeWarning, match="constant"):
        c = corr(np.ones(10), np.arange(10.0))
    assert np.isnan(c.r) and np.isnan(c.low) and np.isnan(c.high) and c.n == 10


def test_bad_inputs():
    with pytest.raises(ValueError, match="same length"):
        pearson(np.arange(5.0), np.arange(6.0))
    with pytest.raises(ValueError, match="ci"):
        spearman(np.arange(5.0), np.arange(5.0), ci=1.5)
    with pytest.raises(ValueError, match="n_boot"):
        pearson(np.arange(5.0), np.arange(5.0), n_boot=-1)
    with pytest.raises(ValueError, match="finite"):
        pearson([1.0, np.nan, 3.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="method"):
        correlation_matrix(np.ones((2, 3)), method="kendall")


def test_correlation_matrix_against_pairwise_scipy():
    rng = np.random.default_rng(8)
    vectors = rng.normal(size=(4, 60))
    vectors[1] += vectors[0]
    vectors[3] = np.round(vectors[3])
    for method, ref in (("pearson", scipy.stats.pearsonr), ("spearman", scipy.stats.spearmanr)):
        m = correlation_matrix(vectors, method=method)
        expected = np.array([[ref(a, b).statistic for b in vectors] for a in vectors])
        np.testing.assert_allclose(m, expected, atol=1e-12)


def test_mean_off_diagonal():
    m = np.array([[1.0, 0.2, 0.4], [0.2, 1.0, 0.6], [0.4, 0.6, 1.0]])
    assert mean_off_diagonal(m) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="square"):
        mean_off_diagonal(np.ones((2, 3)))


def test_ranking_agreement_identical_and_reversed():
    scores = np.array([0.91, 0.85, 0.88, 0.70, 0.95])
    same = ranking_agreement(scores, scores * 0.9 + 0.01)  # same order, other scale
    assert same == {"spearman": pytest.approx(1.0), "map": pytest.approx(1.0)}
    reversed_ = ranking_agreement(scores, -scores)
    assert reversed_["spearman"] == pytest.approx(-1.0)
    assert reversed_["map"] < 1.0


def test_ranking_agreement_map_by_hand():
    # full ranking A, B, C; subset ranking B, C, A
    # k=1: relevant {A}, A at position 3 -> AP = 1/3
    # k=2: relevant {A, B}, hits at positions 1 and 3 -> AP = (1/1 + 2/3) / 2 = 5/6
    # k=3: everything relevant -> AP = 1;  mAP = (1/3 + 5/6 + 1) / 3 = 13/18
    result = ranking_agreement([3.0, 2.0, 1.0], [1.0, 3.0, 2.0])
    assert result["map"] == pytest.approx(13 / 18)
    assert result["spearman"] == pytest.approx(-0.5)
    # lower-is-better scores (error rates) give the same answer on negated inputs
    assert ranking_agreement([-3.0, -2.0, -1.0], [-1.0, -3.0, -2.0],
                             higher_is_better=False)["map"] == pytest.approx(13 / 18)




# --- agreement of many runs, and of two distributions


def test_mean_off_diagonal_interval_against_a_loop():
    from regutils.stats import mean_off_diagonal_interval
    rng = np.random.default_rng(8)
    base = rng.normal(size=60)
    vectors = base + rng.normal(scale=0.7, size=(4, 60))
    vectors[2] = np.round(vectors[2])  # ties for the ranks
    n_boot, seed = 200, 4
    idx = np.random.default_rng(seed).integers(0, 60, size=(n_boot, 60))
    for method in ("pearson", "spearman"):
        boot = [mean_off_diagonal(correlation_matrix(vectors[:, i], method=method)) for i in idx]
        c = mean_off_diagonal_interval(vectors, method=method, n_boot=n_boot, seed=seed)
        assert c.r == pytest.approx(mean_off_diagonal(correlation_matrix(vectors, method=method)))
        assert (c.low, c.high) == pytest.approx(tuple(np.percentile(boot, [2.5, 97.5])), abs=1e-12)
        assert c.low < c.r < c.high and c.n == 60


def test_mean_off_diagonal_interval_chunks_and_no_bootstrap(monkeypatch):
    import regutils.stats as stats
    rng = np.random.default_rng(9)
    vectors = rng.normal(size=(3, 40)) + rng.normal(size=40)
    whole = stats.mean_off_diagonal_interval(vectors, n_boot=100, seed=1)
    monkeypatch.setattr(stats, "_BOOT_ELEMENTS", 3 * 40 * 6)  # 6 replicates per chunk
    assert stats.mean_off_diagonal_interval(vectors, n_boot=100, seed=1) == whole
    none = stats.mean_off_diagonal_interval(vectors, n_boot=0)
    assert none.r == whole.r and np.isnan(none.low) and np.isnan(none.high)


def test_histogram_pearson_by_hand():
    from regutils.stats import histogram_pearson
    # unit bins on 0..3; a: counts 1,2,3,4 of 10; b: counts 2,4,6,8 of 20 -> same shape
    a = np.repeat([0, 1, 2, 3], [1, 2, 3, 4])
    b = np.repeat([0, 1, 2, 3], [2, 4, 6, 8])
    edges = np.arange(-0.5, 4.5)
    assert histogram_pearson(a, b, bins=edges, n_boot=0).r == pytest.approx(1.0)
    c = np.repeat([0, 1, 2, 3], [4, 3, 2, 1])
    assert histogram_pearson(a, c, bins=edges, n_boot=0).r == pytest.approx(-1.0)
    d = np.repeat([0, 1, 2, 3], [1, 3, 3, 1])  # densities .1 .2 .3 .4 vs .125 .375 .375 .125
    ref = scipy.stats.pearsonr([0.1, 0.2, 0.3, 0.4], [0.125, 0.375, 0.375, 0.125]).statistic
    r = histogram_pearson(a, d, bins=edges, n_boot=0)
    assert r.r == pytest.approx(ref) and r.n == 4


def test_histogram_pearson_bootstrap_against_numpy_histograms(monkeypatch):
    import regutils.stats as stats
    from regutils.stats import histogram_pearson
    rng = np.random.default_rng(10)
    a = rng.gamma(2.0, size=80)
    b = rng.gamma(2.5, size=50)
    n_boot, seed = 150, 3
    edges = np.histogram_bin_edges(np.concatenate([a, b]), bins=7)
    draw = np.random.default_rng(seed)
    boot = []
    for _ in range(n_boot):  # the same draws, in the same order, one replicate at a time
        ia, ib = draw.integers(0, a.size, size=(1, a.size))[0], draw.integers(0, b.size, size=(1, b.size))[0]
        ha = np.histogram(a[ia], bins=edges, density=True)[0]
        hb = np.histogram(b[ib], bins=edges, density=True)[0]
        boot.append(scipy.stats.pearsonr(ha, hb).statistic)
    monkeypatch.setattr(stats, "_BOOT_ELEMENTS", 1)  # one replicate per chunk: the loop's order of draws
    c = histogram_pearson(a, b, bins=7, n_boot=n_boot, seed=seed)
    assert (c.low, c.high) == pytest.approx(tuple(np.percentile(boot, [2.5, 97.5])), abs=1e-12)
    assert c.r == pytest.approx(scipy.stats.pearsonr(np.histogram(a, edges, density=True)[0],
                                                     np.histogram(b, edges, density=True)[0]).statistic)


def test_histogram_pearson_bad_inputs():
    from regutils.stats import histogram_pearson
    with pytest.raises(ValueError, match="3 bins"):
        histogram_pearson([0, 1], [0, 1], bins=2)
    with pytest.raises(ValueError, match="non-empty"):
        histogram_pearson([], [0, 1])
    with pytest.warns(RuntimeWarning):
        assert np.isnan(histogram_pearson([0, 1, 2, 3], [1, 2, 2, 3], bins=np.arange(-0.5, 4.5)).r)  # a is flat


def test_correlation_matrix_constant_row_is_nan_even_with_rounding():
    # 29.10130404 is not exact in binary: np.corrcoef alone leaves rounding noise for this row
    rng = np.random.default_rng(0)
    vectors = np.stack([np.full(50, 29.10130404), rng.normal(size=50), rng.normal(size=50)])
    m = correlation_matrix(vectors)
    assert np.isnan(m[0]).all() and np.isnan(m[:, 0]).all()
    assert m[1, 1] == pytest.approx(1.0) and np.isfinite(m[1, 2])
