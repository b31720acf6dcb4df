"""regutils.chapters.pruning: scores, retraining with a fake runner, and the scorecard of Fig. 12."""
from types import SimpleNamespace

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

from regutils import pruning as prune  # noqa: E402
from regutils.chapters import pruning  # noqa: E402
from regutils.claims import CONTEXT, NOT_COMPARABLE, NOT_REPRODUCED, REPRODUCED  # noqa: E402
from regutils.profiles import settings  # noqa: E402

# 2 runs, 4 epochs, 3 samples: sample 0 correct throughout; sample 1 forgotten once in run 1 and learned
# late in run 2; sample 2 never learned in run 1, learned at the last epoch of run 2
CORRECT = [[[1, 1, 0], [1, 0, 0], [1, 1, 0], [1, 1, 0]],
           [[1, 0, 0], [1, 0, 0], [1, 1, 0], [1, 1, 1]]]


def fake_main(correct=CORRECT, test_acc=(0.6, 0.8)):
    correct = np.asarray(correct, dtype=bool)
    acc = np.tile(np.asarray(test_acc)[:, None], (1, correct.shape[1]))
    return SimpleNamespace(train_correct=correct, history={"test_acc": acc}, y_test=np.zeros(7))


def test_scores_by_hand():
    sc = pruning.scores(fake_main(), (0.5, 1.0, 2.0))
    np.testing.assert_allclose(sc.cbtl, [4, 2.5, 0.5])  # (4 + 4) / 2, (3 + 2) / 2, (0 + 1) / 2
    np.testing.assert_allclose(sc.events, [0, 0.5, 0])
    np.testing.assert_allclose(sc.toneva_events, [0, 0.5, 2])  # never learned in run 1: 4 epochs there
    assert (sc.never_learned, sc.radius, sc.n_test) == (1, 1.0, 7)
    np.testing.assert_allclose(sc.full_acc, [0.6, 0.8])
    assert pruning.scores(fake_main(), (0.5, 2.0)).radius == 0.5  # no r = 1: the profile's first radius
    text = pruning.describe(sc)
    assert "3 training samples; full-set test accuracy over 2 runs: 0.7000 ± 0.1000" in text
    assert "range of the plane: CBTL 0.5 to 4, forgetting events 0 to 0.5" in text


@pytest.mark.parametrize(("fractions", "shown"), [((0.0, 0.4), 0.4), ((0.0, 0.5, 0.8), 0.5), ((0.0,), 0.0),
                                                  ((0.0, 0.8), 0.8), ((0.8,), 0.8)])
def test_shown_fraction(fractions, shown):
    assert pruning.shown_fraction(fractions) == shown


def test_kept_uses_the_toneva_count_for_forgetting():
    sc = pruning.scores(fake_main(), (1.0,))
    assert pruning.kept(sc, "cbtl", 1 / 3).tolist() == [1, 2]  # the highest CBTL goes first
    # fewest events first, counted as Toneva et al. do: sample 2, never learned in run 1, is the most
    # forgotten (by the paper's count it would tie with sample 0 at 0 events and could go first)
    assert pruning.kept(sc, "forgetting", 1 / 3).tolist() == [1, 2]
    assert pruning.kept(sc, "forgetting", 2 / 3).tolist() == [2]


def plane_main(n=40, seed=0):
    """Main runs over n samples with a spread of learning epochs (2 runs, 10 epochs)."""
    first = np.random.default_rng(seed).integers(1, 12, size=(2, n))  # epoch first learned; 11: never
    correct = np.arange(1, 11)[None, :, None] >= first[:, None, :]
    return fake_main(correct, test_acc=(0.5, 0.7))


def test_retrain_tabulates_a_fake_runner():
    s = settings("smoke", prune_fractions=(0.0, 0.5), prune_radii=(0.5, 1.0))
    sc = pruning.scores(plane_main(), s.prune_radii)
    seen = []

    def runner(config, runs):  # accuracy: the mean CBTL of the samples kept, over 10
        seen.append(config.data.train_keep)
        keep = np.arange(40) if config.data.train_keep is None else np.asarray(config.data.train_keep)
        acc = np.full((runs, 2), sc.cbtl[keep].mean() / 10)
        return SimpleNamespace(history={"test_acc": acc}, y_train=keep, meta={"runs": [{"train_seconds": 2.0}] * runs})

    table = pruning.retrain(s, sc, runs=2, runner=runner)
    assert list(table.columns) == prune.COLUMNS
    assert len(table) == 2 * 2 + 3 * 2  # density at two radii, the three others once, two fractions each
    assert seen.count(None) == 5  # fraction 0: the full set, whatever the strategy
    cbtl_half = table.query("strategy == 'cbtl' and fraction == 0.5").iloc[0]
    assert cbtl_half["kept"] == 20 and cbtl_half["train_seconds"] == 4.0
    # removing the highest CBTL leaves the lowest: below the full set
    assert cbtl_half["test_acc"] == pytest.approx(np.sort(sc.cbtl)[:20].mean() / 10)
    assert cbtl_half["test_acc"] < table.query("fraction == 0").test_acc.iloc[0]


def sweep_table(acc, fractions=(0.0, 0.3, 0.6), radii=(0.5, 1.0)):
    """A sweep table whose test accuracy at fraction f > 0 is acc[strategy] (acc["density", r] by radius)."""
    rows = [(strategy, radius, f, 100, 0.95 if f == 0 else acc[strategy if radius is None else (strategy, radius)],
             0.0, 1.0) for strategy, f, radius in prune.settings_grid(prune.STRATEGIES, fractions, radii)]
    return pd.DataFrame(rows, columns=prune.COLUMNS)


ACC = {("density", 0.5): 0.90, ("density", 1.0): 0.93, "cbtl": 0.92, "forgetting": 0.94, "random": 0.80}
FULL = pruning.Scores(np.zeros(3), np.zeros(3), np.zeros(3), 0, np.array([0.94, 0.96]), 1.0, 300)
PAPER_S = settings("paper")
BEST_RADIUS = "r = 1 gives the best mean test accuracy over the fractions removed (here: r = {:g})"


def test_scorecard_on_the_papers_protocol():
    card = pruning.scorecard(sweep_table(ACC), FULL, PAPER_S)
    assert card.verdict("test accuracy, full training set (mean of 10 runs)") == CONTEXT
    assert card.verdict(BEST_RADIUS.format(1)) == REPRODUCED
    assert card.verdict("density (r = 1) outperforms cbtl: mean test-accuracy difference") == REPRODUCED
    assert card.verdict("density (r = 1) outperforms forgetting: mean test-accuracy difference") == NOT_REPRODUCED
    assert card.verdict("random removal below density: mean test-accuracy difference") == REPRODUCED
    assert card.verdict("test accuracy, density (r = 1) strategy, 60% removed") == REPRODUCED  # 0.93 > 0.91
    assert "test accuracy, random strategy, 60% removed" not in card.frame()["quantity"].tolist()
    assert card.frame()["paper"].tolist()[-1] == "> 0.91 at 60%"


def test_scorecard_where_the_profile_cannot_compare():
    smoke = settings("smoke")
    card = pruning.scorecard(sweep_table(ACC, fractions=(0.0, 0.5), radii=(1.0,)), FULL, smoke)
    assert card.verdict(BEST_RADIUS.format(1)) == NOT_COMPARABLE  # one radius only
    assert card.verdict("test accuracy, cbtl strategy, 50% removed") == NOT_COMPARABLE  # not the paper's network
    # the paper's network at a profile that stops short of 60 %: not comparable either
    card = pruning.scorecard(sweep_table(ACC, fractions=(0.0, 0.4)), FULL, PAPER_S)
    row = card.frame().set_index("quantity").loc["test accuracy, cbtl strategy, 40% removed"]
    assert row["verdict"] == NOT_COMPARABLE and "removes at most 40% up to 60%" in row["test"]


def test_scorecard_names_a_better_radius():
    acc = {**ACC, ("density", 0.5): 0.97}
    card = pruning.scorecard(sweep_table(acc), FULL, PAPER_S)
    assert card.verdict(BEST_RADIUS.format(0.5)) == NOT_REPRODUCED


def test_figures_and_summary():
    sc = pruning.scores(plane_main(), (0.5, 1.0))
    fig = pruning.plot_removal(sc, 0.5)
    assert [ax.get_title() for ax in fig.axes[:4]] == [f"{s}: 20 removed" for s in prune.STRATEGIES]
    table = sweep_table(ACC)
    fig = pruning.plot_accuracy(table, sc)
    assert len(fig.axes[0].get_lines()) == 2 and len(fig.axes[1].get_lines()) == 4
    text = pruning.summary(table, sc, prune_runs=1)
    assert text.startswith("Mean test accuracy of the density strategy over the fractions removed, by radius: "
                           "r = 0.5: 0.9000, r = 1: 0.9300.")
    assert "scored on 7 test samples" in text


def test_retrain_table_for_the_page_shows_the_spread_only_over_several_runs():
    table = sweep_table(ACC)
    one = pruning.retrain_table(table, runs=1)
    assert "std over runs" not in one.data.columns and "training time (s)" in one.data.columns
    assert "std over runs" in pruning.retrain_table(table, runs=2).data.columns
    html = one.to_html()
    assert "nan" not in html.lower() and "%" in html
