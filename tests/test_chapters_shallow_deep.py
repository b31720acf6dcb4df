"""regutils.chapters.shallow_deep: the contingency of a shallow M and two runs of D, hand-computed."""
from types import SimpleNamespace

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from regutils.chapters import shallow_deep  # noqa: E402
from regutils.claims import CONTEXT, NOT_COMPARABLE, NOT_REPRODUCED, REPRODUCED  # noqa: E402
from regutils.profiles import settings  # noqa: E402

S = settings("smoke")  # 2 runs
M = np.array([True, True, False, False])  # M gets samples 0 and 1 right
# D: 2 runs, 3 epochs, 4 test samples
D = np.array([[[1, 0, 0, 0], [1, 1, 1, 0], [1, 0, 1, 1]],
              [[1, 1, 1, 0], [1, 1, 0, 1], [1, 0, 1, 1]]], dtype=bool)
D_ACC = D.mean(-1)  # (runs, epochs)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_shallow_names_default_to_the_chapters_three():
    assert shallow_deep.shallow_names(None) == ("logistic regression", "SVM", "random forest")
    assert shallow_deep.shallow_names(["KNN"]) == ("KNN",)


def test_compare_pools_the_counts_of_the_runs():
    c = shallow_deep.compare({"m": M}, D)
    assert c.epochs == 3 and c.names == ("m",)
    pooled = c.pooled["m"]
    # epoch 1: run 0 T11 1, T01 1, T10 0, T00 2; run 1 T11 2, T01 0, T10 1, T00 1
    assert pooled.loc[1, ["T00", "T01", "T10", "T11"]].tolist() == [3, 1, 1, 3]
    assert pooled.loc[1, "R_plus"] == pytest.approx(0.75) and pooled.loc[1, "R_minus"] == pytest.approx(0.25)
    assert pooled["R_pm"].tolist() == pytest.approx([3.0, 2.0, 0.5])
    # per run: run 0 at epoch 1 gets no M-wrong sample right
    run0 = c.per_run["m"].query("run == 0 and epoch == 1")
    assert run0["R_minus"].item() == 0 and np.isinf(run0["R_pm"].item())
    # learned at the end: samples 0, 2, 3 in both runs; first epochs M right: 1, 1; M wrong: 2, 3, 1, 2
    assert c.first_learned["m"] == {"M right": pytest.approx(1.0), "M wrong": pytest.approx(2.0)}


def test_tables():
    c = shallow_deep.compare({"m": M, "all": np.ones(4, bool)}, D)
    table = shallow_deep.shallow_table(c).data
    assert table.loc["m"].tolist() == [0.5, 2, 2] and table.loc["all"].tolist() == [1.0, 4, 0]
    first = shallow_deep.first_learned_table(c).data
    assert first.loc["m", "mean first-learned epoch, M wrong"] == pytest.approx(2.0)
    summary = shallow_deep.summary_table(c).data
    assert summary.loc["m"].index.tolist() == [1, 2, 3]  # epochs 1, 2, T/4 -> 1, T/2 -> 1, T
    one_epoch = shallow_deep.compare({"m": M}, D[:, :1])
    assert shallow_deep.summary_table(one_epoch).data.loc["m"].index.tolist() == [1]


def test_shallow_only_and_its_note():
    c = shallow_deep.compare({"m": M}, D)
    only = shallow_deep.shallow_only(c, D)
    idx, wrong = only["m"]
    np.testing.assert_array_equal(idx, [1])  # M right, D wrong after the last epoch of both runs
    np.testing.assert_array_equal(wrong, [1.0])
    assert shallow_deep.persistence_note(only, 2) == \
        "Samples M gets right and D gets wrong in at least half of D's 2 runs: 1 (m)."


def test_describe_and_closing_note():
    runs = SimpleNamespace(history={"test_acc": D_ACC}, train_correct=np.zeros((2, 3, 10), bool))
    text = shallow_deep.describe(S, runs, 7)
    assert "fitted on 7 of 10 training images" in text and "epoch 1 0.500, last epoch 0.750" in text
    note = shallow_deep.closing_note(shallow_deep.compare({"m": M}, D), D_ACC)
    assert note.startswith("D's final test accuracy is 0.750") and "holds 2 to 2 samples" in note


def test_figures_are_returned_with_their_panels():
    c = shallow_deep.compare({"m": M, "n": ~M}, D)
    figs = [shallow_deep.plot_accuracies(c, D_ACC), shallow_deep.plot_ratios(c),
            shallow_deep.plot_shallow_only(shallow_deep.shallow_only(c, D), np.zeros((4, 3, 3), np.uint8),
                                           np.array([0, 1, 0, 1]), ["a", "b"])]
    assert [len(f.axes) for f in figs] == [2, 2, 2]
    assert figs[2].axes[1].get_title() == "M = n: none"  # D gets both M-right samples of n right at the end


def test_scorecard_where_d_learns_what_m_learns_first():
    card = shallow_deep.scorecard(S, shallow_deep.compare({"m": M}, D))
    assert card.verdict("R± after epoch 1 of D, M = m") == REPRODUCED  # 3 > 1
    assert card.verdict("R± after the last epoch of D, M = m") == REPRODUCED  # 0.5 < 3
    assert card.verdict("T01 (D wrong, M right) after the last epoch, fewest over D's 2 runs, M = m") == REPRODUCED
    assert card.verdict("first-learned epoch of D, M-wrong minus M-right samples, M = m (this book's addition)") \
        == CONTEXT
    assert card.frame().set_index("quantity").loc[
        "first-learned epoch of D, M-wrong minus M-right samples, M = m (this book's addition)", "this build"] \
        == "1.0000"


def test_scorecard_when_m_gets_everything_right():
    everything = np.ones((2, 3, 4), bool)  # D right everywhere too: T01 is 0, R- has no samples
    card = shallow_deep.scorecard(S, shallow_deep.compare({"m": np.ones(4, bool)}, everything))
    assert card.verdict("R± after epoch 1 of D, M = m") == NOT_COMPARABLE  # nan: no M-wrong sample
    assert card.verdict("R± after the last epoch of D, M = m") == NOT_COMPARABLE
    assert card.verdict("T01 (D wrong, M right) after the last epoch, fewest over D's 2 runs, M = m") \
        == NOT_REPRODUCED
