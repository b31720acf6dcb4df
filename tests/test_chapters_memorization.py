"""regutils.chapters.memorization: synchronization, Fig. 8 examples, Table 1 and the scorecard, hand-computed."""
from types import SimpleNamespace

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from regutils import features, stats, sync  # noqa: E402
from regutils.chapters import memorization as mem  # noqa: E402
from regutils.claims import CONTEXT, NOT_COMPARABLE, NOT_REPRODUCED, REPRODUCED  # noqa: E402
from regutils.profiles import settings  # noqa: E402

# one row per sample, one column per epoch (T = 4); events at the epochs noted
E2, E3, E4, E24, NONE, NEVER = [1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [1, 0, 1, 0], [1, 1, 1, 1], [0, 0, 0, 0]
TRAIN = [[E2, E24, E4, NONE],  # run 1: training samples 0..3 forget at {2}, {2, 4}, {4}, never
         [E2, NEVER, E4, E3]]  # run 2: {2}, never, {4}, {3}
TEST = [[E24, E3, NONE],  # run 1: test samples 0..2 mal-generalize at {2, 4}, {3}, never
        [E2, E3, NONE]]  # run 2: {2}, {3}, never


def fake_runs(train=TRAIN, test=TEST, y_train=(0, 1, 0, 1), y_test=(0, 1, 0)):
    """Records (runs, T, samples) from per-sample rows (runs, samples, T)."""
    def record(rows):
        return np.asarray(rows, dtype=bool).transpose(0, 2, 1)
    return SimpleNamespace(train_correct=record(train), test_correct=record(test),
                           y_train=np.asarray(y_train), y_test=np.asarray(y_test))


def random_runs(runs=3, epochs=8, n=200, m=30, seed=0):
    rng = np.random.default_rng(seed)
    return SimpleNamespace(train_correct=rng.random((runs, epochs, n)) < 0.7,
                           test_correct=rng.random((runs, epochs, m)) < 0.7,
                           y_train=rng.integers(0, 3, n), y_test=rng.integers(0, 3, m))


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_synchronization_by_hand():
    syn = mem.synchronization(fake_runs())
    np.testing.assert_array_equal(syn.events_run1, [2, 1, 0])
    np.testing.assert_array_equal(syn.with_event, [0, 1])
    # test 0 ({2, 4}) shares an epoch with training 0, 1, 2 (any); only training 1 holds both epochs (all)
    np.testing.assert_array_equal(syn.counts["any"], [3, 0, 0])
    np.testing.assert_array_equal(syn.counts["all"], [1, 0, 0])
    # every run on its own, test samples with an event: run 1 tests 0, 1; run 2 tests 0 ({2}: training 0), 1 ({3}: 3)
    np.testing.assert_array_equal(syn.pooled["any"][0], [2, 1, 1, 1])
    np.testing.assert_array_equal(syn.pooled["any"][1], [3, 0, 1, 1])
    assert syn.rise["any"] == pytest.approx(1.0)
    # test 0 (class 0): run 1 {0, 1, 2}, both runs {0}; test 1 (class 1): nothing in run 1
    same, other = syn.first_k
    np.testing.assert_array_equal(same, [[2, 1], [0, 0]])
    np.testing.assert_array_equal(other, [[1, 0], [0, 0]])
    # at least m runs: test 1 has training 3 in one run (its class)
    same, other = syn.at_least
    np.testing.assert_array_equal(same, [[2, 1], [1, 0]])
    np.testing.assert_array_equal(other, [[1, 0], [0, 0]])
    assert (syn.n_runs, syn.n_train) == (2, 4)


def test_synchronization_properties_on_random_records():
    runs = random_runs()
    syn = mem.synchronization(runs)
    assert np.all(syn.counts["any"] >= syn.counts["all"])
    first_k = syn.first_k[0] + syn.first_k[1]
    assert np.all(np.diff(first_k, axis=1) <= 0)  # requiring one more run to agree never adds a sample
    np.testing.assert_array_equal(first_k[:, 0], syn.counts["any"][syn.with_event])
    # synchronized in all R runs: the last column of both curves
    np.testing.assert_array_equal(first_k[:, -1], (syn.at_least[0] + syn.at_least[1])[:, -1])
    last = sync.sync_counts(syn.train_ev[-1], syn.test_ev[-1])
    n_last = np.count_nonzero(syn.test_ev[-1].sum(axis=0))
    np.testing.assert_array_equal(syn.pooled["any"][1][-n_last:], last[syn.test_ev[-1].any(axis=0)])


@pytest.mark.parametrize(("n_runs", "expected"), [
    (1, {0: ("#4", 0.9984)}), (2, {0: ("#1", 0.9985), 1: ("#4", 0.9984)}),
    (4, {0: ("#1", 0.9985), 3: ("#4", 0.9984)}), (10, {0: ("#1", 0.9985), 3: ("#4", 0.9984)})])
def test_shown_runs_stand_in_for_the_papers_fourth(n_runs, expected):
    assert mem.shown_runs(n_runs) == expected


def test_event_histograms_of_identical_sets_correlate_perfectly():
    runs = fake_runs(test=[rows[:3] for rows in TRAIN])  # the test set is a copy of 3 training samples
    with pytest.warns(RuntimeWarning, match="2 bins"):  # run 2 has at most 1 event: 2 bins, no correlation
        hist = mem.event_histograms(runs)
    assert np.isnan(hist.r[1].r)
    np.testing.assert_array_equal(hist.train_events, [[1, 2, 1, 0], [1, 0, 1, 1]])
    # run 1: train counts {0: 1/4, 1: 1/2, 2: 1/4}, test {0: 0, 1: 2/3, 2: 1/3}
    p, q = [0.25, 0.5, 0.25], [0, 2 / 3, 1 / 3]
    assert hist.r[0].r == pytest.approx(np.corrcoef(p, q)[0, 1])
    assert list(hist.r) == [0, 1]
    assert len(mem.plot_event_histograms(hist).axes) == 2


def test_fig8_examples_analogues_and_papers_samples():
    syn = mem.synchronization(fake_runs())
    ex = mem.fig8_examples(syn, index_test=[7, 8, 9], paper_data=True)  # the paper's samples are absent
    assert (ex.low_events, ex.low_count, ex.max_events) == (2, 3, 2)
    assert ex.ratio == pytest.approx(1.0)  # the 2-event and the most-event samples are one here
    assert ex.example.startswith("the test samples with 2 events")
    ex = mem.fig8_examples(syn, index_test=[90, 5695, 3], paper_data=True)
    assert ex.example == "the paper's test samples 90 and 5695"
    assert (ex.low_count, ex.high_events, ex.high_count) == (3, 1, 0)
    assert ex.ratio == 0
    assert mem.fig8_examples(syn, index_test=[90, 5695, 3], paper_data=False).example != ex.example
    assert "3.0 synchronized training samples (75.00% of 4)" in ex.sentence()


def test_pick_examples_with_too_few_synchronized_shows_none():
    runs = fake_runs()
    ex = mem.pick_examples(mem.synchronization(runs), runs, [7, 8, 9], paper_data=False)
    assert ex.shown.size == 0 and ex.runs_needed == 0 and ex.rule == "no test sample qualifies"
    assert ex.synced_runs.shape == (0, 4)
    data = SimpleNamespace(images_train=np.zeros((4, 4, 4)), images_test=np.zeros((3, 4, 4)),
                           index_test=np.array([7, 8, 9]), classes=["a", "b"])
    assert "no test sample" in mem.plot_sync_examples(mem.synchronization(runs), ex, data).axes[0].get_title()


def test_pick_examples_by_regularity_on_random_records():
    runs = random_runs(runs=2, epochs=8, n=300, m=40)
    syn = mem.synchronization(runs)
    ex = mem.pick_examples(syn, runs, np.arange(40), paper_data=False)
    assert ex.shown.size == 3
    assert ex.regularity[ex.shown[0]] >= ex.regularity[ex.shown[1]] >= ex.regularity[ex.shown[2]]
    for j, runs_j in zip(ex.shown, ex.synced_runs):
        np.testing.assert_array_equal(runs_j, sync.long_term_sync(syn.train_ev, syn.test_ev, j))
        assert np.count_nonzero(runs_j >= max(ex.runs_needed, 1)) > 0
    data = SimpleNamespace(images_train=np.zeros((300, 4, 4)), images_test=np.zeros((40, 4, 4)),
                           index_test=np.arange(40), classes=["a", "b", "c"])
    assert len(mem.plot_sync_examples(syn, ex, data).axes) == 3
    assert len(mem.plot_sync_counts(syn).axes) == 2 and len(mem.plot_sync_classes(syn).axes) == 2


def probe_case(n_train=300, synced_same=(30, 5), synced_other=(30, 5)):
    """Two test samples of class 0: 30 + 30 training samples synchronized in both runs with the first, 5 + 5."""
    rng = np.random.default_rng(0)
    y_train = np.arange(n_train) % 3
    train = rng.normal(size=(n_train, 2)) + 3 * (y_train == 0)[:, None]
    test = np.array([[3.0, 3.0], [3.0, 3.0]])
    synced_runs = np.zeros((2, n_train), dtype=int)
    for row, (k_same, k_other) in enumerate(zip(synced_same, synced_other)):
        synced_runs[row, np.flatnonzero(y_train == 0)[:k_same]] = 2
        synced_runs[row, np.flatnonzero(y_train != 0)[:k_other]] = 2
    syn = SimpleNamespace(y_train=y_train, y_test=np.array([0, 0]), n_runs=2)
    ex = mem.SyncExamples(np.array([0, 1]), "two", 2, 2, np.array([1.0, 0.0]), synced_runs)
    return mem.ProbeFeatures(train, test, "fake"), syn, ex


def test_table1_runs_the_protocol_or_says_why_not():
    feats, syn, ex = probe_case()
    t1 = mem.table1(feats, syn, ex, np.array([11, 12]), sizes=(100,), repeats=2)
    assert [(e["role"], e["n"]) for e in t1.entries] == [("high", 100), ("low", 100)]  # two shown: high and low
    high, low = t1.entries
    assert high["comparable"] is True and set(high["accuracy"]) == {"with_synced", "without_synced", "control"}
    assert all(v in (0, 0.5, 1) for v in high["accuracy"].values())  # fractions of 2 fits
    assert "5 synchronized samples of its class" in low["comparable"] and np.isnan(low["accuracy"]["with_synced"])
    assert list(t1.frame.columns) == ["w/ synchronized", "w/o synchronized", "control: 23 + 23 others",
                                      "paper w/", "paper w/o"]
    assert t1.frame.loc[("11 (high regularity; paper: 521)", "N = 100"), "paper w/"] == 0.9585
    assert t1.sentence().splitlines()[1].startswith("not comparable: test sample 12")


def test_multiclass_probe_on_random_records():
    runs = random_runs(runs=2, n=120, m=20)
    syn = mem.synchronization(runs)
    rng = np.random.default_rng(1)
    feats = mem.ProbeFeatures(rng.normal(size=(120, 3)), rng.normal(size=(20, 3)), "fake")
    wide = mem.multiclass_probe(feats, syn, sizes=(10, 20), max_test=4, repeats=1)
    assert wide.test_indices.size <= 4 and np.all(syn.counts["any"][wide.test_indices] >= 1)
    assert list(wide.frame.index) == ["N = 10", "N = 20"]
    assert wide.frame.loc["N = 10", "with - without"] == pytest.approx(wide.gain(10).mean())
    assert (wide.frame["test samples"] == wide.test_indices.size).all()


def fig8(paper_data, low_count, high_count, max_events):
    return mem.Fig8Examples("x", 2, low_count, max_events, high_count, max_events, 50_000, paper_data)


def card_of(paper_data, low_count, high_count, max_events, t1=None):
    runs = fake_runs()
    syn = mem.synchronization(runs)
    # two runs: run #2 stands in for the paper's #4
    hist = mem.EventHistograms(np.zeros((2, 4)), np.zeros((2, 3)), mem.shown_runs(2),
                               {0: stats.Corr(0.99, 0.98, 1.0, 3), 1: stats.Corr(0.5, 0.1, 0.9, 3)})
    t1 = t1 or mem.Table1(pd.DataFrame(), [], 1)
    wide = mem.MulticlassProbe(np.arange(3), {100: pd.DataFrame({"with_synced": [1.0, 0.0, 1.0],
                                                                 "without_synced": [0.0, 0.0, 1.0]})}, None)
    return mem.scorecard(settings("smoke"), hist, syn,
                         fig8(paper_data, low_count, high_count, max_events), t1, wide)


def test_scorecard_on_the_papers_data_scores_the_examples():
    card = card_of(True, 13000, 26000, 15)  # 0.26 of the training set, twice as many
    assert card.verdict("fraction of training samples synchronized with a 2-event test sample (rule any)") == REPRODUCED
    assert card.verdict("count at the many-event sample over the 2-event one (rule any; 15 vs 2 events)") == REPRODUCED
    assert card.verdict("sync count rises with events (rule any): Spearman of count vs events, run 1") == REPRODUCED
    assert card.verdict("sync count vs events under rule all (the strict reading), Spearman, run 1") == CONTEXT
    wide = "multi-class SVM over 3 test samples, N = 100: with - without (this book's addition)"
    assert card.verdict(wide) == CONTEXT
    assert card.frame().set_index("quantity").loc[
        "mean synchronized training samples per test sample with an event: one run, then all 3 runs",
        "this build"] == "1.5 -> 0.5"  # run 1: 3 and 0; both runs: 1 and 0 (smoke's sync_runs is 3)
    card = card_of(True, 13000, 50000, 15)  # about four times as many: not "about twice"
    assert card.verdict("count at the many-event sample over the 2-event one (rule any; 15 vs 2 events)") \
        == NOT_REPRODUCED


def test_scorecard_off_the_papers_data_is_not_comparable():
    card = card_of(False, 13000, 26000, 2)
    assert card.verdict("fraction of training samples synchronized with a 2-event test sample (rule any)") \
        == NOT_COMPARABLE
    assert card.verdict("count at the many-event sample over the 2-event one (rule any; 2 vs 2 events)") \
        == NOT_COMPARABLE
    assert card.verdict("Pearson of forgetting vs mal-generalizing histograms, run #1") == REPRODUCED  # 0.99
    stand_in = "Pearson of forgetting vs mal-generalizing histograms, run #4 (run #2: the profile has 2 runs)"
    assert card.verdict(stand_in) == NOT_REPRODUCED  # 0.5 < 0.95


def test_scorecard_table1_verdicts_and_summary():
    nan = {"with_synced": np.nan, "without_synced": np.nan, "control": np.nan}
    entries = [{"role": "high", "n": 100, "accuracy": {"with_synced": 0.9, "without_synced": 1.0, "control": 1.0},
                "comparable": True},
               {"role": "high", "n": 460, "accuracy": {"with_synced": 1.0, "without_synced": 0.5, "control": 1.0},
                "comparable": True},
               {"role": "low", "n": 100, "accuracy": nan, "comparable": "too few"}]
    t1 = mem.Table1(pd.DataFrame(), entries, 1)
    card = card_of(True, 13000, 26000, 15, t1=t1)
    high = mem.table1_row("high", 100)
    assert high == "Table 1, high-regularity sample (521 in the paper), N = 100"
    assert card.verdict(f"{high}: gain w/ - w/o") == REPRODUCED  # the paper: no gain for the regular sample
    assert card.verdict(f"{mem.table1_row('high', 460)}: gain w/ - w/o") == CONTEXT
    assert card.verdict(f"{mem.table1_row('low', 100)}: gain w/ - w/o") == NOT_COMPARABLE
    text = mem.summary(card, mem.synchronization(fake_runs()), t1, mem.ProbeFeatures(None, None, "fake"))
    assert "*not comparable* at N = 100" in text and "the count's rise is *reproduced*" in text


def test_probe_features_fall_back_to_the_trained_network(monkeypatch):
    def no_weights(images):
        raise features.FeatureError("no weights here")
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    monkeypatch.setattr(mem.features, "imagenet_vgg19_features", no_weights)
    monkeypatch.setattr(mem, "trained_model", lambda config, device: model)
    data = SimpleNamespace(images_train=np.zeros((5, 2, 2)), images_test=np.zeros((2, 2, 2)),
                           x_train=torch.ones(5, 1, 2, 2), x_test=torch.zeros(2, 1, 2, 2))
    s = settings("smoke")
    feats = mem.probe_features("auto", data, s)
    assert feats.train.shape == (5, 4) and feats.test.shape == (2, 4) and feats.note == "no weights here"
    assert feats.source == "the trained mlp of run 1, input of its last linear layer"
    assert feats.sentence() == f"features: {feats.source}; 4 values per image"
    with pytest.raises(features.FeatureError):
        mem.probe_features("imagenet", data, s)
    with pytest.raises(ValueError, match="unknown"):
        mem.probe_features("vgg", data, s)
    monkeypatch.setattr(mem.features, "imagenet_vgg19_features", lambda images: np.arange(7.0)[:, None])
    feats = mem.probe_features("auto", data, s)
    np.testing.assert_array_equal(feats.test, [[5.0], [6.0]])
    assert feats.note is None and feats.source.startswith("ImageNet")
