"""regutils.chapters.easy_hard: easy and hard sets of two fake architectures, hand-computed."""
from types import SimpleNamespace

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from regutils import easy_hard as eh  # noqa: E402
from regutils import sampling  # noqa: E402
from regutils.chapters import easy_hard  # noqa: E402
from regutils.claims import CONTEXT, NOT_COMPARABLE, NOT_REPRODUCED, REPRODUCED  # noqa: E402
from regutils.profiles import settings  # noqa: E402

S = settings("smoke")  # archs ("mlp", "small_cnn")
A, B = S.archs

# per sample, its record over 4 epochs (1 = correct), the same in both runs unless noted
ALWAYS, NEVER, FROM2, FROM3 = [1, 1, 1, 1], [0, 0, 0, 0], [0, 1, 1, 1], [0, 0, 1, 1]
RECORD_A = [ALWAYS, ALWAYS, ALWAYS, ALWAYS, FROM3, FROM3, NEVER, NEVER]
RECORD_B = [ALWAYS, ALWAYS, FROM2, ALWAYS, FROM3, FROM2, NEVER, NEVER]
LABELS = np.array([0, 0, 0, 1, 1, 0, 1, 1])
N = len(LABELS)


def fake_runs(per_sample, test_acc=0.95, second_run=None):
    """Two runs, records (2, 4, N) from per-sample epoch records; ``second_run`` {sample: record} changes run 1."""
    one = np.array(per_sample, dtype=bool).T  # (4, N)
    two = one.copy()
    for i, record in (second_run or {}).items():
        two[:, i] = record
    correct = np.stack([one, two])
    return SimpleNamespace(train_correct=correct,
                           history={"train_acc": correct.mean(-1), "test_acc": np.full((2, 4), test_acc)})


# sample 3 of A is wrong at epoch 1 of its second run: easy needs every run
BY_ARCH = {A: fake_runs(RECORD_A, second_run={3: FROM2}), B: fake_runs(RECORD_B)}
W = 2


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.mark.parametrize(("early", "epochs", "w"), [(None, 20, 2), (None, 4, 1), (None, 200, 20), (3, 20, 3)])
def test_early_stage_resolves_none_to_the_first_tenth(early, epochs, w):
    assert easy_hard.early_stage(early, epochs) == w


def test_find_sets_by_hand():
    sets = easy_hard.find_sets(BY_ARCH, W)
    assert sets.archs == (A, B)
    np.testing.assert_array_equal(sets.easy[A], [0, 1, 2])  # sample 3 slips at epoch 1 of run 2
    np.testing.assert_array_equal(sets.easy[B], [0, 1, 3])
    np.testing.assert_array_equal(sets.hard[A], [4, 5, 6, 7])
    np.testing.assert_array_equal(sets.hard[B], [4, 6, 7])
    np.testing.assert_array_equal(sets.hard_final[A], [6, 7])
    np.testing.assert_array_equal(sets.of("hard_final")[B], [6, 7])


def test_set_sizes_table():
    table = easy_hard.set_sizes(BY_ARCH, easy_hard.find_sets(BY_ARCH, W), W).data
    assert table.index.name == "2 runs each"
    assert list(table["easy samples"]) == [3, 3] and list(table["hard samples, early"]) == [4, 3]
    assert list(table["hard samples, final"]) == [2, 2]
    # A at epoch 2: run 1 gets 0-3 right (4 of 8), run 2 too (sample 3 recovered at epoch 2)
    assert table.loc[A, "train accuracy, epoch 2"] == pytest.approx(0.5)
    assert table.loc[B, "final test accuracy"] == pytest.approx(0.95)


def test_overlaps_by_hand():
    o = easy_hard.overlaps(easy_hard.find_sets(BY_ARCH, W), N)
    assert set(o) == {("Jaccard", "easy"), ("overlap", "easy"), ("Jaccard", "hard"), ("overlap", "hard")}
    # easy {0,1,2} and {0,1,3}: intersection 2, union 4, smaller set 3
    assert o["Jaccard", "easy"].mean == pytest.approx(0.5)
    assert o["overlap", "easy"].mean == pytest.approx(2 / 3)
    np.testing.assert_allclose(o["overlap", "easy"].matrix, [[1, 2 / 3], [2 / 3, 1]])
    # hard {4,5,6,7} and {4,6,7}: the smaller is nested in the larger
    assert o["Jaccard", "hard"].mean == pytest.approx(0.75)
    assert o["overlap", "hard"].mean == pytest.approx(1.0)
    # chance: E|A n B| = 3 * 3 / 8; Jaccard 9/8 / (6 - 9/8); overlap max(3, 3) / 8
    assert o["Jaccard", "easy"].chance == pytest.approx((9 / 8) / (6 - 9 / 8))
    assert o["overlap", "easy"].chance == pytest.approx(3 / 8)
    assert o["overlap", "hard"].chance == pytest.approx(4 / 8)


def test_draw_samples_follows_one_seeded_stream():
    sets = easy_hard.find_sets(BY_ARCH, W)
    d = easy_hard.draw_samples(sets, A, N, seed=3, show=2)
    rng = np.random.default_rng(3)  # the order of the draws: easy, hard, then the random set
    np.testing.assert_array_equal(d.shown["easy"], np.sort(rng.choice([0, 1, 2], 2, replace=False)))
    np.testing.assert_array_equal(d.shown["hard"], np.sort(rng.choice([4, 5, 6, 7], 2, replace=False)))
    np.testing.assert_array_equal(d.random, np.sort(rng.choice(N, 2, replace=False)))  # max(2, 8 // 10)
    assert set(d.shown["easy"]) <= {0, 1, 2}


def test_draw_samples_of_an_empty_set_draws_nothing():
    sets = easy_hard.Sets({A: np.array([], int)}, {A: np.array([5, 6])}, {A: np.array([], int)})
    d = easy_hard.draw_samples(sets, A, 40, seed=0)
    assert len(d.shown["easy"]) == 0 and len(d.shown["hard"]) == 2 and len(d.random) == 4


FEATURES = np.array([0.0, 1, 3, 10, 0, 5, 2, 8])[:, None]  # one feature per sample
RANDOM = np.array([0, 3, 5, 6])


def distances():
    spaces = {space: {a: FEATURES for a in (A, B)} for space in ("pixels", "penultimate features")}
    return easy_hard.within_class_distances(spaces, easy_hard.find_sets(BY_ARCH, W), RANDOM, LABELS)


def test_within_class_distances_by_hand():
    d = distances()
    assert list(d.columns) == ["easy", "random", "hard"]
    px = d.loc["pixels"]
    assert px.loc[A, "easy"] == pytest.approx(2.0)  # class 0: 0, 1, 3 -> distances 1, 3, 2
    assert px.loc[B, "easy"] == pytest.approx(1.0)  # class 0: 0, 1; class 1 a single sample
    assert px.loc[A, "hard"] == pytest.approx(16 / 3)  # class 1: 0, 2, 8; class 0 a single sample
    assert px.loc[A, "random"] == pytest.approx((5 + 8) / 2)  # class 0: 0, 5; class 1: 10, 2
    rel = easy_hard.relative_to_random(d)
    assert rel.loc[("pixels", A), "easy"] == pytest.approx(2 / 6.5)
    assert (rel["random"] == 1).all()


def removal(fraction=0.25):
    # a fake retraining: the hard samples 4..7 carry the accuracy
    return easy_hard.removal(BY_ARCH[A], LABELS, fraction, lambda keep: 0.4 + 0.125 * np.isin(keep, [4, 5, 6, 7]).sum(),
                             seed=0)


def test_removal_removes_the_ends_of_the_cbtl_ranking_per_class():
    r = removal()
    # mean CBTL of A: 4, 4, 4, 3.5, 2, 2, 0, 0; a quarter of each class is one sample
    assert set(r.removed["easiest"]) & {3, 4, 6, 7} == {3}
    assert set(r.removed["easiest"]) & {0, 1, 2, 5} <= {0, 1, 2}
    assert 5 in r.removed["hardest"] and len(set(r.removed["hardest"]) & {6, 7}) == 1
    assert all(len(idx) == 2 for idx in r.removed.values())
    assert r.accuracy["easiest"] == pytest.approx(0.9) and r.accuracy["hardest"] == pytest.approx(0.65)
    assert r.full == pytest.approx(0.95) and r.full_runs == 2


def test_compression_keeps_the_hardest_or_a_random_share():
    accuracy = lambda keep: float(np.sum(keep))  # noqa: E731 - identifies the kept set
    c = easy_hard.compression(BY_ARCH[A], LABELS, (0.5,), accuracy, seed=0)
    hardest = eh.hardest(BY_ARCH[A].train_correct, 0.5, labels=LABELS, seed=0)
    assert set(hardest) >= {5, 6, 7}  # the lowest mean CBTL of each class
    assert c.accuracy["hardest"] == [float(hardest.sum())]
    assert c.accuracy["random"] == [float(sampling.prune(0.5, "random", labels=LABELS, seed=0).sum())]
    assert c.fractions == (0.5,)


def test_figures_are_returned_with_their_panels():
    sets = easy_hard.find_sets(BY_ARCH, W)
    images = np.zeros((N, 4, 4, 3), np.uint8)
    figs = [easy_hard.plot_overlaps(easy_hard.overlaps(sets, N), sets.archs),
            easy_hard.plot_examples(easy_hard.draw_samples(sets, A, N), sets, A, images, LABELS, ["cat", "dog"]),
            easy_hard.plot_distances(distances()), easy_hard.plot_removal(removal()),
            easy_hard.plot_compression(easy_hard.Compression((0.25, 0.5), {"hardest": [0.5, 0.6],
                                                                           "random": [0.4, 0.6]}, 0.7))]
    assert [len(f.axes) for f in figs] == [4, 2, 2, 1, 1]
    assert all(isinstance(f, matplotlib.figure.Figure) for f in figs)


def card(sets, compressed):
    return easy_hard.scorecard(S, W, sets, easy_hard.overlaps(sets, N), distances(), removal(), compressed)


def test_scorecard_verdicts_on_shared_sets():
    c = card(easy_hard.find_sets(BY_ARCH, W), easy_hard.Compression((0.25,), {"hardest": [0.8], "random": [0.7]}, 0.9))
    assert c.verdict("mean overlap coefficient of the easy sets of 2 architectures") == REPRODUCED  # 2/3
    assert c.verdict("mean overlap coefficient of the hard sets vs random sets of the same sizes") == REPRODUCED
    assert c.verdict(f"mean Jaccard of the easy sets (chance level {(9 / 8) / (6 - 9 / 8):.4f})") == CONTEXT
    # pixels: easy (2 + 1) / 2 / 6.5 < 1; hard 16/3 / 6.5 is not > 1
    assert c.verdict("within-class pixel distance of the easy sets / a random set's (mean over architectures)") \
        == REPRODUCED
    assert c.verdict("within-class pixel distance of the hard sets / a random set's (mean over architectures)") \
        == NOT_REPRODUCED
    assert c.verdict("test accuracy after removing the hardest 25%") == REPRODUCED  # 0.65 < 0.9
    assert c.verdict("test accuracy after removing the easiest 25%") == REPRODUCED  # 0.9 < 0.95
    assert c.verdict("test accuracy keeping the hardest 25%") == REPRODUCED  # 0.8 > 0.7
    frame = c.frame()
    assert len(frame) == 3 * 2 + 2 + 2 + 3 + 1
    assert frame["setting"].iloc[0].startswith(f"{S.dataset}, {A}, {B}, ")


def test_scorecard_on_an_empty_set_is_not_comparable():
    sets = easy_hard.find_sets(BY_ARCH, W)
    sets = easy_hard.Sets({A: sets.easy[A], B: np.array([], int)}, sets.hard, sets.hard_final)
    c = card(sets, easy_hard.Compression((0.25,), {"hardest": [0.6], "random": [0.7]}, 0.9))
    assert c.verdict("mean overlap coefficient of the easy sets of 2 architectures") == NOT_COMPARABLE
    assert c.verdict("mean overlap coefficient of the easy sets vs random sets of the same sizes") == NOT_COMPARABLE
    assert c.verdict("mean overlap coefficient of the hard sets of 2 architectures") == REPRODUCED
    assert c.verdict("test accuracy keeping the hardest 25%") == NOT_REPRODUCED  # 0.6 < 0.7
    assert "is empty" in c.frame().set_index("quantity").loc[
        "mean overlap coefficient of the easy sets of 2 architectures", "test"]


def test_distance_table_keeps_nan_for_sets_without_pairs():
    sets = easy_hard.Sets({A: np.array([3]), B: np.array([3])}, {A: np.array([6, 7]), B: np.array([6, 7])},
                          {A: np.array([6]), B: np.array([6])})
    d = easy_hard.within_class_distances({"pixels": {A: FEATURES, B: FEATURES}}, sets, RANDOM, LABELS)
    assert np.isnan(d.loc[("pixels", A), "easy"]) and d.loc[("pixels", A), "hard"] == pytest.approx(6.0)
    assert isinstance(d, pd.DataFrame)
