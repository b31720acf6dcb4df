"""regutils.chapters.every_measure: every measure of a hand-built trace, the conventions, pruning and the scorecard."""
from types import SimpleNamespace

import matplotlib
import numpy as np
import pandas as pd
import pytest
import scipy.stats
import torch

matplotlib.use("Agg")

from regutils import models, scores  # noqa: E402
from regutils.chapters import every_measure as em  # noqa: E402
from regutils.claims import CONTEXT, NOT_COMPARABLE, NOT_REPRODUCED, REPRODUCED  # noqa: E402
from regutils.data import DataConfig  # noqa: E402
from regutils.loop import RunConfig, load_for  # noqa: E402
from regutils.profiles import settings  # noqa: E402
from regutils.trace import Trace  # noqa: E402

# 2 runs, 4 epochs (rows), 6 training samples (columns):
#   s0 always right; s1 learned at epoch 2; s2 at epoch 3; s3 learned, forgotten, relearned in run 1, learned at
#   the last epoch in run 2; s4 never learned; s5 never learned in run 1, learned at the last epoch of run 2
TRAIN = np.array([[[1, 0, 0, 0, 0, 0], [1, 1, 0, 1, 0, 0], [1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 0, 0]],
                  [[1, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 0, 1]]], dtype=bool)
BATCH = TRAIN.copy()
BATCH[1, :, 2] = False  # s2 is never right at a presentation in run 2: never learned on the minibatch record
TEST = np.array([[[1, 0, 0, 1], [1, 1, 0, 0], [1, 1, 0, 1], [1, 1, 1, 1]],
                 [[1, 0, 0, 0], [1, 1, 0, 1], [1, 1, 0, 0], [1, 1, 0, 1]]], dtype=bool)
EL2N = np.array([0.5, 0.9, 0.1, 0.2, 0.7, 0.3])  # the same at every epoch and run
Y = np.array([0, 1, 0, 1, 0, 1])


def hand_trace(test_acc=(0.6, 0.8), scored=True):
    def prob(c):
        return (0.1 + 0.8 * c).astype(np.float16)

    record = dict(train_margin=(2.0 * TRAIN - 1).astype(np.float16), test_margin=(2.0 * TEST - 1).astype(np.float16),
                  train_loss=-np.log(prob(TRAIN)).astype(np.float16), test_loss=-np.log(prob(TEST)).astype(np.float16),
                  train_el2n=np.broadcast_to(EL2N, TRAIN.shape).astype(np.float16),
                  test_el2n=(1 - prob(TEST)).astype(np.float16)) if scored else {}
    return Trace(train_correct=TRAIN, test_correct=TEST, train_prob=prob(TRAIN), test_prob=prob(TEST),
                 batch_correct=BATCH, batch_step=np.zeros(TRAIN.shape, np.int32), y_train=Y, y_test=np.arange(4) % 2,
                 index_train=np.arange(6), index_test=np.arange(4), noisy_train=np.zeros(6, bool),
                 history={"test_acc": np.repeat(np.asarray(test_acc)[:, None], 4, axis=1)},
                 meta={"runs": [{}, {}]}, **record)


GRAND = np.array([3.0, 1.0, 2.0, 6.0, 5.0, 4.0])


@pytest.fixture
def m():
    return em.compute(hand_trace(), el2n_epoch=2, grand=GRAND)


def test_every_measure_of_the_hand_trace(m):
    t = m.train
    assert list(t.columns) == list(em.TRAIN)
    np.testing.assert_allclose(t["cbtl"], [4, 3, 2, 1.5, 0, 0.5])
    np.testing.assert_allclose(t["events"], [0, 0, 0, 0.5, 0, 0])  # s3 forgotten once in run 1
    # minibatch record, never learned = T = 4: s2 in run 2, s4 in both, s5 in run 1
    np.testing.assert_allclose(t["toneva"], [0, 0, 2, 0.5, 4, 2])
    np.testing.assert_allclose(t["first_learned"], [1, 2, 3, 3, 5, 4.5])
    np.testing.assert_allclose(t["aum"], 2 * t["cbtl"] / 4 - 1)  # margins +-1: AUM is CBTL rescaled
    np.testing.assert_allclose(t["confidence"], 0.1 + 0.8 * t["cbtl"] / 4, atol=1e-3)
    np.testing.assert_allclose(t["el2n"], EL2N, atol=1e-3)
    np.testing.assert_allclose(t["grand"], GRAND)
    s5 = (-np.log(0.1) - np.log(0.9)) / 2  # wrong at the end of run 1, right at the end of run 2
    np.testing.assert_allclose(t["loss"], [-np.log(0.9)] * 4 + [-np.log(0.1), s5], atol=2e-3)
    # within r = 1 of each point of the plane (itself included): 2, 3, 3, 2, 2, 2
    np.testing.assert_allclose(t["density"] * np.pi, [2, 3, 3, 2, 2, 2])
    assert list(m.test.columns) == list(em.TEST)
    np.testing.assert_allclose(m.test["cbgl"], [4, 3, 0.5, 2.5])
    np.testing.assert_allclose(m.test["events"], [0, 0, 0, 1])  # test s3: one mal-generalizing event per run
    np.testing.assert_allclose(m.full_acc, [0.6, 0.8])
    assert (m.runs, m.epochs, m.el2n_epoch) == (2, 4, 2)
    assert m.labels("train")[7] == "EL2N (epoch 2)" and m.labels("test")[0] == "CBGL"
    assert "6 training and 4 test samples; measures averaged over 2 runs of 4 epochs; EL2N at epoch 2" in em.describe(m)


def test_compute_needs_the_scores_and_a_real_epoch():
    with pytest.raises(ValueError, match="record_scores=True"):
        em.compute(hand_trace(scored=False), el2n_epoch=1)
    with pytest.raises(ValueError, match="el2n_epoch=5"):
        em.compute(hand_trace(), el2n_epoch=5)
    with pytest.raises(ValueError, match="one value per training sample"):
        em.compute(hand_trace(), el2n_epoch=1, grand=np.zeros(5))
    assert "grand" not in em.compute(hand_trace(), el2n_epoch=1).train


@pytest.mark.parametrize(("epochs", "given", "epoch"), [(200, None, 20), (20, None, 2), (6, None, 1), (4, None, 1),
                                                        (20, 7, 7)])
def test_el2n_epoch(epochs, given, epoch):
    assert em.el2n_epoch(epochs, given) == epoch


def test_el2n_epoch_and_fractions_refuse_what_does_not_exist():
    with pytest.raises(ValueError, match="el2n_epoch=21"):
        em.el2n_epoch(20, 21)
    assert em.removal_fractions(settings("smoke")) == (0.5,)
    assert em.removal_fractions(settings("default")) == (0.4,)
    assert em.removal_fractions(settings("smoke"), [0.0, 0.3]) == (0.3,)
    with pytest.raises(ValueError, match="at least one fraction"):
        em.removal_fractions(settings("smoke"), [0.0])


def test_correlations_are_spearmans_rho(m):
    corr = em.correlations(m.train)
    expected = scipy.stats.spearmanr(m.train.to_numpy()).statistic
    np.testing.assert_allclose(corr.to_numpy(), expected, atol=1e-12)
    assert corr.loc["cbtl", "aum"] == pytest.approx(1.0) and corr.loc["cbtl", "confidence"] == pytest.approx(1.0)
    assert corr.loc["cbtl", "first_learned"] < -0.9  # learned late: low CBTL
    # a constant measure has no correlation
    frame = m.train.assign(events=0.0)
    assert em.correlations(frame)["events"].isna().all()


def test_definitions_name_every_measure_once(m):
    table = em.definitions(m)
    assert list(table.columns) == ["set", "measure", "definition", "source", "easy samples score"]
    train = table[table["set"] == "training"]
    assert train["measure"].tolist() == [em.TRAIN[k].label for k in em.TRAIN]
    # on the test set only what differs from the training set's definition
    assert table[table["set"] == "test"]["measure"].tolist() == ["CBGL", "mal-generalizing", "first correct", "density"]
    assert "epoch 2 of 4" in train.set_index("measure").loc["EL2N", "definition"]
    assert train.set_index("measure").loc["AUM", "source"] == "Pleiss et al. 2020"


def corr_frame(values):
    keys = ["cbtl", "aum", "el2n", "variability"]
    corr = pd.DataFrame(np.eye(4), index=keys, columns=keys)
    for (a, b), v in values.items():
        corr.loc[a, b] = corr.loc[b, a] = v
    return corr


def test_notable_turns_every_measure_so_that_easy_scores_high():
    corr = corr_frame({("cbtl", "aum"): 0.9, ("cbtl", "el2n"): -0.8, ("aum", "el2n"): 0.3,
                       ("cbtl", "variability"): 0.05, ("aum", "variability"): 0.4, ("el2n", "variability"): -0.5})
    turned = em.oriented(corr)
    assert turned.loc["cbtl", "el2n"] == pytest.approx(0.8)  # opposite ends, same samples easy
    assert turned.loc["aum", "el2n"] == pytest.approx(-0.3)  # a real disagreement
    assert turned["variability"].isna().all()  # no easy end
    m = SimpleNamespace(labels=lambda split: ["CBTL", "AUM", "EL2N (epoch 2)", "variability"])
    text = em.notable(corr, "train", m)
    assert "Most alike, once every measure is turned so that easy samples score high: CBTL and AUM (ρ = +0.90" in text
    assert "Most opposed: AUM and EL2N (epoch 2) (ρ = +0.30 as drawn)" in text
    assert "Closest to independent: CBTL and variability (ρ = +0.05)" in text
    agree = corr_frame({("cbtl", "aum"): 0.9, ("cbtl", "el2n"): -0.8, ("aum", "el2n"): -0.3})
    assert "No two measures with an easy end disagree in sign; the weakest agreement: AUM and EL2N" in \
        em.notable(agree, "train", m)


def test_never_learned_counts_and_convention_ranks(m):
    nl = em.never_learned(hand_trace(), m)
    assert nl.per_run.to_dict("list") == {"eval": [2, 1], "minibatch": [2, 2]}
    assert nl.any_run == {"eval": 2, "minibatch": 3} and nl.every_run == {"eval": 1, "minibatch": 1}
    t = nl.table.set_index(["record", "convention"])
    assert len(t) == 8 and t.loc[("eval", "max"), "never learned counts"] == "T = 4"
    # eval record, zero: s3 (0.5 events) first, the five others tied at ranks 2..6: average 4
    assert t.loc[("eval", "zero"), "mean rank"] == 4.0 and t.loc[("eval", "zero"), "rank / N"] == pytest.approx(4 / 6)
    # max: s4 = 4, s5 = (4 + 0) / 2 = 2 rank 1 and 2; inf: both inf, tied at 1.5
    assert t.loc[("eval", "max"), "mean rank"] == 1.5 == t.loc[("eval", "inf"), "mean rank"]
    cbtl, el2n = m.train["cbtl"], m.train["el2n"]
    for convention, f in (("max", [0, 0, 0, 0.5, 4, 2]), ("inf", [0, 0, 0, 0.5, 1e9, 1e9])):
        assert t.loc[("eval", convention), "ρ with CBTL"] == pytest.approx(scipy.stats.spearmanr(f, cbtl).statistic)
        assert t.loc[("eval", convention), "ρ with EL2N"] == pytest.approx(scipy.stats.spearmanr(f, el2n).statistic)
    assert t.loc[("minibatch", "presentations"), "ρ with CBTL"] == pytest.approx(
        scipy.stats.spearmanr([0, 0, 2, 0.5, 4, 2], cbtl).statistic)
    text = em.describe_never(nl)
    assert "eval record: never learned per run [2, 1]; in at least one run 2, in every run 1 (of 6)" in text
    summary = em.conventions_summary(nl)
    assert "the 2 samples never learned in some run stand on average 67% of the way down" in summary
    assert "max, presentations and inf order the samples differently here" in summary


def test_a_record_without_never_learned_samples():
    correct = np.ones((2, 3, 5), dtype=bool)
    correct[:, 0, :2] = False
    runs = SimpleNamespace(train_correct=correct, batch_correct=correct)
    frame = pd.DataFrame({"cbtl": np.arange(5.0), "el2n": np.arange(5.0)[::-1]})
    nl = em.never_learned(runs, SimpleNamespace(train=frame))
    assert nl.any_run == {"eval": 0, "minibatch": 0} and nl.table["mean rank"].isna().all()
    assert "no training sample is never learned in any run" in em.conventions_summary(nl)
    assert "order the samples alike" in em.conventions_summary(nl)
    fig = em.plot_conventions(nl)
    assert "no training sample is\nnever learned in any run" in [t.get_text() for t in fig.axes[0].texts]


def test_pruning_selections_by_hand(m):
    # a third of each class (classes {s0, s2, s4} and {s1, s3, s5}): one sample each
    assert em.kept(m, "cbtl", 1 / 3).tolist() == [2, 3, 4, 5]  # the highest CBTL of each class: s0, s1
    assert em.kept(m, "aum", 1 / 3).tolist() == [2, 3, 4, 5]  # AUM orders as CBTL here
    assert em.kept(m, "el2n", 1 / 3).tolist() == [0, 1, 4, 5]  # the lowest EL2N: s2 (0.1), s3 (0.2)
    assert em.kept(m, "density", 1 / 3).tolist() == [0, 3, 4, 5]  # the densest: s2 (3 / pi), s1 (3 / pi)
    assert em.kept(m, "forgetting", 1 / 3).tolist() == [2, 3, 4, 5]  # the fewest minibatch events: s0, s1
    random = em.kept(m, "random", 1 / 3, seed=5)
    assert len(random) == 4 and sorted(Y[random].tolist()) == [0, 0, 1, 1]
    with pytest.raises(ValueError, match="strategy must be one of"):
        em.kept(m, "grand", 1 / 3)
    s = settings("smoke", seed=3)
    config = em.pruned_config(s, m, "el2n", 1 / 3, k=1)
    assert config.data.train_keep == (0, 1, 4, 5) and config.seed == 4


ACC = {"random": (0.50, 0.54), "forgetting": (0.60, 0.62), "el2n": (0.40, 0.44), "aum": (0.45, 0.47),
       "cbtl": (0.52, 0.50), "density": (0.58, 0.60)}


def retrained(m, fractions=(1 / 3,), seeds=2):
    """retrain with a fake runner: the run of (fraction, strategy, seed index k), the calls' k-th, gets ACC[strategy][k].

    Returns the table, the (train_keep, seed) of each call, and those the calls should have had.
    """
    s = settings("smoke")
    order = [(f, strategy, k) for f in fractions for strategy in em.STRATEGIES for k in range(seeds)]
    calls = []

    def runner(config, runs):
        _, strategy, k = order[len(calls)]
        calls.append((config.data.train_keep, config.seed))
        return SimpleNamespace(history={"test_acc": np.full((runs, 3), ACC[strategy][k])},
                               y_train=np.arange(len(config.data.train_keep)),
                               run_metas=lambda: [{"train_seconds": 2.0}] * runs)

    table = em.retrain(s, m, fractions, seeds=seeds, runner=runner)
    expected = [(em.pruned_config(s, m, strategy, f, k).data.train_keep, s.seed + k) for f, strategy, k in order]
    return table, calls, expected


def test_retrain_trains_every_strategy_and_seed(m):
    table, calls, expected = retrained(m)
    assert list(table.columns) == em.COLUMNS and len(table) == 6 * 2
    assert calls == expected  # each strategy's kept samples, selected and trained with seeds 0 and 1
    assert table[["strategy", "seed"]].values.tolist() == [[s, k] for s in em.STRATEGIES for k in (0, 1)]
    assert calls[4][0] == (0, 1, 4, 5)  # EL2N, seed 0: the lowest EL2N of each class removed
    assert set(table["kept"]) == {4} and set(table["train_seconds"]) == {2.0}
    acc = em.accuracy_table(table).set_index("strategy")
    assert acc.loc["random", "test accuracy"] == pytest.approx(0.52)
    assert acc.loc["random", "sd"] == pytest.approx(np.std([0.50, 0.54], ddof=1), abs=1e-4)
    assert acc.loc["forgetting", "minus random"] == pytest.approx(0.09)
    assert em.difference(table, "density", "el2n", 1 / 3) == pytest.approx(0.17)
    with pytest.raises(ValueError, match="no run of aum, random at fraction 0.5"):
        em.difference(table, "aum", "random", 0.5)
    text = em.pruning_summary(table, m)
    assert "random removal keeps 0.5200" in text and "the best score is forgetting (0.6100, +0.0900" in text
    assert "above random's band: forgetting, density" in text and "below random's mean: el2n, aum, cbtl." in text


def test_scorecard_claims_and_context(m):
    table, _, _ = retrained(m)
    nl = em.never_learned(hand_trace(), m)
    card = em.scorecard(table, m, nl, settings("smoke"), em.correlations(m.train))
    forgetting = "forgetting (minibatch record, never learned = T) minus random at 33% removed: mean test accuracy"
    el2n = "EL2N (epoch 2) minus random at 33% removed: mean test accuracy"
    assert card.verdict(forgetting) == REPRODUCED  # 0.61 against 0.52
    assert card.verdict(el2n) == NOT_REPRODUCED  # 0.42 against 0.52
    assert card.verdict("density minus random at 33% removed: mean test accuracy") == CONTEXT
    assert card.verdict("density minus EL2N at 33% removed: mean test accuracy") == CONTEXT
    assert card.verdict("training samples never learned in some run, minibatch record") == CONTEXT
    frame = card.frame().set_index("quantity")
    assert frame.loc["Spearman of CBTL and AUM, training set", "this build"] == "1.0000"
    assert frame.loc[forgetting, "paper"] == "> 0 (Toneva et al. 2019)"
    assert card.tally().claims == 2
    # beyond half removed Paul et al.'s claim is not comparable
    table, _, _ = retrained(m, fractions=(2 / 3,))
    card = em.scorecard(table, m, nl, settings("smoke"))
    row = card.frame().set_index("quantity").loc["EL2N (epoch 2) minus random at 67% removed: mean test accuracy"]
    assert row["verdict"] == NOT_COMPARABLE and "prune up to 50% of CIFAR-10" in row["test"]


def test_figures_draw(m):
    corr = em.correlations(m.train.assign(events=0.0))
    fig = em.plot_correlations(corr, "training set", m.labels("train"))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == m.labels("train") == \
        [t.get_text() for t in ax.get_yticklabels()]
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 11 * 11 and texts.count("n/a") == 2 * 11 - 1 and "1.00" in texts
    assert ax.get_title() == "training set" and fig.axes[1].get_ylabel() == "Spearman's ρ"

    fig = em.plot_conventions(em.never_learned(hand_trace(), m))
    assert [a.get_title() for a in fig.axes] == ["mean rank of never-learned samples / N\n(small: ranked most forgotten)",
                                                 "Spearman's ρ of forgetting with CBTL",
                                                 "Spearman's ρ of forgetting with EL2N"]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == list(scores.NEVER_LEARNED)
    assert len(fig.axes[0].patches) == 8  # two records x four conventions

    table, _, _ = retrained(m, fractions=(1 / 3, 2 / 3))
    fig = em.plot_pruning(table, m)
    assert len(fig.axes) == 2 and fig.axes[0].get_ylabel() == "final test accuracy"
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == [em.STRATEGY_LABELS[s] for s in em.STRATEGIES]
    random_line = [line for line in fig.axes[0].get_lines() if line.get_linestyle() == "--"]
    assert len(random_line) == 1 and random_line[0].get_ydata()[0] == pytest.approx(0.52)
    full = [line for line in fig.axes[0].get_lines() if line.get_label().startswith("full training set: mean")]
    assert full[0].get_ydata()[0] == pytest.approx(0.7)
    assert fig.axes[0].get_title() == "33% of each class removed, 2 seeds per strategy"


def test_grand_at_init_scores_the_untrained_networks_of_the_runs_seeds():
    config = RunConfig(DataConfig("digits", train_size=60, test_size=30), arch="mlp", epochs=1, seed=3)
    data = load_for(config.data, config.arch)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    got = em.grand_at_init(config, 2, data=data)
    assert torch.equal(torch.get_rng_state(), before)  # the caller's random state is left alone
    nets = []
    for seed in (3, 4):
        torch.manual_seed(seed)
        nets.append(models.build("mlp", data.in_channels, data.num_classes))
    np.testing.assert_allclose(got, scores.grand(nets, data.x_train, data.y_train))
    assert got.shape == (len(data.y_train),) and (got > 0).all()
    with pytest.raises(ValueError, match="n_models"):
        em.grand_at_init(config, 0, data=data)
