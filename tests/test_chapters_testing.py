"""regutils.chapters.testing: bins, draws, rankings and verdicts of the testing-acceleration chapter, by hand."""
from types import SimpleNamespace

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

from regutils.chapters import testing  # noqa: E402
from regutils.claims import CONTEXT, NOT_COMPARABLE, NOT_REPRODUCED, REPRODUCED  # noqa: E402
from regutils.profiles import settings  # noqa: E402

# one run, 4 epochs, 5 test samples (columns)
RECORD = np.array([[[1, 0, 1, 1, 1],
                    [1, 0, 0, 1, 0],
                    [1, 0, 1, 0, 0],
                    [1, 0, 0, 1, 0]]], dtype=bool)
# CBGL 4, 0, 2, 3, 1; events 0, 0, 2, 1, 1; centre of the CBGL range 2; ranges 4 and 2:
# sample 0 right half-axis, 1 left half-axis, 2 at 90 deg, 3 at atan2(1/2, 1/4) = 63.4 deg, 4 at 116.6 deg
QUANTITIES = [
    "Spearman of the ranking, 400-sample subset of 10 bins vs full test set (mean, 10-90 % over draws)",
    "Spearman of the ranking, 400-sample subset of 4 bins vs full test set (mean, 10-90 % over draws)",
    "Spearman, subset of 10 bins with the zero-event samples left out (the other reading)",
    "Spearman, uniformly random subset as large as that of 10 bins (this book's addition)",
    "Spearman, subset of 4 bins with the zero-event samples left out (the other reading)",
    "Spearman, uniformly random subset as large as that of 4 bins (this book's addition)",
    "share of algorithms less accurate on the 10-bin subset than on the 4-bin one",
    "samples on the left half-axis (taken whole)",
    "smallest of the latter 11 bins (so n = 30 can be drawn from each)",
    "n per bin with the highest mean Spearman (Fig. 13), among the n tried",
    "n per bin with the highest mean mAP (Fig. 13), among the n tried",
]


@pytest.fixture
def tiny():
    return testing.bin_test_set(RECORD)


def test_bin_test_set_by_hand(tiny):
    np.testing.assert_array_equal(tiny.cbgl, [4, 0, 2, 3, 1])
    np.testing.assert_array_equal(tiny.events, [0, 0, 2, 1, 1])
    # Fig. 13: right axis 1, left axis 0, sectors 2 + floor(angle / 18): 90 -> 7, 63.4 -> 5, 116.6 -> 8
    np.testing.assert_array_equal(tiny.bins, [1, 0, 7, 5, 8])
    # Table 3, 45 degrees: merged, the right half-axis joins sector 0 and the left one sector 3
    np.testing.assert_array_equal(tiny.sectors[45.0, "merge"], [0, 3, 2, 1, 2])
    np.testing.assert_array_equal(tiny.sectors[45.0, "exclude"], [-1, -1, 2, 1, 2])
    np.testing.assert_array_equal(tiny.sector_sizes(45.0), [1, 1, 2, 1])
    assert tiny.n_test == 5 and tiny.fig13_sizes.sum() == 5 and tiny.fig13_sizes.size == 12
    assert tiny.smallest_bin == 0  # most of the other 11 bins are empty


def test_table3_draws_by_hand(tiny):
    t3 = testing.draw_table3(tiny, size=20, seeds=[7, 8])
    assert t3.quota(18.0) == 2 and t3.quota(45.0) == 5
    # no sector holds more than its share: every draw takes all it can
    for step in testing.STEPS:
        for draw in t3.draws[step, testing.MERGED]:
            np.testing.assert_array_equal(draw, np.arange(5))
        for draw in t3.draws[step, testing.EXCLUDED]:
            np.testing.assert_array_equal(draw, [2, 3, 4])
        for draw in t3.draws[step, testing.RANDOM]:
            np.testing.assert_array_equal(np.sort(draw), np.arange(5))
    assert t3.seeds == (7, 8) and t3.first(45.0).size == 5


def test_table3_draw_takes_the_quota_of_each_sector():
    rng = np.random.default_rng(0)
    record = rng.random((2, 10, 600)) < np.linspace(0.1, 0.95, 600)
    tb = testing.bin_test_set(record)
    t3 = testing.draw_table3(tb, size=40, seeds=range(3))
    for step in testing.STEPS:
        sizes = tb.sector_sizes(step)
        for merged, excluded, rand in zip(*(t3.draws[step, m] for m in (testing.MERGED, testing.EXCLUDED,
                                                                           testing.RANDOM))):
            got = np.bincount(tb.sectors[step, "merge"][merged], minlength=sizes.size)
            np.testing.assert_array_equal(got, np.minimum(sizes, t3.quota(step)))
            assert (tb.sectors[step, "exclude"][excluded] >= 0).all()
            assert rand.size == merged.size and np.unique(rand).size == rand.size
    again = testing.draw_table3(tb, size=40, seeds=range(3))
    np.testing.assert_array_equal(again.first(18.0), t3.first(18.0))  # seeded


def test_bin_tables_count_by_hand(tiny):
    tables = list(testing.bin_tables(tiny, testing.draw_table3(tiny, 20, [0])).items())
    assert [h.split(":")[0] for h, _ in tables] == ["10 bins of 18°", "4 bins of 45°", "Fig. 13's 12 bins"]
    heading, four = tables[1]
    assert "5 per bin; the subset holds 5 of 5 samples" in heading
    np.testing.assert_array_equal(four.data.to_numpy().T, [[1, 1, 2, 1], [1, 0, 0, 1], [1, 1, 2, 1]])
    assert list(four.data.columns)[-1] == "in the subset (seed 0)"
    assert "1 samples on the left half-axis" in tables[2][0] and "holds 0" in tables[2][0]


def hand_draws():
    """10-bin draws take samples 0, 1; 4-bin draws samples 2, 3 (one seed)."""
    draws = {(step, m): [np.array([0, 1]) if step == 18.0 else np.array([2, 3])]
             for step in testing.STEPS for m in (testing.MERGED, testing.EXCLUDED, testing.RANDOM)}
    return testing.Table3Draws(size=2, seeds=(0,), draws=draws)


CORRECT = {"a": np.array([1, 0, 1, 1]), "b": np.array([0, 0, 1, 0]), "c": np.array([1, 1, 0, 0])}


def test_accuracy_drop_by_hand():
    drop = testing.accuracy_drop(CORRECT, hand_draws())
    # a: 0.5 vs 1.0, b: 0.0 vs 0.5, c: 1.0 vs 0.0
    np.testing.assert_allclose(drop["10 bins, mean over draws"], [0.5, 0.0, 1.0])
    np.testing.assert_allclose(drop["4 bins, mean over draws"], [1.0, 0.5, 0.0])
    assert drop["10 bins lower"].tolist() == [True, True, False]


def test_accuracy_table_and_agreement_by_hand():
    t3 = hand_draws()
    table = testing.accuracy_table(CORRECT, t3).data
    # full accuracies 0.75, 0.25, 0.5: a, c, b
    assert list(table.index) == ["a", "c", "b"] and table["rank (full)"].tolist() == [1, 2, 3]
    np.testing.assert_allclose(table["accuracy (2 samples (4 bins))"], [1.0, 0.0, 0.5])
    agreement = testing.table3_agreement(CORRECT, t3)
    assert agreement.index.names == ["bins", "method"] and "n" not in agreement
    # 4 bins: 1.0, 0.5, 0.0 against 0.75, 0.25, 0.5 -> rho(ranks 1 2 3, ranks 1 3 2) = 0.5
    assert agreement.loc[("4 bins", testing.MERGED), "spearman_mean"] == pytest.approx(0.5)
    assert agreement.loc[("10 bins", testing.MERGED), "size"] == 2
    page = testing.agreement_summary(agreement).data
    assert list(page.columns) == ["subset size (samples, mean)", "Spearman's rho", "mAP", "undefined draws"]
    assert page.loc[("4 bins", testing.MERGED), "Spearman's rho"].startswith("0.500 [")


def test_fig13_agreement_sizes_and_full_subset():
    bins = np.repeat(np.arange(12), [3] + [5] * 11)  # left axis 3 samples, every other bin 5
    correct = {k: (np.arange(bins.size) % 4 < k).astype(float) for k in (1, 2, 3)}
    fig13 = testing.fig13_agreement(correct, bins, ns=(5, 2), seeds=range(4))
    balanced = fig13[fig13.method == "balanced"].set_index("n")
    assert balanced.loc[2, "size"] == 3 + 11 * 2 and balanced.loc[5, "size"] == bins.size
    assert balanced.loc[5, "spearman_mean"] == pytest.approx(1.0)  # n = 5 takes every sample
    assert sorted(fig13.method.unique()) == ["balanced", "random"]
    sizes = {m: fig13.loc[fig13.method == m, "size"].tolist() for m in ("balanced", "random")}
    assert sizes["random"] == sizes["balanced"]


@pytest.mark.parametrize(("ns", "smallest", "n"), [((5, 10, 30, 40), 49, 30), ((5, 10, 20), 12, 10), ((5, 10), 3, 5),
                                                    ((5, 40), 35, 30)])
def test_export_n(ns, smallest, n):
    assert testing.export_n(ns, smallest) == n


def test_export_small_test_set_writes_the_subset(tmp_path):
    bins = np.repeat(np.arange(12), [3] + [5] * 11)
    tb = testing.Bins(np.arange(bins.size, dtype=float), np.ones(bins.size), {}, bins)
    (tmp_path / "stale-1.csv").write_text("old")
    s = SimpleNamespace(subset_n=(2, 4), seed=0, dataset="cifar10-subset", data_path=None)
    data = SimpleNamespace(index_test=np.arange(bins.size) + 1000, y_test=np.arange(bins.size) % 10)
    small = testing.export_small_test_set(tb, s, data, out_dir=tmp_path)
    assert small.n == 4 and small.indices.size == 3 + 11 * 4  # the smallest bin (5) holds 4, not 30
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar10-subset-47.csv", "cifar10-subset-47.npy"]
    np.testing.assert_array_equal(np.load(small.npy_path), small.indices + 1000)
    np.testing.assert_array_equal(small.table.position, small.indices)
    np.testing.assert_array_equal(small.table.label, small.indices % 10)
    assert (small.table.bin[small.table.position < 3] == "left axis").all()
    assert "47 test samples" in small.describe() and "n = 4" in small.describe()


def test_figures_have_their_panels(tiny):
    t3 = testing.draw_table3(tiny, 20, [0])
    assert len(testing.plot_bins(tiny, t3).axes) == 3  # two panels and the colour bar
    bins = np.repeat(np.arange(12), [3] + [5] * 11)
    fig13 = testing.fig13_agreement({k: (np.arange(58) % 4 < k).astype(float) for k in (1, 2, 3)}, bins, (2, 5), [0, 1])
    assert len(testing.plot_fig13(fig13, smallest_bin=5).axes) == 2
    images = np.zeros((58, 8, 8, 3), dtype=np.uint8)
    subset = np.array([0, 3, 4, 57])  # the left axis, the right axis (label 1), the last sector (label 11)
    assert len(testing.plot_subset_images(images, bins, subset).axes) == 3


def test_algorithm_correctness_assembles_networks_and_models(monkeypatch):
    s = settings("smoke")
    records = {a: np.array([[[0, 0, 0]], [[1, 1, 0]]], dtype=bool) for a in s.testing_archs}  # 2 runs, 1 epoch
    monkeypatch.setattr(testing, "get_runs", lambda config, runs, device: SimpleNamespace(
        test_correct=records[config.arch]))
    monkeypatch.setattr(testing.algorithms, "sklearn_correct", lambda names, data, arch, train_size, seed: (
        {n: np.array([True, False, True]) for n in names}, 7))
    monkeypatch.setattr(testing, "load_for", lambda data, arch: SimpleNamespace(
        y_train=np.zeros(9), x_train=np.zeros((9, 2, 3))))
    zoo = testing.algorithm_correctness(s, sklearn_train_size=7)
    assert list(zoo.correct)[:2] == [f"{a} (deep)" for a in s.testing_archs]
    np.testing.assert_allclose(zoo.correct["mlp (deep)"], [0.5, 0.5, 0.0])  # averaged over the 2 runs
    assert len(zoo.correct) == 2 + 6
    assert zoo.describe() == ("8 algorithms: 2 networks x 2 runs and 6 scikit-learn models trained on 7 of 9 "
                              "training samples, 6 features")


def paper_sized():
    """10,000 test samples: 10-degree sector 9 thin (50 samples), 3 on the left half-axis, every bin full."""
    rng = np.random.default_rng(1)
    n = 10_000
    sector18 = np.where(np.arange(n) < 50, 9, rng.integers(0, 9, n))
    sectors = {(18.0, "merge"): sector18, (45.0, "merge"): np.minimum(sector18 * 18 // 45, 3)}
    for step in testing.STEPS:
        sectors[step, "exclude"] = sectors[step, "merge"]
    bins = np.where(np.arange(n) < 3, 0, rng.integers(1, 12, n))
    tb = testing.Bins(rng.random(n), rng.random(n), sectors, bins)
    # each algorithm wrong on the thin hard sector: the 10-bin draw (40 of its 50) hurts more than the 4-bin one
    correct = {k: ((sector18 != 9) & (np.arange(n) % 10 < k)).astype(float) for k in (4, 6, 8)}
    return tb, correct


def hand_fig13(best_spearman_n):
    rows = [{"method": "balanced", "n": n, "size": 11 * n + 3, "spearman_mean": 0.99 if n == best_spearman_n else 0.8,
             "spearman_low": 0.7, "spearman_high": 1.0, "map_mean": 0.9, "map_low": 0.8, "map_high": 1.0,
             "undefined": 0} for n in (10, 30, 60)]
    return pd.DataFrame(rows)


def test_scorecard_reproduces_on_the_papers_protocol():
    tb, correct = paper_sized()
    t3 = testing.draw_table3(tb, 400, range(10))
    agreement, drop = testing.table3_agreement(correct, t3), testing.accuracy_drop(correct, t3)
    small = testing.SmallTestSet(30, 0, np.arange(333), None, None, pd.DataFrame())
    card = testing.scorecard(tb, t3, agreement, drop, hand_fig13(30), small, len(correct), settings("paper"))
    assert [row["quantity"] for row in card.rows] == QUANTITIES + [
        "size of Fig. 13's small test set at n = 30", "algorithms ranked"]
    for q in QUANTITIES[:2] + QUANTITIES[6:10]:
        assert card.verdict(q) == REPRODUCED, q
    for q in QUANTITIES[2:6] + QUANTITIES[10:] + ["algorithms ranked"]:
        assert card.verdict(q) == CONTEXT
    # the best n among those up to 49: 60 is left out even where it ranks best
    card60 = testing.scorecard(tb, t3, agreement, drop, hand_fig13(60), small, 3, settings("paper"))
    assert card60.verdict(QUANTITIES[9]) == NOT_REPRODUCED
    assert "(paper: 30)" in testing.summary(tb, agreement, drop, hand_fig13(30), 3)


def test_scorecard_is_not_comparable_on_a_small_profile(tiny):
    t3 = testing.draw_table3(tiny, 20, [0, 1])
    correct = {k: (np.arange(5) < k).astype(float) for k in (1, 2, 4)}
    bins = np.repeat(np.arange(12), [3] + [5] * 11)
    fig13 = testing.fig13_agreement({k: (np.arange(58) % 4 < k).astype(float) for k in (1, 2, 3)}, bins, (5, 10), [0])
    small = testing.SmallTestSet(5, 0, np.arange(5), None, None, pd.DataFrame())
    agreement, drop = testing.table3_agreement(correct, t3), testing.accuracy_drop(correct, t3)
    card = testing.scorecard(tiny, t3, agreement, drop, fig13, small, 3, settings("smoke"))
    for q in QUANTITIES[:2] + QUANTITIES[6:10]:
        assert card.verdict(q) == NOT_COMPARABLE, q
    row = next(r for r in card.rows if r["quantity"] == QUANTITIES[0])
    assert "set to 20 samples" in row["test"] and "some bins hold fewer" in row["test"]
    assert "No n of the profile (5, 10)" in testing.summary(tiny, agreement, drop, fig13, 3)
