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


