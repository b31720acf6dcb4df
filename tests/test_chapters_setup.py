"""regutils.chapters.setup: both records of the same runs, hand-computed."""
from types import SimpleNamespace

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from regutils.chapters import setup  # noqa: E402
from regutils.claims import NOT_COMPARABLE, NOT_REPRODUCED, REPRODUCED  # noqa: E402
from regutils.profiles import settings  # noqa: E402


def fake_runs(train, batch, test_acc=0.5):
    train, batch = np.asarray(train, dtype=bool), np.asarray(batch, dtype=bool)
    return SimpleNamespace(train_correct=train, batch_correct=batch, epochs=train.shape[1],
                           history={"test_acc": np.full((train.shape[0], train.shape[1]), test_acc)})


# one run, 4 epochs, 3 samples (columns)
EPOCH = [[[1, 0, 0], [0, 1, 0], [1, 1, 1], [1, 0, 1]]]
BATCH = [[[1, 1, 0], [1, 1, 0], [1, 1, 0], [1, 1, 1]]]


def test_compare_records_by_hand():
    c = setup.compare_records(fake_runs(EPOCH, BATCH))
    # CBTL: epoch record 3, 2, 2; minibatch record 4, 4, 1
    np.testing.assert_array_equal(c["cbtl"].epoch, [[3, 2, 2]])
    np.testing.assert_array_equal(c["cbtl"].batch, [[4, 4, 1]])
    assert c["cbtl"].mad == pytest.approx((1 + 2 + 1) / 3)
    # events: sample 0 learned, forgotten, learned, kept (1); sample 1 learned at 2, forgotten at 4 (1); sample 2 none
    np.testing.assert_array_equal(c["events"].epoch, [[1, 1, 0]])
    np.testing.assert_array_equal(c["events"].batch, [[0, 0, 0]])
    assert c["events"].mad == pytest.approx(2 / 3)
    assert c["cbtl"].r.r == pytest.approx(np.corrcoef([3, 2, 2], [4, 4, 1])[0, 1])


def test_identical_records_agree_perfectly():
    c = setup.compare_records(fake_runs(EPOCH * 2, EPOCH * 2))
    assert c["cbtl"].mad == 0 and c["events"].mad == 0
    assert c["cbtl"].r.r == pytest.approx(1.0)


@pytest.mark.parametrize(("n", "batch", "steps"), [(50_000, 128, 391), (5_085, 128, 40), (256, 128, 2)])
def test_steps_per_epoch(n, batch, steps):
    assert setup.steps_per_epoch(n, batch) == steps


def test_scorecard_compares_epoch_counts_only_at_the_papers_200_epochs():
    runs = fake_runs(EPOCH * 2, EPOCH * 2, test_acc=0.5)
    card = setup.scorecard(setup.compare_records(runs), runs, settings("smoke"))
    assert card.verdict("Pearson of CBTL, epoch vs minibatch record") == REPRODUCED
    assert card.verdict("mean absolute CBTL difference, epoch vs minibatch record") == NOT_COMPARABLE
    assert card.verdict("mean final test accuracy of the runs") == NOT_COMPARABLE


def test_scorecard_on_the_papers_protocol_scores_the_accuracy():
    compared = setup.compare_records(fake_runs(EPOCH * 2, EPOCH * 2))  # identical records: differences 0
    runs = fake_runs(np.zeros((1, 200, 50_000), dtype=bool), np.zeros((1, 200, 50_000), dtype=bool), test_acc=0.90)
    card = setup.scorecard(compared, runs, settings("paper"))
    assert card.verdict("optimizer steps per epoch: per-step record needs that many times the inference") == REPRODUCED
    assert card.verdict("mean final test accuracy of the runs") == NOT_REPRODUCED  # 0.90 vs 0.9353 +- 0.01
    assert card.verdict("mean absolute CBTL difference, epoch vs minibatch record") == NOT_REPRODUCED  # 0 vs 1.26
