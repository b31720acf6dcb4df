"""regutils.chapters.arpit: the resolved plan, each section's numbers and scorecard rows, on tiny hand-made inputs."""
from types import SimpleNamespace

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from regutils import sensitivity  # noqa: E402
from regutils.chapters import arpit  # noqa: E402
from regutils.claims import CONTEXT, NOT_COMPARABLE, NOT_REPRODUCED, REPRODUCED  # noqa: E402
from regutils.profiles import chapter_settings, settings  # noqa: E402
from regutils.report import Scorecard  # noqa: E402

MEMORIZE = dict(optimizer="adam", lr=0.003, weight_decay=0.0, batch_size=32, schedule="constant")


def make_plan(profile="smoke", **overrides):
    return arpit.plan(*chapter_settings("arpit", profile, overrides))


def linear(weight):
    """A linear model without bias: logits = x @ weight.T."""
    model = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor(weight, dtype=torch.float32))
    return model.eval()


def test_plan_resolves_the_none_defaults_from_the_settings():
    plan = make_plan("smoke")  # 6 epochs, 2 runs
    assert plan.p.first_epoch_runs == 2
    assert plan.p.checkpoints == [1, 2, 6]
    assert plan.p.fit_epochs == plan.p.noise_epochs == 12
    assert plan.p.noise_checkpoints == [1, 4, 12]  # 1, 12 // 12 = 1, 12 // 3, 12
    assert plan.p.regularize_eps == plan.p.csr_radius == 0.1
    assert plan.memorize == MEMORIZE


def test_plan_keeps_the_run_configurations_and_so_the_cache_keys():
    # the configurations the chapter built before it had a module: the traces it cached must still serve it
    for profile, train_size in (("smoke", None), ("default", 1000), ("digits", 600)):
        old = settings(profile, train_size=train_size)
        plan = make_plan(profile)
        assert plan.s == old
        assert plan.full == {"real": old.run_config(**MEMORIZE),
                             "randY": old.run_config(data=old.data_config(label_noise=1.0), **MEMORIZE),
                             "randX": old.run_config(data=old.data_config(random_inputs=True), **MEMORIZE)}


def test_plan_applies_overrides():
    plan = make_plan("smoke", checkpoints=[4, 1, 4], fit_epochs=3, noise_epochs=24, regularize_eps=0.05,
                     train_size=500, epochs=9)
    assert plan.p.checkpoints == [1, 4]
    assert plan.p.fit_epochs == 3 and plan.p.regularize_eps == 0.05
    assert plan.p.noise_checkpoints == [1, 2, 8, 24]
    assert plan.s.train_size == 500 and plan.full["real"].data.train_size == 500 and plan.full["real"].epochs == 9
    assert "models at epochs [1, 4]" in arpit.describe(plan)


# 1. easy samples


def test_first_epoch_rates_by_hand():
    real = np.array([[1, 1, 0, 0], [1, 0, 0, 1], [1, 1, 0, 0]], dtype=bool)  # 3 runs, 4 samples
    flat = np.array([[1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 0, 1]], dtype=bool)
    first = arpit.first_epoch_rates({"real": real, "randY": flat, "randX": flat})
    np.testing.assert_allclose(first.miss_rate["real"], [0, 1 / 3, 1, 2 / 3])
    assert first.runs == 3
    assert first.easy_share == {"real": 0.25, "randY": 0.0, "randX": 0.0}
    # rates 0, 1/3, 1, 2/3: variance (ddof 1) 5/27 over the binomial 0.5 * 0.5 / 3
    assert first.dispersion["real"] == pytest.approx(20 / 9)
    assert first.dispersion["randY"] < first.dispersion["real"]

    card = Scorecard("arpit", setting="test")
    arpit.first_epoch_rows(card, first)
    assert card.verdict("share of training samples right after epoch 1 in all 3 runs, randY") == REPRODUCED
    assert card.verdict("dispersion of the samples' misclassification rates after epoch 1, randX") == REPRODUCED
    assert card.verdict("share of training samples right after epoch 1 in all 3 runs, real") == CONTEXT


def test_first_epoch_rows_with_one_run_cannot_judge_the_dispersion():
    one = np.array([[1, 0, 1, 0]], dtype=bool)
    first = arpit.first_epoch_rates({"real": one, "randY": ~one, "randX": one})
    card = Scorecard("arpit", setting="test")
    arpit.first_epoch_rows(card, first)
    assert card.verdict("dispersion of the samples' misclassification rates after epoch 1, randY") == NOT_COMPARABLE
    assert card.verdict("share of training samples right after epoch 1 in all 1 runs, randX") == NOT_REPRODUCED


def test_plot_first_epoch_has_a_panel_per_condition():
    correct = np.array([[1, 0, 1], [1, 1, 0]], dtype=bool)
    fig = arpit.plot_first_epoch(arpit.first_epoch_rates({"real": correct, "randY": correct, "randX": correct}))
    assert isinstance(fig, plt.Figure) and len(fig.axes) == 3
    plt.close(fig)


# 2. loss sensitivity


def fake_checkpoints(weights_by_condition):
    x = torch.zeros(4, 2)
    y = torch.tensor([0, 1, 0, 1])
    return arpit.Checkpoints({name: {e + 1: linear(w) for e, w in enumerate(ws)}
                              for name, ws in weights_by_condition.items()},
                             {name: SimpleNamespace(x_train=x, y_train=y, num_classes=2)
                              for name in weights_by_condition})


def test_loss_sensitivity_by_hand_and_mean_over_models():
    # logits W x at x = 0: softmax (1/2, 1/2); dL/dx = W^T (p - e_y) = W^T (-1/2, 1/2) for y = 0, |.|_1 = 1 for W = I
    ckpt = fake_checkpoints({"real": [np.eye(2), 3 * np.eye(2)], "randY": [np.eye(2)], "randX": [np.zeros((2, 2))]})
    g = arpit.loss_sensitivities(ckpt)
    np.testing.assert_allclose(g["real"], [2, 2, 2, 2])  # (1 + 3) / 2
    np.testing.assert_allclose(g["randY"], [1, 1, 1, 1])
    np.testing.assert_allclose(g["randX"], [0, 0, 0, 0])


def test_loss_sensitivity_rows_compare_the_top_share():
    g_bar = {"real": np.r_[np.full(9, 1.0), 91.0], "randY": np.ones(10), "randX": np.r_[np.ones(9), 200.0]}
    card = Scorecard("arpit", setting="test")
    arpit.loss_sensitivity_rows(card, g_bar)
    assert card.verdict("share of total loss sensitivity in the top 10 % of samples, randY") == REPRODUCED  # 0.1 < 0.91
    assert card.verdict("share of total loss sensitivity in the top 10 % of samples, randX") == NOT_REPRODUCED
    fig = arpit.plot_loss_sensitivity(g_bar)
    assert len(fig.axes) == 2
    plt.close(fig)


def test_class_sensitivities_average_the_models():
    ckpt = fake_checkpoints({"real": [np.eye(2), [[1.0, 2.0], [0.0, 1.0]]], "randY": [np.eye(2)],
                             "randX": [np.eye(2)]})
    data = ckpt.data["real"]
    expected = np.mean([sensitivity.class_sensitivity(m, data.x_train, data.y_train, 2, per_class=2)
                        for m in ckpt.models["real"].values()], axis=0)
    class_g = arpit.class_sensitivities(ckpt, per_class=2)
    assert class_g["real"].shape == (2, 2)
    np.testing.assert_allclose(class_g["real"], expected)


def test_row_normalized_and_class_sensitivity_rows():
    class_g = {"real": np.array([[1.0, 3.0], [2.0, 2.0]]), "randY": np.array([[4.0, 1.0], [1.0, 4.0]]),
               "randX": np.array([[1.0, np.nan], [np.nan, 1.0]])}
    rows = arpit.row_normalized(class_g)
    np.testing.assert_allclose(rows["real"], [[0.5, 1.5], [1.0, 1.0]])
    np.testing.assert_allclose(rows["randX"], [[1.0, np.nan], [np.nan, 1.0]])
    card = Scorecard("arpit", setting="test")
    arpit.class_sensitivity_rows(card, class_g)
    # off-diagonal shares: real 5/8, randY 2/10, randX 0
    assert card.verdict("off-diagonal share of the per-class loss sensitivity, randY") == REPRODUCED
    assert card.verdict("off-diagonal share of the per-class loss sensitivity, randX") == REPRODUCED
    fig = arpit.plot_class_sensitivity(class_g)
    assert len(fig.axes) == 4  # three panels and the colour bar
    plt.close(fig)


# 3. critical samples


def test_csr_along_flips_a_sample_only_within_reach_of_the_boundary():
    # W = I: (1, 0) is class 0 with margin 1; the L-inf ball of radius r reaches the boundary when r >= 1/2
    model = {3: linear(np.eye(2))}
    x = torch.tensor([[1.0, 0.0], [2.0, 0.0]])
    p = SimpleNamespace(csr_radius=0.6, csr_steps=10, csr_samples=None)
    assert arpit.csr_along(model, x, p, seed=0) == {3: 0.5}  # (2, 0) needs r >= 1
    assert arpit.csr_along(model, x, SimpleNamespace(**{**vars(p), "csr_radius": 0.1}), seed=0) == {3: 0.0}


def test_csr_rows_compare_the_last_checkpoint():
    csr = {"real": {1: 0.5, 6: 0.1}, "randY": {1: 0.2, 6: 0.4}, "randX": {1: 0.9, 6: 0.05}}
    card = Scorecard("arpit", setting="test")
    arpit.csr_rows(card, csr, 0.1)
    assert card.verdict("critical sample ratio at epoch 6 (r = 0.1), randY") == REPRODUCED
    assert card.verdict("critical sample ratio at epoch 6 (r = 0.1), randX") == NOT_REPRODUCED
    plt.close(arpit.plot_csr(csr, 0.1))


# 4. time to fit


def fit_times(real, rand_y, epochs=12):
    return arpit.FitTimes([100, 250], {"real": np.array(real), "randY": np.array(rand_y)}, epochs, 0.99,
                          {name: np.linspace(0.1, 1, 6) for name in ("real", "randY", "randX")})


def test_fit_sizes():
    assert arpit.fit_sizes((0.1, 0.25), 1000) == [100, 250]
    assert arpit.fit_sizes((0.05,), 5085) == [254]


def test_fit_rows_decided():
    card = Scorecard("arpit", setting="test")
    arpit.fit_rows(card, fit_times([2, 3], [3, 8]))
    assert card.rows[0]["this build"] == "2 / 3"
    assert card.verdict("randY takes more epochs to fit 250 than 100 samples") == REPRODUCED
    assert card.verdict("the time to fit grows more from 100 to 250 samples on randY than on real data") == REPRODUCED
    card = Scorecard("arpit", setting="test")
    arpit.fit_rows(card, fit_times([2, 9], [3, 3]))
    assert card.verdict("randY takes more epochs to fit 250 than 100 samples") == NOT_REPRODUCED


def test_fit_rows_open_when_the_runs_never_fit():
    card = Scorecard("arpit", setting="test")
    arpit.fit_rows(card, fit_times([2, 3], [13, 13]))  # 13 = epochs + 1: never fitted
    assert card.rows[1]["this build"] == "never / never"
    assert card.verdict("randY takes more epochs to fit 250 than 100 samples") == NOT_COMPARABLE
    assert "a randY run never reached 99% training accuracy within 12 epochs" in card.rows[2]["test"]
    fig = arpit.plot_time_to_fit(fit_times([2, 3], [13, 13]))
    assert len(fig.axes) == 2
    plt.close(fig)


# 5. label noise

NOISY = dict(train=[0.5, 0.8, 0.95, 1.0], val=[0.5, 0.6, 0.55, 0.5], csr={1: 0.1, 2: 0.2, 4: 0.5})
CLEAN = dict(train=[0.6, 0.9, 1.0, 1.0], val=[0.5, 0.6, 0.65, 0.64], csr={1: 0.1, 3: 0.1, 4: 0.15})


def label_noise(levels):
    return arpit.LabelNoise({q: np.array(d["train"]) for q, d in levels.items()},
                            {q: np.array(d["val"]) for q, d in levels.items()},
                            {q: d["csr"] for q, d in levels.items()}, epochs=4, threshold=0.99)


def test_label_noise_summary_by_hand():
    noise = label_noise({0.0: CLEAN, 0.4: NOISY})
    assert noise.peak == {0.0: 3, 0.4: 2}
    assert noise.fitted == {0.0: 3, 0.4: 4}
    assert noise.val_drop == pytest.approx({0.0: 0.01, 0.4: 0.1})


def test_noise_rows_comparable():
    card = Scorecard("arpit", setting="test")
    arpit.noise_rows(card, label_noise({0.0: CLEAN, 0.4: NOISY}))
    assert card.verdict("validation accuracy peaks before the training set is fitted, 40% label noise") == REPRODUCED
    assert card.verdict("validation accuracy lost after its peak, 40% label noise") == REPRODUCED  # 0.1 > 0.01
    assert card.verdict("CSR at the end of training (epoch 4), 40% label noise") == REPRODUCED  # 0.5 > 0.2
    assert card.verdict("CSR at the end of training (epoch 4), 0% label noise") == CONTEXT
    assert card.rows[0]["this build"] == "3 / 3"
    fig = arpit.plot_label_noise(label_noise({0.0: CLEAN, 0.4: NOISY}), 0.1)
    assert len(fig.axes) == 3
    plt.close(fig)


def test_noise_rows_not_comparable():
    never = dict(NOISY, train=[0.5, 0.6, 0.7, 0.8], val=[0.5, 0.6, 0.65, 0.7], csr={1: 0.1, 4: 0.3})
    card = Scorecard("arpit", setting="test")
    arpit.noise_rows(card, label_noise({0.8: never}))  # no clean run, never fitted, peak at the last epoch
    rows = {row["quantity"]: row for row in card.rows}
    before = rows["validation accuracy peaks before the training set is fitted, 80% label noise"]
    assert before["verdict"] == NOT_COMPARABLE
    lost = rows["validation accuracy lost after its peak, 80% label noise"]
    assert lost["verdict"] == CONTEXT and "no noise-free run" in lost["test"]  # nothing to compare with: not a claim
    assert card.verdict("CSR at the end of training (epoch 4), 80% label noise") == NOT_COMPARABLE


# 6. regularization

P = SimpleNamespace(regularize_dropout=0.5, regularize_weight_decay=5e-3, regularize_eps=0.1)


def test_regularizers_are_labelled_by_their_values():
    regs = arpit.regularizers(P)
    assert list(regs) == ["none", "dropout 0.5", "weight decay 0.005", "adversarial, eps 0.1",
                          arpit.ADVERSARIAL_DROPOUT]
    assert regs[arpit.ADVERSARIAL_DROPOUT] == dict(adversarial_eps=0.1, dropout=0.5)


def regularization(speed, final):
    labels = list(arpit.regularizers(P))
    return arpit.Regularization({r: np.array([0.1, 2 * s - 0.1]) for r, s in zip(labels, speed)},
                                {r: np.array([0.3, f]) for r, f in zip(labels, final)}, noise=1.0, tolerance=0.02)


def test_regularization_rows():
    reg = regularization(speed=[0.8, 0.6, 0.7, 0.5, 0.3], final=[0.6, 0.59, 0.5, 0.61, 0.6])
    assert reg.speed["none"] == pytest.approx(0.8) and reg.final_val["weight decay 0.005"] == 0.5
    card = Scorecard("arpit", setting="test")
    arpit.regularization_rows(card, reg)
    assert card.verdict("mean training accuracy over 2 epochs on 100% random labels, dropout 0.5") == REPRODUCED
    assert card.verdict("validation accuracy on real data after 2 epochs, dropout 0.5") == REPRODUCED  # 0.59 >= 0.58
    assert card.verdict("validation accuracy on real data after 2 epochs, weight decay 0.005") == NOT_REPRODUCED
    assert card.verdict("mean training accuracy on random labels, adversarial + dropout, against the other "
                        "regularizers") == REPRODUCED
    assert card.verdict("validation accuracy on real data after 2 epochs, none") == CONTEXT
    fig = arpit.plot_regularization(reg)
    assert len(fig.axes) == 2
    plt.close(fig)


def test_scorecard_gathers_the_sections_in_order():
    plan = make_plan("smoke")
    correct = np.array([[1, 1, 0], [1, 0, 0]], dtype=bool)
    first = arpit.first_epoch_rates({"real": correct, "randY": correct, "randX": correct})
    matrix = {name: np.eye(2) + 0.1 for name in ("real", "randY", "randX")}
    card = arpit.scorecard(plan, first, {name: np.ones(10) for name in matrix}, matrix,
                           {name: {6: 0.2} for name in matrix}, fit_times([2, 3], [3, 8]),
                           label_noise({0.0: CLEAN, 0.4: NOISY}),
                           regularization([0.8, 0.6, 0.7, 0.5, 0.3], [0.6] * 5))
    assert card.setting == "cifar10-subset, mlp, adam, batch 32, weight decay 0.0, 6 epochs (smoke profile)"
    quantities = [row["quantity"] for row in card.rows]
    assert quantities[0] == "share of training samples right after epoch 1 in all 2 runs, real"
    assert quantities[-1] == ("mean training accuracy on random labels, adversarial + dropout, against the other "
                              "regularizers")
    assert len(quantities) == 6 + 3 + 3 + 3 + 4 + 7 + 11
    # equal values are not "lower" or "higher": the sensitivity, per-class and CSR claims fail
    assert card.verdict("critical sample ratio at epoch 6 (r = 0.1), randY") == NOT_REPRODUCED
