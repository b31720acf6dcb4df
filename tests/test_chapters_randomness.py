"""regutils.chapters.randomness: records over runs, hand-computed on tiny fake runs."""
from types import SimpleNamespace

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from regutils.chapters import randomness  # noqa: E402
from regutils.claims import CONTEXT, NOT_COMPARABLE, NOT_REPRODUCED, REPRODUCED  # noqa: E402
from regutils.profiles import settings  # noqa: E402
from regutils.stats import Corr  # noqa: E402

# 2 runs, 3 epochs, 4 samples (columns). Sample 0: correct throughout; sample 1: forgotten at epoch 2 in
# run 1 and at epoch 3 in run 2; sample 2: learned at epoch 2, then at epoch 3; sample 3: never learned.
TRAIN = [[[1, 1, 0, 0], [1, 0, 1, 0], [1, 1, 1, 0]],
         [[1, 0, 0, 0], [1, 1, 0, 0], [1, 0, 1, 0]]]
# the same samples in the test split with identical records in both runs: nothing varies
TEST = [[[1, 1, 0, 0], [1, 0, 1, 0], [1, 1, 1, 0]]] * 2


def fake_runs(train=TRAIN, test=TEST, batch=None, train_acc=(0.5, 0.75)):
    train, test = np.asarray(train, dtype=bool), np.asarray(test, dtype=bool)
    acc = np.tile(np.asarray(train_acc)[:, None], (1, train.shape[1]))
    return SimpleNamespace(train_correct=train, test_correct=test,
                           batch_correct=train if batch is None else np.asarray(batch, dtype=bool),
                           history={"train_acc": acc, "test_acc": acc})


def plane(split, measure, events):
    """SplitRecords for a plane given directly by per-run coordinates (runs, samples)."""
    measure = np.asarray(measure)
    return randomness.SplitRecords(split, np.zeros((len(measure), 2, measure.shape[1]), bool), measure,
                                   np.asarray(events))


def test_per_run_by_hand():
    records = randomness.per_run(fake_runs())
    train = records["train"]
    np.testing.assert_array_equal(train.measure, [[3, 2, 2, 0], [3, 1, 1, 0]])
    np.testing.assert_array_equal(train.events, [[0, 1, 0, 0], [0, 1, 0, 0]])
    assert (train.runs, train.measure_name, records["test"].event_name) == (2, "CBTL", "mal-generalizing events")


def test_per_run_needs_two_runs():
    with pytest.raises(ValueError, match="at least 2"):
        randomness.per_run(fake_runs(train=TRAIN[:1], test=TEST[:1]))


def test_variation_by_hand():
    shares = randomness.variation(randomness.per_run(fake_runs()))
    assert list(shares) == ["test", "train"]
    # only sample 1 has an event; its epochs differ (2 vs 3), its count does not (1 and 1);
    # CBTL differs for samples 1 and 2
    assert shares["train"] == {"with events": 0.25, "event epochs": 1.0, "event count": 0.0, "measure": 0.5}
    assert shares["test"] == {"with events": 0.25, "event epochs": 0.0, "event count": 0.0, "measure": 0.0}
    text = randomness.describe_variation(shares)
    assert "train: 25.0% of the samples have an event" in text and "CBGL differs between runs for 0.0%" in text


def test_variation_without_any_event_is_nan():
    learned = [[[0, 1, 1], [1, 1, 1]]] * 2  # learned by epoch 2, never forgotten
    shares = randomness.variation(randomness.per_run(fake_runs(learned, learned)))
    assert np.isnan(shares["train"]["event epochs"]) and np.isnan(shares["train"]["event count"])
    assert shares["train"]["measure"] == 0.0


def test_pick_three():
    # samples 0-2 coincide (densest), never forgotten; of the forgotten ones 3-4 share a point, 5 is alone
    x = np.array([10.0, 10, 10, 5, 5, 0])
    y = np.array([0.0, 0, 0, 2, 2, 1])
    chosen, d = randomness.pick_three(x, y)
    assert chosen["regular"] in (0, 1, 2)
    assert chosen["irregular"] == 5
    assert chosen["in between"] in (3, 4, 5)
    assert d[0] > d[3] > d[5]


def test_density_agreement_by_hand():
    # run 1: two samples coincide at 0 and one sits at 10; run 2 mirrored. With the default radius
    # (a 30th of the range) the normalized densities are (.4, .4, .2) and (.2, .4, .4): Pearson -0.5
    records = {"train": plane("train", [[0, 0, 10], [10, 0, 0]], np.zeros((2, 3))),
               "test": plane("test", [[0, 0, 10], [0, 0, 10]], np.zeros((2, 3)))}
    agreement = randomness.density_agreement(records, n_boot=50)
    np.testing.assert_allclose(agreement["train"].matrix, [[1, -0.5], [-0.5, 1]])
    assert agreement["train"].mean.r == pytest.approx(-0.5)
    assert agreement["train"].low == agreement["train"].high == pytest.approx(-0.5)
    assert agreement["test"].mean.r == pytest.approx(1.0)  # identical runs agree perfectly


def test_measure_agreement_and_recipe_checks_of_two_runs():
    runs = fake_runs()
    records = randomness.per_run(runs)
    agreement = randomness.measure_agreement(records, n_boot=0)
    assert set(agreement) == {(s, m) for s in ("train", "test") for m in ("measure", "events")}
    pearson = np.corrcoef([3, 2, 2, 0], [3, 1, 1, 0])[0, 1]
    assert agreement["train", "measure"].r == pytest.approx(pearson)
    assert agreement["test", "measure"].r == pytest.approx(1.0)
    checks = randomness.recipe_checks(records, runs)
    # one run per half: the split-half statistic is the correlation of the two runs
    assert checks.per_half == 1 and checks.split_half["cbtl"] == pytest.approx(pearson)
    assert checks.record == {"cbtl": pytest.approx(1.0), "events": pytest.approx(1.0)}  # the same record twice
    lines = randomness.describe_measure_agreement(agreement, runs).splitlines()
    assert lines[0].startswith("train: mean between-run Pearson of per-run CBTL")
    assert lines[-1] == "epoch-1 training accuracy, mean over runs: 0.6250"


def agreement_at(r):
    c = Corr(r, r - 0.01, r + 0.01, 100)
    return {split: randomness.DensityAgreement(split, np.array([[1, r], [r, 1]]), c, r, r)
            for split in ("train", "test")}


def test_scorecard_verdicts():
    runs = fake_runs()
    records = randomness.per_run(runs)
    shares = randomness.variation(records)
    measures = randomness.measure_agreement(records, n_boot=0)
    checks = randomness.recipe_checks(records, runs)
    card = randomness.scorecard(agreement_at(0.87), shares, measures, checks, settings("smoke"))
    assert len(card.rows) == 18
    assert card.verdict("mean between-run Pearson of normalized density, training set (Fig 6)") == REPRODUCED
    assert card.verdict("train samples with forgetting events whose event epochs differ between runs, "
                        "fraction (Fig 5)") == REPRODUCED
    assert card.verdict("train samples with forgetting events whose number of events differs between runs, "
                        "fraction (Fig 5)") == NOT_REPRODUCED  # 0 of them
    assert card.verdict("recipe target: between-run Pearson of normalized density, training set") == REPRODUCED
    assert card.verdict("recipe target: Pearson of CBTL, per-minibatch vs end-of-epoch record") == REPRODUCED
    assert card.verdict("mean between-run Pearson of per-run CBTL") == CONTEXT
    low = randomness.scorecard(agreement_at(0.5), shares, measures, checks, settings("smoke"))
    assert low.verdict("mean between-run Pearson of normalized density, test set (Fig 6)") == NOT_REPRODUCED
    assert "0.5000 - 0.5000" in low.frame()["this build"].tolist()


@pytest.mark.filterwarnings("ignore:constant input")  # identical constant records have no correlation
def test_scorecard_without_events_is_not_comparable():
    learned = [[[0, 1, 1], [1, 1, 1]], [[1, 1, 1], [1, 1, 1]]]
    runs = fake_runs(learned, learned)
    records = randomness.per_run(runs)
    card = randomness.scorecard(agreement_at(0.87), randomness.variation(records),
                                randomness.measure_agreement(records, n_boot=0),
                                randomness.recipe_checks(records, runs), settings("smoke"))
    assert card.verdict("test samples with mal-generalizing events whose event epochs differ between runs, "
                        "fraction (Fig 5)") == NOT_COMPARABLE
    assert card.verdict("train samples whose CBTL differs between runs, fraction (Fig 5)") == REPRODUCED


def test_figures():
    runs = fake_runs()
    records = randomness.per_run(runs)
    images = np.random.default_rng(0).random((4, 8, 8))
    fig = randomness.plot_over_runs(records["train"], images, np.array([0, 1, 0, 1]), ["a", "b"])
    assert len(fig.axes) == 9 and fig.get_suptitle() == "training samples over 2 runs"
    fig = randomness.plot_density_agreement(agreement_at(0.8))
    assert [ax.get_title() for ax in fig.axes[:2]] == ["train: mean off-diagonal 0.8000\n[0.7900, 0.8100]",
                                                       "test: mean off-diagonal 0.8000\n[0.7900, 0.8100]"]


def test_summary_names_the_papers_values():
    runs = fake_runs()
    records = randomness.per_run(runs)
    text = randomness.summary(agreement_at(0.8), randomness.measure_agreement(records, n_boot=0), runs,
                              settings("smoke"))
    assert "Across 2 seeds" in text and "the paper reports 0.8634 and 0.8733" in text
