"""regutils.chapters.robustness: Table 2 and Fig. 11 on hand-made measures, no training."""
from types import SimpleNamespace

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

from regutils import robustness as rob  # noqa: E402
from regutils.chapters import robustness  # noqa: E402
from regutils.claims import CONTEXT, NOT_COMPARABLE, NOT_REPRODUCED, REPRODUCED  # noqa: E402
from regutils.profiles import settings  # noqa: E402
from regutils.stats import Corr  # noqa: E402


def fake_measures(groups, n=30, noise=0.1, seed=0):
    """{group: the six quantities}, each group the same base values plus its own noise of scale ``noise``."""
    rng = np.random.default_rng(seed)
    base = {"CBTL": rng.integers(0, 7, n) * 1.0, "forgetting": rng.integers(0, 3, n) * 1.0,
            "CBGL": rng.integers(0, 7, n) * 1.0, "mal-generalizing": rng.integers(0, 3, n) * 1.0,
            "train density": rng.random(n) + 0.1, "test density": rng.random(n) + 0.1}
    return {g: {k: v + noise * rng.random(n) for k, v in base.items()} for g in groups}


def corr(r):
    return Corr(r, r - 0.01, r + 0.01, 100)


def density_pairs(sgd_adagrad, sgd_adamax, adagrad_adamax):
    pairs = {("sgd", "adagrad"): corr(sgd_adagrad), ("sgd", "adamax"): corr(sgd_adamax),
             ("adagrad", "adamax"): corr(adagrad_adamax)}
    return {"train": pairs, "test": pairs}


CEILING = pd.DataFrame({name: [0.95] for name in rob.MEASURES}, index=pd.MultiIndex.from_tuples([("x", "y")]))


def test_seed_groups_and_describe():
    s = settings("smoke", robustness_runs=3, seed=5)
    assert robustness.seed_groups(s) == ("5–7", "8–10")
    text = robustness.describe(settings("smoke"))
    assert "optimizers sgd (initial rate 0.1), adamax (initial rate 0.002) (mlp)" in text
    assert "2 runs each" in text


def test_training_summary_by_hand():
    trace = SimpleNamespace(history={"test_acc": np.array([[0.1, 0.5], [0.2, 0.7]]),
                                     "train_acc": np.array([[0.3, 0.9], [0.5, 0.9]])}, epochs=2,
                            meta={"runs": [{"train_seconds": 3.0, "eval_seconds": 1.0},
                                           {"train_seconds": 5.0, "eval_seconds": 1.0}]})
    table = robustness.training_summary({"mlp": trace}).data
    assert table.loc["mlp"].tolist() == pytest.approx([0.6, 0.4, 2.5])  # (4 + 6) / 2 runs / 2 epochs


def test_architecture_correlations_cover_every_quantity_and_pair():
    by_arch = fake_measures(["a", "b", "c"])
    corrs = robustness.architecture_correlations(by_arch, n_boot=50, seed=0)
    assert list(corrs)[:3] == [("CBTL", "a", "b"), ("CBTL", "a", "c"), ("CBTL", "b", "c")]
    assert len(corrs) == 6 * 3
    expected = np.corrcoef(by_arch["a"]["test density"], by_arch["c"]["test density"])[0, 1]
    assert corrs["test density", "a", "c"].r == pytest.approx(expected)


def test_optimizer_density_of_identical_planes_is_one():
    one = fake_measures(["sgd"])["sgd"]
    opt = robustness.optimizer_density({"sgd": one, "adamax": dict(one)}, n_boot=20)
    assert set(opt) == {"train", "test"}
    assert opt["train"]["sgd", "adamax"].r == pytest.approx(1.0)
    table = robustness.fig11_table(opt).data
    assert table.loc["sgd–adamax", "train, paper"] == 0.6877
    assert table.loc["sgd–adamax", "test density, Pearson"] == pytest.approx(1.0)


def test_scorecard_reproduces_the_papers_ordering():
    s = settings("smoke", optimizers=("sgd", "adagrad", "adamax"))
    arch_corr = {(name, "mlp", "small_cnn"): corr(0.92) for name in rob.MEASURES}
    card = robustness.scorecard(arch_corr, CEILING, density_pairs(0.89, 0.50, 0.66), s, tolerance=0.1)
    assert card.verdict("Table 2, CBTL: mlp vs small_cnn") == REPRODUCED  # 0.92 >= 0.88
    assert card.verdict("noise ceiling, train density: mlp, seeds 0–1 vs 2–3") == CONTEXT
    assert card.verdict("Fig. 11, train density: sgd vs adagrad") == REPRODUCED  # |0.89 - 0.8914| <= 0.1
    assert card.verdict("Fig. 11, test density: adagrad vs adamax") == REPRODUCED  # |0.66 - 0.7062| <= 0.1
    assert card.verdict("Fig. 11, test density: sgd vs adamax") == NOT_REPRODUCED  # |0.50 - 0.6628| > 0.1
    quantity = "sgd–adagrad is the closest optimizer pair, train density (here: sgd–adagrad)"
    assert card.verdict(quantity) == REPRODUCED
    assert card.verdict("sgd–adamax below every architecture pair, train density") == REPRODUCED  # 0.50 < 0.92
    # SGD-AdaGrad's test value 0.8877 is above Table 2's lowest 0.8846: no such claim on the test samples
    assert card.verdict("sgd–adamax below every architecture pair, test density") == REPRODUCED
    with pytest.raises(KeyError):
        card.verdict("sgd–adagrad below every architecture pair, test density")
    assert card.verdict("sgd–adagrad below every architecture pair, train density") == REPRODUCED


def test_fig11_tolerance_and_the_lowest_architecture_pair():
    s = settings("smoke", optimizers=("sgd", "adagrad", "adamax"))
    arch_corr = {(name, a, b): corr(r) for name in rob.MEASURES
                 for (a, b), r in ((("mlp", "lenet"), 0.95), (("mlp", "small_cnn"), 0.60))}
    card = robustness.scorecard(arch_corr, CEILING, density_pairs(0.75, 0.50, 0.66), s, tolerance=0.2)
    assert card.verdict("Fig. 11, test density: sgd vs adamax") == REPRODUCED  # |0.50 - 0.6628| <= 0.2
    # the lowest architecture pair, mlp-small_cnn at 0.60, is the bar
    assert card.verdict("sgd–adamax below every architecture pair, train density") == REPRODUCED  # 0.50
    assert card.verdict("adagrad–adamax below every architecture pair, train density") == NOT_REPRODUCED  # 0.66
    assert card.verdict("Table 2, CBTL: mlp vs small_cnn") == NOT_REPRODUCED


def test_closest_pair_not_comparable_without_adagrad():
    s = settings("smoke")  # sgd and adamax only
    arch_corr = {(name, "mlp", "small_cnn"): corr(0.92) for name in rob.MEASURES}
    pairs = {("sgd", "adamax"): corr(0.5)}
    card = robustness.scorecard(arch_corr, CEILING, {"train": pairs, "test": pairs}, s)
    assert card.verdict("sgd–adagrad is the closest optimizer pair, train density (here: sgd–adamax)") \
        == NOT_COMPARABLE
    assert card.verdict("sgd–adamax below every architecture pair, train density") == REPRODUCED


def test_ceiling_summary_counts_entries_and_capped_ceilings():
    s = settings("smoke")
    arch_corr = {(name, "mlp", "small_cnn"): corr(0.5 if name == "CBTL" else 0.9) for name in rob.MEASURES}
    card = robustness.scorecard(arch_corr, CEILING, density_pairs(0.9, 0.7, 0.7), s)
    arch_table = pd.DataFrame({name: [c.r] for (name, _, _), c in arch_corr.items()})
    ceiling = CEILING.copy()
    ceiling["forgetting"] = 0.75
    text = robustness.ceiling_summary(card, arch_table, ceiling, s)
    assert text.startswith("5 of the 6 Table 2 entries of this build are at least 0.88.")
    assert "reaches 53% to 120% of that ceiling" in text  # 0.5 / 0.95 and 0.9 / 0.75
    assert "1 of the 6 ceilings lie below 0.88 (forgetting)" in text


def test_figures():
    by = fake_measures(["sgd", "adamax", "adagrad"])
    assert len(robustness.plot_representations(by).axes) == 2 * 3 + 2  # and two colorbars
    assert len(robustness.plot_correlations(by).axes) == 6 + 1
