"""regutils.chapters.learnability: learnability of each model, their agreement, and the scorecard, by hand."""
import warnings
from types import SimpleNamespace

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from regutils.chapters import learnability  # noqa: E402
from regutils.claims import CONTEXT, NOT_COMPARABLE, NOT_REPRODUCED, REPRODUCED  # noqa: E402
from regutils.profiles import settings  # noqa: E402


def fake_trace(prob, test_prob=None, index=None, test_acc=0.5):
    """Stacked runs (runs, epochs, samples): correct where the label's probability exceeds 1/2."""
    prob = np.asarray(prob, dtype=float)
    test_prob = prob[..., :3] if test_prob is None else np.asarray(test_prob, dtype=float)
    runs, epochs, n = prob.shape
    return SimpleNamespace(train_prob=prob, train_correct=prob > 0.5, test_prob=test_prob,
                           index_train=np.arange(n) if index is None else np.asarray(index), y_train=np.arange(n) % 2,
                           history={"test_acc": np.full((runs, epochs), test_acc)})


# two runs, two epochs, five samples
PROB_A = [[[0.9, 0.6, 0.4, 0.2, 0.1], [1.0, 0.8, 0.6, 0.2, 0.0]],
          [[0.9, 0.4, 0.4, 0.4, 0.1], [1.0, 0.8, 0.6, 0.4, 0.0]]]


def test_architectures_fall_back_to_the_robustness_list():
    assert learnability.architectures(settings("smoke")) == ("mlp", "small_cnn")
    assert learnability.architectures(settings("paper")) == learnability.SOURCE_NETS
    assert learnability.architectures(settings("smoke", learn_archs=("lenet",))) == ("lenet",)


def test_compute_by_hand():
    result = learnability.compute({"a": fake_trace(PROB_A, test_acc=0.7), "b": fake_trace(np.flip(PROB_A, -1))})
    np.testing.assert_allclose(result.learn["a"], [0.95, 0.65, 0.5, 0.3, 0.05])
    np.testing.assert_allclose(result.learn["b"], [0.05, 0.3, 0.5, 0.65, 0.95])
    np.testing.assert_allclose(result.learn_test["a"], [0.95, 0.65, 0.5])
    # correct (> 1/2) in run 1: 2, 2, 1, 0, 0 epochs; in run 2: 2, 1, 1, 0, 0 -> hit rates over 2 epochs
    np.testing.assert_allclose(result.hits["a"], [1, 0.75, 0.5, 0, 0])
    assert (result.archs, result.runs, result.epochs, result.test_acc["a"]) == (["a", "b"], 2, 2, 0.7)
    table = learnability.overview(result).data
    assert table.loc["a", "share with learnability > 0.9"] == 0.2
    assert table.loc["b", "mean learnability (train)"] == pytest.approx(0.49)
    assert learnability.describe(settings("smoke"), result) == "a, b; 2 runs each, 2 epochs, cifar10-subset"


def test_compute_refuses_runs_on_different_samples():
    with pytest.raises(ValueError, match="same training samples"):
        learnability.compute({"a": fake_trace(PROB_A), "b": fake_trace(PROB_A, index=[4, 3, 2, 1, 0])})


def test_correlate_and_the_source_table():
    twice = np.asarray(PROB_A) ** 2  # a monotone transform: the same order, not the same line
    result = learnability.compute({"vgg16_bn": fake_trace(PROB_A), "resnet20": fake_trace(twice),
                                   "mlp": fake_trace(np.flip(PROB_A, -1))})
    corr = learnability.correlate(result)
    assert list(corr) == [("vgg16_bn", "resnet20"), ("vgg16_bn", "mlp"), ("resnet20", "mlp")]
    same = corr["vgg16_bn", "resnet20"]
    assert same.spearman.r == pytest.approx(1.0)
    assert same.pearson.r == pytest.approx(np.corrcoef(result.learn["vgg16_bn"], result.learn["resnet20"])[0, 1])
    assert same.pearson.r < 1 and same.pearson.n == 5
    assert corr["vgg16_bn", "mlp"].spearman.r == pytest.approx(-1.0)
    table = learnability.agreement_table(corr).data
    assert table.loc[0, "Pearson, source"] == 0.796 and table.loc[0, "rank, source"] == 0.867
    assert np.isnan(table.loc[1, "Pearson, source"])  # the source trained no MLP


def test_extremes_order_by_the_mean_rank():
    result = learnability.compute({"a": fake_trace(PROB_A), "b": fake_trace(np.asarray(PROB_A) ** 2)})
    easiest, hardest = learnability.extremes(result, k=2)
    np.testing.assert_array_equal(easiest, [0, 1])
    np.testing.assert_array_equal(hardest, [4, 3])


def test_networks_note_says_whether_they_are_the_sources():
    assert learnability.networks_note(("mobilenet", "vgg16_bn", "resnet20")).endswith("the source's three.")
    assert "not pair by pair" in learnability.networks_note(("mlp", "small_cnn"))


def test_figures_have_their_panels():
    result = learnability.compute({"a": fake_trace(PROB_A), "b": fake_trace(np.asarray(PROB_A) ** 2),
                                   "c": fake_trace(np.flip(PROB_A, -1))})
    corr = learnability.correlate(result)
    assert len(learnability.plot_distribution(result).axes) == 2
    assert len(learnability.plot_pairs(result, corr).axes) == 4  # three pairs and a colour bar
    data = SimpleNamespace(images_train=np.zeros((5, 4, 4), dtype=np.uint8), classes=["even", "odd"])
    assert len(learnability.plot_extremes(result, data, k=2).axes) == 2
    matplotlib.pyplot.close("all")


def test_scorecard_verdicts():
    result = learnability.compute({"mlp": fake_trace(PROB_A), "small_cnn": fake_trace(np.flip(PROB_A, -1))})
    card = learnability.scorecard(learnability.correlate(result), settings("smoke"))
    assert card.verdict("Pearson of learnability, mlp vs small_cnn") == NOT_REPRODUCED  # r = -1
    assert card.verdict("Spearman of learnability, mlp vs small_cnn") == NOT_REPRODUCED
    assert card.verdict("Pearson of hits (CBTL/T), mlp vs small_cnn") == CONTEXT
    assert card.frame()["paper"][0] == "> 0.71 for every pair"
    assert card.setting == "cifar10-subset, mlp, small_cnn, 6 epochs, 2 runs each (smoke profile)"


def test_scorecard_on_the_sources_pair_and_an_undefined_correlation():
    flat = np.full((2, 2, 5), 0.6)  # every sample equally learnable: no correlation is defined
    result = learnability.compute({"vgg16_bn": fake_trace(PROB_A), "resnet20": fake_trace(np.asarray(PROB_A) ** 2),
                                   "mobilenet": fake_trace(flat)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        card = learnability.scorecard(learnability.correlate(result), settings("paper"))
    assert card.verdict("Spearman of learnability, vgg16_bn vs resnet20") == REPRODUCED
    assert card.verdict("Pearson of learnability, vgg16_bn vs resnet20") == REPRODUCED
    assert card.frame()["paper"][0] == "0.796 (all pairs > 0.71)"
    assert card.verdict("Pearson of learnability, vgg16_bn vs mobilenet") == NOT_COMPARABLE
