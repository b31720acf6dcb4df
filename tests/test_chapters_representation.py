"""regutils.chapters.representation: the (CBTL, events) planes, hand-computed on tiny records."""
from types import SimpleNamespace

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from regutils.chapters import representation as rep  # noqa: E402
from regutils.claims import CONTEXT, NOT_COMPARABLE, NOT_REPRODUCED, REPRODUCED  # noqa: E402
from regutils.profiles import settings  # noqa: E402

# two runs, 4 epochs, 4 samples (columns)
RUN_1 = [[1, 0, 0, 0], [0, 1, 0, 0], [1, 1, 1, 0], [1, 0, 1, 0]]
RUN_2 = [[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 1]]


def fake(train, test=None):
    """Runs and data holding the records ``train`` and ``test`` (runs, epochs, samples), 8x8 images."""
    train = np.asarray(train, dtype=bool)
    test = train if test is None else np.asarray(test, dtype=bool)
    runs = SimpleNamespace(train_correct=train, test_correct=test, y_train=np.arange(train.shape[-1]) % 2,
                           y_test=np.arange(test.shape[-1]) % 2)
    rng = np.random.default_rng(0)
    data = SimpleNamespace(images_train=rng.integers(0, 255, (train.shape[-1], 8, 8), dtype=np.uint8),
                           images_test=rng.integers(0, 255, (test.shape[-1], 8, 8), dtype=np.uint8))
    return runs, data


def long_record(easy=30, never=5, forgetful=6, epochs=200):
    """One run: ``easy`` samples always right, ``never`` never, ``forgetful`` right and wrong in turn 40 times."""
    flips = np.zeros(epochs, dtype=bool)
    flips[:80:2] = True  # 40 learned epochs, each followed by a forgetting event
    columns = [np.ones(epochs, bool)] * easy + [np.zeros(epochs, bool)] * never + [flips] * forgetful
    return np.stack(columns, axis=1)[None]


def test_plane_by_hand():
    p = rep.planes(*fake([RUN_1, RUN_2]), min_group=1)["train"]
    # CBTL 3, 2, 2, 0 and 4, 4, 4, 1; events 1, 1, 0, 0 and none
    np.testing.assert_allclose(p.x, [3.5, 3.0, 3.0, 0.5])
    np.testing.assert_allclose(p.y, [0.5, 0.5, 0.0, 0.0])
    assert (p.epochs, p.runs) == (4, 2)
    assert p.radius == pytest.approx(np.hypot(3 / 30, 0.5 / 30))
    np.testing.assert_array_equal(p.rounded, [4, 3, 3, 1])  # halves round up
    # mean events: 0 at 1, 0.25 at 3, 0.5 at 4, the highest, at the end: not intermediate
    assert (p.peak.at, p.peak.low, p.peak.high, p.peak.interior) == (4, 1, 4, False)
    assert rep.widest_event_range(p) == pytest.approx(0.5)  # value 3 holds events 0.5 and 0


def test_plane_names_and_axes():
    both = rep.planes(*fake([RUN_1, RUN_2]))
    assert [p.name for p in both.values()] == ["training set", "test set"]
    assert (both["test"].xlabel, both["test"].ylabel) == ("CBGL", "mal-generalizing events")


def test_densest_quadrant_is_where_the_easy_samples_crowd():
    p = rep.planes(*fake(long_record()))["train"]
    assert p.corner == "lower right"
    assert p.peak.interior  # 0, 40 and 200 are well populated; the events peak at 40
    assert p.peak.at == 40


def test_contrast_takes_fewest_and_most_events_of_one_value():
    # samples 0-3 have CBTL 3 with 1, 0, 1, 0 events; samples 4-5 CBTL 4 with none
    record = np.array([[1, 0, 1, 1], [0, 1, 1, 1], [1, 0, 1, 1], [0, 1, 1, 1], [1] * 4, [1] * 4], dtype=bool).T
    p = rep.planes(*fake(record[None]))["train"]
    c = rep.contrast(p, n_values=1, k=2, seed=0)
    np.testing.assert_array_equal(c.values, [3])
    assert set(c.fewest[0]) == {1, 3} and set(c.most[0]) == {0, 2}


def test_compare_histograms_by_hand_and_for_equal_sets():
    hist = rep.compare_histograms(rep.planes(*fake([RUN_1, RUN_2])), seed=0)
    np.testing.assert_allclose(hist.measure_edges, np.arange(-0.5, 5))  # unit bins from floor(0.5) up to T
    # events reach 0.5 = 1 / R: at least 3 bins of width 1 / R centred on 0, 0.5, 1
    np.testing.assert_allclose(hist.event_edges, [-0.25, 0.25, 0.75, 1.25])
    assert hist.shape_events.r == pytest.approx(1.0)  # the same record on both sides
    assert hist.ks_measure[0] == 0 and hist.ks_events[0] == 0
    assert "forgetting vs mal-generalizing 1.0000" in hist.summary()


def test_scorecard_on_a_short_build_cannot_compare_the_radius():
    both = rep.planes(*fake([RUN_1, RUN_2]))
    card = rep.scorecard(both, rep.compare_histograms(both, seed=0), settings("smoke"))
    assert card.verdict("default density radius, training plane (Fig 2 caption)") == NOT_COMPARABLE
    assert card.verdict("default density radius, test plane (Fig 2 caption)") == NOT_COMPARABLE
    assert card.verdict("widest range of forgetting events among samples of one (rounded) CBTL (Fig 1, 4)") \
        == REPRODUCED
    assert card.verdict("fraction of training samples never forgotten in any run") == CONTEXT
    assert len(card.rows) == 22


def test_scorecard_on_a_200_epoch_build():
    # the same record as training and test set: equal shapes, but no longer test tail and no peak shift
    both = rep.planes(*fake(long_record()))
    card = rep.scorecard(both, rep.compare_histograms(both, seed=0), settings("paper"))
    # ranges 200 and 40: r = hypot(200, 40) / 30 = 6.7987
    assert card.verdict("default density radius, training plane (Fig 2 caption)") == REPRODUCED
    assert card.verdict("densest quadrant of the training plane is the lower right (Fig 2a)") == REPRODUCED
    assert card.verdict("mean forgetting events peak at an intermediate CBTL (Fig 4)") == REPRODUCED
    assert card.verdict("skewness of CBTL: long tail towards low values (Fig 3)") == REPRODUCED
    assert card.verdict("skewness of forgetting events: long tail towards many (Fig 3)") == REPRODUCED
    assert card.verdict("Pearson of normalized histograms, CBTL (train) vs CBGL (test) (Fig 3)") == REPRODUCED
    assert card.verdict("range of forgetting events (§3.2.1)") == REPRODUCED  # 40 < 200
    assert card.verdict("training peak right of the test peak, fraction of T (§3.2.2)") == NOT_REPRODUCED
    assert card.verdict("mean CBGL (test), fraction of T: the test samples' longer tail (§3.2.1)") \
        == NOT_REPRODUCED


def test_figures_and_findings():
    runs, data = fake(long_record())
    both = rep.planes(runs, data)
    c = rep.contrast(both["train"], n_values=2, k=1)
    assert len(rep.plot_contrast(c, both["train"], ["a", "b"]).axes) == 2 * c.values.size
    assert len(rep.plot_planes(both, positions=3).axes) == 6  # 4 panels and 2 colorbars
    assert len(rep.plot_histograms(both, rep.compare_histograms(both)).axes) == 2
    assert len(rep.plot_events_peak(both).axes) == 2
    text = rep.findings(both, settings("smoke"))
    assert "CBTL = 40 of 200 (0.20 T; well-populated values 0 to 200)" in text
    assert "lower right one of the training plane" in text
