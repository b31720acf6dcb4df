"""regutils.chapters.primer: the measures of a hand-made record, one run and a noisy run, by hand."""
from types import SimpleNamespace

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from regutils.chapters import primer  # noqa: E402
from regutils.claims import CONTEXT, NOT_COMPARABLE, NOT_REPRODUCED, REPRODUCED  # noqa: E402
from regutils.profiles import settings  # noqa: E402

# the chapter's hand-made record: rows are samples A..F, columns epochs 1..8
TOY = np.array([[0, 1, 1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 1, 1, 1], [1, 0, 1, 0, 1, 0, 1, 1],
                [0, 1, 1, 0, 0, 1, 1, 0], [0, 0, 0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1, 1, 1]])
PROB = np.linspace(0, 1, TOY.size).reshape(TOY.shape)


def test_toy_table_by_hand():
    table = primer.toy_table(TOY, PROB, radius=1.0).data
    assert list(table.index) == list("ABCDEF")
    assert table["CBTL"].tolist() == [7, 3, 5, 4, 0, 8]
    assert table["events"].tolist() == [0, 0, 3, 2, 0, 0]
    assert table["events (max)"].tolist() == [0, 0, 3, 2, 8, 0]  # only never-learned E changes
    assert table["first learned (epoch)"].tolist() == [2, 6, 1, 2, 9, 1]
    assert table["learnability"].tolist() == pytest.approx(PROB.mean(axis=1))
    # within distance 1: A (7, 0) and F (8, 0) see each other; every other sample is alone
    assert table["density"].tolist() == pytest.approx(np.array([2, 1, 1, 1, 1, 2]) / np.pi)
    np.testing.assert_array_equal(table[[f"t{t}" for t in range(1, 9)]].to_numpy(), TOY)


def test_toy_table_max_convention_moves_only_never_learned_samples():
    table = primer.toy_table(TOY, PROB, radius=1.0, never_learned="max").data
    assert table["events"].tolist() == [0, 0, 3, 2, 8, 0]
    with pytest.raises(ValueError):
        primer.toy_table(TOY, PROB[:, :4])


def test_sample_names_extend_past_six():
    assert primer.sample_names(3) == ["A", "B", "C"]
    assert primer.sample_names(8) == ["A", "B", "C", "D", "E", "F", "s6", "s7"]


def fake_run(train, test, prob=None):
    train, test = np.asarray(train, dtype=bool)[None], np.asarray(test, dtype=bool)[None]
    prob = train.astype(float) if prob is None else np.asarray(prob, dtype=float)[None]
    acc = lambda c: c.mean(axis=-1)  # noqa: E731 - per-epoch accuracy, shape (1, epochs)
    return SimpleNamespace(train_correct=train, test_correct=test, train_prob=prob,
                           history={"train_acc": acc(train), "test_acc": acc(test)})


# epochs x samples: 4 epochs, 4 training and 3 test samples
TRAIN = [[1, 0, 0, 1], [0, 1, 0, 1], [1, 1, 0, 1], [1, 0, 0, 1]]
TEST = [[0, 1, 0], [1, 1, 0], [0, 1, 0], [1, 1, 0]]


def test_run_measures_by_hand():
    m = primer.run_measures(fake_run(TRAIN, TEST))
    np.testing.assert_array_equal(m.cbtl, [3, 2, 0, 4])
    np.testing.assert_array_equal(m.events, [1, 1, 0, 0])
    np.testing.assert_array_equal(m.events_max, [1, 1, 4, 0])
    np.testing.assert_array_equal(m.cbgl, [2, 4, 0])
    np.testing.assert_array_equal(m.mal, [1, 0, 0])
    np.testing.assert_allclose(m.learn, [0.75, 0.5, 0, 1])
    assert m.epochs == 4 and m.train_acc == 0.5 and m.test_acc == pytest.approx(2 / 3)
    assert m.radius == pytest.approx(np.hypot(4 / 30, 1 / 30))
    table = primer.conventions_table(m).data
    assert table["training set"].tolist() == [1, 2, 1, 4]
    assert table["test set"].tolist() == [1, 1, 1, 4]
    assert "T = 4 epochs" in primer.run_summary(settings("smoke"), m)
    facts = primer.one_run_facts(m)
    assert "median CBTL 2.5, median CBGL 2 of T = 4" in facts and "50% of the training" in facts


def test_figures_have_their_panels():
    m = primer.run_measures(fake_run(TRAIN, TEST))
    assert len(primer.plot_toy(TOY).axes) == 2
    assert len(primer.plot_real_records(m, k=3).axes[0].get_yticks()) == 3
    assert len(primer.plot_one_run(m).axes) == 4  # three panels and the density's colour bar
    matplotlib.pyplot.close("all")


def fake_noisy_runs(train, noisy, test_acc=0.4):
    train = np.asarray(train, dtype=bool)
    runs, epochs = train.shape[:2]
    return SimpleNamespace(train_correct=train, test_correct=train[..., :3], noisy_train=np.asarray(noisy, bool),
                           history={"test_acc": np.full((runs, epochs), test_acc)})


# two runs, 4 epochs, 4 samples; samples 2 and 3 have noisy labels, the clean 0 and 1 are always right
NOISY = [False, False, True, True]
NOISY_TRAIN = [[[1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 0, 0]],
               [[1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 0]]]


def test_label_noise_by_hand():
    clean = primer.run_measures(fake_run(TRAIN, TEST))
    nl = primer.label_noise(fake_noisy_runs(NOISY_TRAIN, NOISY), clean)
    np.testing.assert_allclose(nl.cbtl, [4, 4, 1.5, 0])
    np.testing.assert_allclose(nl.events, [0, 0, 1, 0])
    np.testing.assert_allclose(nl.events_max, [0, 0, 1, 4])
    np.testing.assert_array_equal(nl.learned, [True, True, True, False])
    assert nl.auc == 1.0  # every noisy sample has a lower CBTL than every clean one
    assert (nl.epochs, nl.runs, nl.test_acc, nl.clean_test_acc) == (4, 2, 0.4, clean.test_acc)
    assert nl.cbgl_mean == pytest.approx(np.mean([4, 4, 1.5]))
    assert "2 of 4 training labels replaced (50%)" in primer.noise_summary(nl)
    assert primer.never_fitted_note(nl).startswith("50% of the noisy samples and 0% of the clean ones")
    assert len(primer.plot_label_noise(nl).axes) == 2
    matplotlib.pyplot.close("all")


def test_scorecard_verdicts_when_noisy_samples_are_learned():
    nl = primer.label_noise(fake_noisy_runs(NOISY_TRAIN, NOISY), primer.run_measures(fake_run(TRAIN, TEST)))
    card = primer.scorecard(nl, settings("smoke"), label_noise=0.5)
    assert card.verdict("mean CBTL, clean training samples") == CONTEXT
    assert card.verdict("mean CBTL, noisy training samples") == REPRODUCED  # 0.75 < 4
    assert card.verdict("ROC AUC of low CBTL for finding noisy labels") == REPRODUCED
    assert card.verdict("mean forgetting events, noisy samples learned at least once") == REPRODUCED  # 1 > 0
    row = card.frame().set_index("quantity").loc["mean forgetting events, noisy / clean samples, never learned = max"]
    assert row["this build"] == "2.50 / 0.00" and row["verdict"] == CONTEXT
    # the clean samples share (4, 0), the noisy ones are alone at (1.5, 1) and (0, 0): density ratio 1/2
    assert card.verdict("mean density, noisy / clean samples") == REPRODUCED
    assert card.setting.endswith("2 run(s) (smoke profile), 50% label noise")


def test_scorecard_without_a_learned_noisy_sample_is_not_comparable():
    train = np.array(NOISY_TRAIN)
    train[..., 2] = False  # sample 2 is never learned either
    nl = primer.label_noise(fake_noisy_runs(train, NOISY), primer.run_measures(fake_run(TRAIN, TEST)))
    card = primer.scorecard(nl, settings("smoke"), label_noise=0.5)
    assert card.verdict("mean forgetting events, noisy samples learned at least once") == NOT_COMPARABLE
    assert "no noisy sample is fitted in 4 epochs" in card.frame()["test"].str.cat()
    # the noisy samples now share (0, 0) as the clean ones share (4, 0): density ratio 1, not below 1
    assert card.verdict("mean density, noisy / clean samples") == NOT_REPRODUCED
