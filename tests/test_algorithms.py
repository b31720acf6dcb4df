import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import NotFittedError
from sklearn.neighbors import KNeighborsClassifier
from sklearn.utils.validation import check_is_fitted

from regutils import algorithms, sampling, stats


@pytest.fixture(scope="module")
def small_digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images[:300], d.target[:300], d.images[300:400], d.target[300:400]


# --- the zoo and per-sample correctness -------------------------------------


def test_zoo_names_are_fresh_seeded_estimators(small_digits):
    x_tr, y_tr, x_te, y_te = small_digits
    zoo = algorithms.sklearn_zoo(seed=3)
    assert tuple(zoo) == algorithms.SKLEARN_NAMES
    again = algorithms.sklearn_zoo(seed=3)
    for name, estimator in zoo.items():
        with pytest.raises(NotFittedError):
            check_is_fitted(estimator)
        a = algorithms.per_sample_correct(estimator, x_tr, y_tr, x_te, y_te)
        b = algorithms.per_sample_correct(again[name], x_tr, y_tr, x_te, y_te)
        assert a.dtype == bool and a.shape == (100,)
        np.testing.assert_array_equal(a, b)  # same seed, same predictions
        assert a.mean() > 0.5, name  # every model learns 8x8 digits well above chance (0.1)
        with pytest.raises(NotFittedError):  # the zoo's estimator was cloned, not fitted
            check_is_fitted(estimator)


def test_per_sample_correct_by_hand_on_flattened_images():
    # 1-nearest neighbour: a test image takes the label of the closer training image
    x_tr = torch.tensor([[[[0.0, 0.0], [0.0, 0.0]]], [[[10.0, 10.0], [10.0, 10.0]]]])  # (2, 1, 2, 2)
    y_tr = np.array([0, 1])
    x_te = np.array([[[[1.0, 1.0], [1.0, 1.0]]], [[[9.0, 9.0], [9.0, 9.0]]], [[[2.0, 0.0], [0.0, 0.0]]]])
    y_te = np.array([0, 0, 1])
    got = algorithms.per_sample_correct(KNeighborsClassifier(n_neighbors=1), x_tr, y_tr, x_te, y_te)
    assert got.tolist() == [True, False, False]


def test_per_sample_correct_rejects_mismatched_shapes():
    knn = KNeighborsClassifier(n_neighbors=1)
    with pytest.raises(ValueError, match="labels"):
        algorithms.per_sample_correct(knn, np.zeros((3, 4)), np.zeros(2), np.zeros((2, 4)), np.zeros(2))
    with pytest.raises(ValueError, match="feature"):
        algorithms.per_sample_correct(knn, np.zeros((3, 4)), np.zeros(3), np.zeros((2, 5)), np.zeros(2))


def test_sklearn_correct_fits_on_a_stratified_share_and_keeps_the_test_set():
    from dataclasses import replace

    from regutils.data import DataConfig
    from regutils.train import load_for

    config = DataConfig("cifar10-subset", train_size=300, test_size=100)
    full, n_full = algorithms.sklearn_correct(["KNN"], config, "mlp")
    share, n_share = algorithms.sklearn_correct(["KNN", "decision tree"], config, "mlp", train_size=120, seed=1)
    assert (n_full, n_share) == (300, 120)
    assert set(share) == {"KNN", "decision tree"} and share["KNN"].shape == (100,)
    # by hand: the same models fitted on the 120-image share that load_for gives
    part, whole = load_for(replace(config, train_size=120), "mlp"), load_for(config, "mlp")
    expect = algorithms.per_sample_correct(algorithms.sklearn_zoo(1)["KNN"], part.x_train, part.y_train,
                                           whole.x_test, whole.y_test)
    np.testing.assert_array_equal(share["KNN"], expect)
    expect = algorithms.per_sample_correct(algorithms.sklearn_zoo(0)["KNN"], whole.x_train, whole.y_train,
                                           whole.x_test, whole.y_test)
    np.testing.assert_array_equal(full["KNN"], expect)
    with pytest.raises(ValueError, match="unknown scikit-learn models"):
        algorithms.sklearn_correct(["boosting"], config, "mlp")
    with pytest.raises(ValueError, match="train_size"):
        algorithms.sklearn_correct(["KNN"], config, "mlp", train_size=1)


def test_final_correct_averages_the_last_epoch_over_runs():
    correct = np.array([  # (runs=2, epochs=3, samples=3)
        [[1, 0, 0], [1, 1, 0], [0, 1, 1]],
        [[0, 0, 0], [1, 0, 1], [1, 1, 0]],
    ], dtype=bool)
    np.testing.assert_allclose(algorithms.final_correct(correct), [0.5, 1.0, 0.5])
    np.testing.assert_allclose(algorithms.final_correct(correct[0]), [0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="test_correct"):
        algorithms.final_correct(np.zeros(4, bool))


# --- accuracy table ---------------------------------------------------------


def test_accuracy_table_by_hand():
    correct = {
        "a": np.array([1, 1, 0, 0]),
        "b": np.array([1, 0, 1, 1]),
        "c": np.array([0, 1, 1, 1]),
    }
    table = algorithms.accuracy_table(correct, {"full": None, "first two": [0, 1]})
    assert list(table.index) == ["a", "b", "c"]
    np.testing.assert_allclose(table["accuracy (full)"], [0.5, 0.75, 0.75])
    assert table["rank (full)"].tolist() == [3, 1, 1]  # b and c tie for first
    np.testing.assert_allclose(table["accuracy (first two)"], [1.0, 0.5, 0.5])
    assert table["rank (first two)"].tolist() == [1, 2, 2]


def test_correctness_outside_unit_interval_is_rejected():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        algorithms.accuracy_table({"a": np.array([0, 2]), "b": np.array([1, 1])}, {"full": None})
    with pytest.raises(ValueError, match="at least 2 algorithms"):
        algorithms.accuracy_table({"a": np.array([0, 1])}, {"full": None})


# --- agreement curve --------------------------------------------------------


def _toy(seed=0, k=6, n=300):
    rng = np.random.default_rng(seed)
    bins = rng.integers(0, 6, size=n)
    skill = np.linspace(0.3, 0.9, k)[:, None]
    correct = rng.random((k, n)) < skill  # algorithm j is right with probability skill_j
    return {f"alg{j}": correct[j] for j in range(k)}, bins


def test_curve_matches_a_loop_reference():
    correct, bins = _toy()
    matrix = np.stack(list(correct.values())).astype(float)
    ns, seeds = (2, 7), (0, 1, 5)
    curve = algorithms.subset_agreement_curve(correct, bins, ns, seeds)
    assert len(curve) == 2 * len(ns) * len(seeds)
    for n in ns:
        for seed in seeds:
            subset = sampling.balanced_subset(bins, n, seed=seed)
            expected = stats.ranking_agreement(matrix.mean(1), matrix[:, subset].mean(1))
            row = curve[(curve.method == "balanced") & (curve.n == n) & (curve.seed == seed)].iloc[0]
            assert row["size"] == subset.size
            assert row["spearman"] == pytest.approx(expected["spearman"])
            assert row["map"] == pytest.approx(expected["map"])

            random_idx = np.random.default_rng([seed, n]).choice(bins.size, subset.size, replace=False)
            expected = stats.ranking_agreement(matrix.mean(1), matrix[:, random_idx].mean(1))
            row = curve[(curve.method == "random") & (curve.n == n) & (curve.seed == seed)].iloc[0]
            assert row["size"] == subset.size
            assert row["map"] == pytest.approx(expected["map"])
            assert row["spearman"] == pytest.approx(expected["spearman"])


def test_subset_holding_every_bin_whole_gives_perfect_agreement():
    correct, bins = _toy(seed=2)
    n_all = np.bincount(bins).max()
    curve = algorithms.subset_agreement_curve(correct, bins, [n_all], [0, 1], random_baseline=False)
    assert set(curve.method) == {"balanced"}
    assert (curve["size"] == bins.size).all()
    np.testing.assert_allclose(curve["spearman"], 1.0)
    assert (curve["map"] == 1.0).all()


def test_take_all_bins_enter_whole():
    correct, bins = _toy(seed=3)
    curve = algorithms.subset_agreement_curve(correct, bins, [1], [0], take_all=(0, 1),
                                              random_baseline=False)
    counts = np.bincount(bins)
    assert curve["size"].iloc[0] == counts[0] + counts[1] + 4  # one from each of bins 2..5


def test_tied_subset_gives_nan_spearman_and_is_counted():
    correct = {"a": np.array([1, 1, 0, 1]), "b": np.array([1, 0, 1, 1]), "c": np.array([1, 1, 1, 0])}
    bins = np.array([2, 3, 4, 5])
    # n = 0 with bin 2 taken whole: the subset is sample 0, which every algorithm gets right
    curve = algorithms.subset_agreement_curve(correct, bins, [0], [0], take_all=(2,), random_baseline=False)
    assert np.isnan(curve["spearman"].iloc[0])
    summary = algorithms.summarize_curve(curve)
    assert summary["undefined"].iloc[0] == 1


def test_curve_rejects_bad_bins():
    correct, bins = _toy()
    with pytest.raises(ValueError, match="bins"):
        algorithms.subset_agreement_curve(correct, bins[:-1], [2], [0])
    with pytest.raises(ValueError, match="empty"):
        algorithms.subset_agreement_curve(correct, bins, [], [0])


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 30))
def test_agreement_values_stay_in_range(seed, n):
    correct, bins = _toy(seed=seed, k=4, n=120)
    curve = algorithms.subset_agreement_curve(correct, bins, [n], [seed % 7])
    sizes = curve.groupby("method")["size"].first()
    assert sizes["balanced"] == sizes["random"] <= 120
    assert curve["map"].between(0, 1).all()
    rho = curve["spearman"].dropna()
    assert rho.between(-1, 1).all()


def test_summarize_curve_by_hand():
    curve = pd.DataFrame({
        "method": ["balanced"] * 4 + ["random"] * 2,
        "n": [5, 5, 5, 10, 5, 5],
        "seed": [0, 1, 2, 0, 0, 1],
        "size": [58, 58, 58, 113, 58, 58],
        "spearman": [0.5, 1.0, np.nan, 0.9, 0.2, 0.4],
        "map": [0.6, 0.8, 1.0, 0.95, 0.5, 0.7],
    })
    out = algorithms.summarize_curve(curve, band=(0.0, 1.0)).set_index(["method", "n"])
    row = out.loc[("balanced", 5)]
    assert row["spearman_mean"] == pytest.approx(0.75)  # nan left out
    assert (row["spearman_low"], row["spearman_high"]) == (0.5, 1.0)
    assert row["map_mean"] == pytest.approx(0.8)
    assert (row["map_low"], row["map_high"]) == (0.6, 1.0)
    assert row["undefined"] == 1 and row["size"] == 58
    assert out.loc[("random", 5), "spearman_mean"] == pytest.approx(0.3)
    assert out.loc[("balanced", 10), "undefined"] == 0
    with pytest.raises(ValueError, match="band"):
        algorithms.summarize_curve(curve, band=(0.9, 0.1))


def test_subset_accuracies_and_agreement_by_hand():
    correct = {"a": np.array([1, 1, 0, 1]), "b": np.array([1, 0, 0, 1]), "c": np.array([0, 0, 0, 1])}
    subsets = [np.array([0, 1]), np.array([1, 2, 3]), np.array([3])]
    acc = algorithms.subset_accuracies(correct, subsets)
    assert list(acc.columns) == ["a", "b", "c"]
    np.testing.assert_allclose(acc.to_numpy(), [[1, 0.5, 0], [2 / 3, 1 / 3, 1 / 3], [1, 1, 1]])
    agreement = algorithms.subset_agreement(correct, subsets)
    assert agreement["size"].tolist() == [2, 3, 1]
    full = np.array([0.75, 0.5, 0.25])
    for row, sub in zip(agreement.itertuples(), acc.to_numpy()[:2]):
        expected = stats.ranking_agreement(full, sub)
        assert row.spearman == pytest.approx(expected["spearman"]) and row.map == pytest.approx(expected["map"])
    assert agreement["spearman"].iloc[0] == pytest.approx(1.0)
    assert np.isnan(agreement["spearman"].iloc[2])  # every algorithm gets sample 3: no ranking
    with pytest.raises(ValueError, match="empty"):
        algorithms.subset_accuracies(correct, [])


def test_best_n_takes_the_highest_mean_and_the_smallest_n_on_a_tie():
    summary = pd.DataFrame({"method": ["balanced"] * 4 + ["random"] * 4, "n": [5, 10, 30, 40] * 2,
                            "spearman_mean": [0.8, 0.95, 0.97, 0.96, 0.99, 0.9, 0.9, 0.9],
                            "map_mean": [0.9, 1.0, 1.0, 0.9, 0.5, 0.5, 0.5, 0.5]})
    assert algorithms.best_n(summary) == 30
    assert algorithms.best_n(summary, metric="map") == 10
    assert algorithms.best_n(summary, method="random") == 5
    with pytest.raises(ValueError, match="metric"):
        algorithms.best_n(summary, metric="pearson")
