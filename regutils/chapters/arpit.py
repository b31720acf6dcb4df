"""Chapter "A closer look at memorization": real data against random labels (randY) and random inputs (randX).

    from regutils.chapters import arpit
    s, p = chapter_settings("arpit", "smoke", {})
    plan = arpit.plan(s, p)                      # the parameters resolved, the chapter's run configurations
    first = arpit.first_epoch(plan)              # 1. misclassification rates after one epoch
    models = arpit.checkpoint_models(plan)       # 2., 3. each condition's models at the checkpoint epochs
    g_bar = arpit.loss_sensitivities(models)     # 2. per-sample loss sensitivity
    class_g = arpit.class_sensitivities(models, plan.p.per_class_samples)   # 2. per class
    csr = arpit.critical_sample_ratios(models, plan)                         # 3. critical sample ratio
    fit = arpit.time_to_fit(plan)                # 4. epochs to fit against the training-set size
    noise = arpit.label_noise(plan)              # 5. validation peak, fit and CSR under label noise
    reg = arpit.regularization(plan)             # 6. explicit regularizers on random labels and real data
    card = arpit.scorecard(plan, first, g_bar, class_g, csr, fit, noise, reg)

Every section has a ``plot_*`` function returning its figure and a ``*_rows`` function adding its
scorecard rows. Arpit et al. (2017), as a talk on the paper reports them: networks do not just
memorize real data as they do random data, but learn patterns shared by the samples first (easy
samples, a loss sensitive to few samples, fewer critical samples); and explicit regularization
can hinder the memorization of noise while preserving the learning of real data.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import LogNorm
from matplotlib.ticker import MaxNLocator

from .. import fitting, plots, sensitivity
from ..claims import at_least, greater_than, holds, less_than
from ..data import Data, DataConfig
from ..loop import RunConfig
from ..profiles import Settings
from ..report import Scorecard
from ..train import get_runs, load_for, trained_model

RANDOM = ("randY", "randX")
ADVERSARIAL_DROPOUT = "adversarial + dropout"


@dataclass(frozen=True)
class Plan:
    """The chapter's settings, its parameters with every None default resolved, and its run configurations.

    s : Settings
        The profile's settings on the chapter's training-set share.
    p : SimpleNamespace
        The chapter parameters; first_epoch_runs, checkpoints, fit_epochs, noise_epochs,
        noise_checkpoints and regularize_eps resolved from the settings where they were None.
    memorize : dict
        The RunConfig fields of the chapter's training (optimizer, lr, weight_decay, batch_size, schedule).
    conditions : dict[str, DataConfig]
        The training data of "real", "randY" (every label replaced) and "randX" (Gaussian inputs).
    full : dict[str, RunConfig]
        The full-length run of each condition.
    """

    s: Settings
    p: SimpleNamespace
    memorize: dict
    conditions: dict[str, DataConfig]
    full: dict[str, RunConfig]

    def runs(self, config: RunConfig, n: int = 1):
        """``n`` seeds of ``config``, stacked (from the cache or trained)."""
        return get_runs(config, n, device=self.s.device)

    def model(self, config: RunConfig, epoch: int) -> torch.nn.Module:
        """The model of ``config``'s run after ``epoch`` epochs, in eval mode."""
        return trained_model(fitting.config_at_epoch(config, epoch), device=self.s.device)


def plan(s: Settings, p: SimpleNamespace) -> Plan:
    """The :class:`Plan` of ``s, p = chapter_settings("arpit", profile, overrides)``."""
    s = replace(s, train_size=p.train_size or s.train_size)
    noise_epochs = p.noise_epochs or 2 * s.epochs  # twice the profile's: enough to fit the noisiest labels
    p = SimpleNamespace(**{
        **vars(p),
        "first_epoch_runs": p.first_epoch_runs or s.runs,
        "checkpoints": sorted(set(p.checkpoints or (1, max(1, s.epochs // 3), s.epochs))),
        "fit_epochs": p.fit_epochs or 2 * s.epochs,
        "noise_levels": tuple(p.noise_levels),
        "noise_epochs": noise_epochs,
        "noise_checkpoints": sorted(set(p.noise_checkpoints or (1, max(1, noise_epochs // 12),
                                                                max(1, noise_epochs // 3), noise_epochs))),
        "regularize_eps": p.regularize_eps or p.csr_radius,
    })
    memorize = dict(optimizer=p.memorize_optimizer, lr=p.memorize_lr, weight_decay=p.memorize_weight_decay,
                    batch_size=p.memorize_batch_size, schedule=p.memorize_schedule)
    conditions = {"real": s.data_config(), "randY": s.data_config(label_noise=1.0),
                  "randX": s.data_config(random_inputs=True)}
    full = {name: s.run_config(data=data, **memorize) for name, data in conditions.items()}
    return Plan(s, p, memorize, conditions, full)


def describe(plan: Plan) -> str:
    """The chapter's opening lines: the settings, the chapter's training, the one-epoch runs and checkpoints."""
    c = plan.full["real"]
    return (f"{plan.s.describe()}\n"
            f"this chapter trains {c.arch} with {c.optimizer} (lr {c.learning_rate}), weight decay "
            f"{c.weight_decay}, batch {c.batch_size}, {c.schedule} schedule, {c.epochs} epochs\n"
            f"{plan.p.first_epoch_runs} one-epoch runs per condition; models at epochs {plan.p.checkpoints}")


# 1. Easy samples ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FirstEpoch:
    """Each condition's training samples after the first epoch of ``runs`` seeded runs.

    miss_rate : dict[str, ndarray], each shape (samples,)
        Fraction of the runs in which the sample is misclassified after the epoch.
    easy_share : dict[str, float]
        Share of the samples right in every run (miss rate 0).
    dispersion : dict[str, float]
        :func:`regutils.fitting.difficulty_dispersion` of the rates: about 1 for equally hard samples.
    runs : int
    """

    miss_rate: dict[str, np.ndarray]
    easy_share: dict[str, float]
    dispersion: dict[str, float]
    runs: int


def first_epoch_rates(correct: dict[str, np.ndarray]) -> FirstEpoch:
    """The :class:`FirstEpoch` of ``correct[condition]``, bool (runs, samples): right after epoch 1."""
    miss = {name: 1 - c.mean(axis=0) for name, c in correct.items()}
    return FirstEpoch(miss, {name: float((m == 0).mean()) for name, m in miss.items()},
                      {name: fitting.difficulty_dispersion(c) for name, c in correct.items()},
                      runs=next(iter(correct.values())).shape[0])


def first_epoch(plan: Plan) -> FirstEpoch:
    """First-epoch rates of each condition over ``first_epoch_runs`` seeds of the chapter's first epoch."""
    runs = {name: plan.runs(fitting.config_at_epoch(c, 1), plan.p.first_epoch_runs) for name, c in plan.full.items()}
    return first_epoch_rates({name: r.train_correct[:, 0, :] for name, r in runs.items()})


def plot_first_epoch(first: FirstEpoch) -> plt.Figure:
    """One histogram of the misclassification rates per condition, one bin per possible rate k / runs."""
    plots.use_style()
    fig, axes = plt.subplots(1, len(first.miss_rate), figsize=(plots.PAGE_WIDTH_IN, 3.2), sharey=True)
    bins = (np.arange(first.runs + 2) - 0.5) / first.runs
    for ax, (name, m) in zip(axes, first.miss_rate.items()):
        ax.hist(m, bins=bins, color=plots.OKABE_ITO[4])
        ax.set_title(f"{name}: {first.easy_share[name]:.1%} never wrong\ndispersion {first.dispersion[name]:.2f}")
    fig.supxlabel("misclassification rate after one epoch")
    axes[0].set_ylabel("training samples")
    fig.tight_layout()
    return fig


def first_epoch_rows(card: Scorecard, first: FirstEpoch) -> None:
    """Easy samples exist on real data; random data have fewer, and less variable rates."""
    n = first.runs
    card.add(f"share of training samples right after epoch 1 in all {n} runs, real",
             paper="easy samples exist", value=first.easy_share["real"])
    card.add("dispersion of the samples' misclassification rates after epoch 1, real",
             paper="much more variable than on random data", value=first.dispersion["real"])
    one_run = True if n > 1 else "one run: every rate is 0 or 1, whatever the samples"
    for name in RANDOM:
        card.add(f"share of training samples right after epoch 1 in all {n} runs, {name}",
                 paper="lower than real data (all equally hard)", value=first.easy_share[name],
                 test=less_than(first.easy_share["real"], "real data"))
        card.add(f"dispersion of the samples' misclassification rates after epoch 1, {name}",
                 paper="lower than real data", value=first.dispersion[name],
                 test=less_than(first.dispersion["real"], "real data"), comparable=one_run)


# 2. Loss sensitivity ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoints:
    """Each condition's models (first seed) at the checkpoint epochs, and the data they trained on.

    models : dict[str, dict[int, torch.nn.Module]]
        {condition: {epoch: model in eval mode}}.
    data : dict[str, Data]
        The training data of each condition (labels and inputs as trained on).
    """

    models: dict[str, dict[int, torch.nn.Module]]
    data: dict[str, Data]


def checkpoint_models(plan: Plan) -> Checkpoints:
    """Each condition's run at the epochs ``plan.p.checkpoints``, each the first epochs of the full run."""
    return Checkpoints({name: {e: plan.model(c, e) for e in plan.p.checkpoints} for name, c in plan.full.items()},
                       {name: load_for(c.data, c.arch) for name, c in plan.full.items()})


def loss_sensitivities(ckpt: Checkpoints) -> dict[str, np.ndarray]:
    """g_bar per condition, shape (samples,): ||dL(x, y)/dx||_1 of each training sample, mean over the models."""
    return {name: np.mean([sensitivity.loss_sensitivity(m, ckpt.data[name].x_train, ckpt.data[name].y_train)
                           for m in models.values()], axis=0)
            for name, models in ckpt.models.items()}


def plot_loss_sensitivity(g_bar: dict[str, np.ndarray]) -> plt.Figure:
    """g_bar over its mean: sorted, most sensitive first (left), and as histograms (right)."""
    plots.use_style()
    fig, axes = plt.subplots(1, 2, figsize=(plots.PAGE_WIDTH_IN, 3.4))
    for name, g in g_bar.items():
        relative = g / g.mean()  # shapes, not scales, are compared
        share = sensitivity.top_share(g, 0.1)
        axes[0].plot(np.arange(1, len(g) + 1) / len(g), np.sort(relative)[::-1],
                     label=f"{name} (top 10 %: {share:.0%})")
        axes[1].hist(relative, bins=np.linspace(0, 6, 41), histtype="step", lw=1.5, density=True, label=name)
    axes[0].set_xlabel("fraction of training samples, most sensitive first")
    axes[0].set_ylabel(r"$\bar g_x$ / its mean")
    axes[0].set_yscale("log")
    axes[0].legend()
    axes[1].set_xlabel(r"$\bar g_x$ / its mean")
    axes[1].set_ylabel("density")
    fig.tight_layout()
    return fig


def loss_sensitivity_rows(card: Scorecard, g_bar: dict[str, np.ndarray]) -> None:
    """On real data the sensitivity is concentrated in few samples: a larger top-10 % share than on random data."""
    share = {name: sensitivity.top_share(g, 0.1) for name, g in g_bar.items()}
    card.add("share of total loss sensitivity in the top 10 % of samples, real", paper="only a subset is high",
             value=share["real"])
    for name in RANDOM:
        card.add(f"share of total loss sensitivity in the top 10 % of samples, {name}",
                 paper="lower than real data (high for virtually all)", value=share[name],
                 test=less_than(share["real"], "real data"))


def class_sensitivities(ckpt: Checkpoints, per_class: int | None) -> dict[str, np.ndarray]:
    """G per condition, shape (K, K): sensitivity.class_sensitivity, mean over the models.

    Classes are the training labels (random ones included); ``per_class`` caps the samples of each class.
    """
    k = ckpt.data["real"].num_classes
    return {name: np.mean([sensitivity.class_sensitivity(m, ckpt.data[name].x_train, ckpt.data[name].y_train, k,
                                                         per_class=per_class) for m in models.values()], axis=0)
            for name, models in ckpt.models.items()}


def row_normalized(class_g: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each matrix (K, K) with every row divided by its mean (NaN entries skipped)."""
    return {name: g / np.nanmean(g, axis=1, keepdims=True) for name, g in class_g.items()}


def plot_class_sensitivity(class_g: dict[str, np.ndarray]) -> plt.Figure:
    """One heat map per condition, rows over their means, on one log colour scale."""
    plots.use_style()
    rows = row_normalized(class_g)
    finite = np.concatenate([r[np.isfinite(r) & (r > 0)] for r in rows.values()])
    norm = LogNorm(vmin=finite.min(), vmax=finite.max())
    k = next(iter(rows.values())).shape[0]
    fig, axes = plt.subplots(1, len(rows), figsize=(plots.PAGE_WIDTH_IN, 3.4), sharey=True, layout="constrained")
    for ax, (name, r) in zip(axes, rows.items()):
        image = ax.imshow(r, norm=norm, cmap="viridis")
        ax.set_title(f"{name}\noff-diagonal share {sensitivity.off_diagonal_share(class_g[name]):.2f}")
        ax.set_xticks(range(k))
        ax.set_yticks(range(k))
    axes[0].set_ylabel("class i of the loss")
    fig.supxlabel("class j of the training sample x'")
    fig.colorbar(image, ax=axes, label=r"$G_{ij}$ / mean of row $i$", shrink=0.9)
    return fig


def class_sensitivity_rows(card: Scorecard, class_g: dict[str, np.ndarray]) -> None:
    """More patterns shared across classes on real data: a larger off-diagonal share than on random data."""
    off = {name: sensitivity.off_diagonal_share(g) for name, g in class_g.items()}
    card.add("off-diagonal share of the per-class loss sensitivity, real",
             paper="more patterns shared across classes", value=off["real"])
    for name in RANDOM:
        card.add(f"off-diagonal share of the per-class loss sensitivity, {name}",
                 paper="lower than real data", value=off[name], test=less_than(off["real"], "real data"))


# 3. Critical samples ----------------------------------------------------------------------------------------


def csr_along(models: dict[int, torch.nn.Module], x: torch.Tensor, p: SimpleNamespace, seed: int) -> dict[int, float]:
    """{epoch: critical sample ratio} of each model on inputs ``x`` (samples, ...), radius ``p.csr_radius``."""
    return {e: sensitivity.critical_sample_ratio(m, x, r=p.csr_radius, steps=p.csr_steps, samples=p.csr_samples,
                                                 seed=seed)
            for e, m in models.items()}


def critical_sample_ratios(ckpt: Checkpoints, plan: Plan) -> dict[str, dict[int, float]]:
    """{condition: {epoch: CSR}} of the checkpointed models on their own training inputs."""
    return {name: csr_along(models, ckpt.data[name].x_train, plan.p, plan.s.seed)
            for name, models in ckpt.models.items()}


def plot_csr(csr: dict[str, dict[int, float]], radius: float) -> plt.Figure:
    """The CSR of each condition against the epoch of the model."""
    plots.use_style()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, by_epoch in csr.items():
        ax.plot(list(by_epoch), list(by_epoch.values()), marker="o", label=name)
    ax.set_xlabel("epoch of the model")
    ax.set_ylabel(f"critical sample ratio, r = {radius}")
    ax.set_ylim(0, 1)
    ax.legend()
    fig.tight_layout()
    return fig


def csr_rows(card: Scorecard, csr: dict[str, dict[int, float]], radius: float) -> None:
    """Less complex hypotheses on real data: a lower CSR than on random data at the last checkpoint."""
    last = max(csr["real"])
    card.add(f"critical sample ratio at epoch {last} (r = {radius}), real",
             paper="lower than random data", value=csr["real"][last])
    for name in RANDOM:
        card.add(f"critical sample ratio at epoch {last} (r = {radius}), {name}",
                 paper="higher than real data", value=csr[name][last],
                 test=greater_than(csr["real"][last], "real data"))


# 4. Time to fit ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FitTimes:
    """Epochs to reach the threshold training accuracy against the training-set size.

    sizes : list[int]
        Training samples of the runs, increasing.
    needed : dict[str, ndarray], each int shape (sizes,)
        fitting.epochs_to_fit of the run of each size ("real", "randY"); ``epochs + 1``: never.
    epochs : int
        Epochs of those runs.
    threshold : float
    curves : dict[str, ndarray], each shape (epochs of the full runs,)
        Training accuracy per epoch of each condition's full run, for reference.
    """

    sizes: list[int]
    needed: dict[str, np.ndarray]
    epochs: int
    threshold: float
    curves: dict[str, np.ndarray]


def fit_sizes(fractions, n_train: int) -> list[int]:
    """The training-set sizes ``round(f * n_train)`` of ``fractions``."""
    return [round(f * n_train) for f in fractions]


def time_to_fit(plan: Plan) -> FitTimes:
    """One run of ``fit_epochs`` epochs per size and condition (real, randY) on a stratified share."""
    p, conditions = plan.p, plan.conditions
    n_train = len(load_for(conditions["real"], plan.s.arch).y_train)
    sizes = fit_sizes(p.fit_fractions, n_train)
    needed = {}
    for name in ("real", "randY"):
        data = [conditions[name] if n >= n_train else replace(conditions[name], train_size=n) for n in sizes]
        acc = np.concatenate([plan.runs(plan.s.run_config(data=d, epochs=p.fit_epochs, **plan.memorize))
                             .history["train_acc"] for d in data])  # (sizes, epochs)
        needed[name] = fitting.epochs_to_fit(acc, p.fit_threshold)
    curves = {name: plan.runs(c).history["train_acc"][0] for name, c in plan.full.items()}
    return FitTimes(sizes, needed, p.fit_epochs, p.fit_threshold, curves)


def plot_time_to_fit(fit: FitTimes) -> plt.Figure:
    """Training accuracy per epoch of the full runs (left); epochs to fit against the size (right)."""
    plots.use_style()
    fig, axes = plt.subplots(1, 2, figsize=(plots.PAGE_WIDTH_IN, 3.4))
    for name, curve in fit.curves.items():
        axes[0].plot(np.arange(1, len(curve) + 1), curve, label=name)
    axes[0].axhline(fit.threshold, color="0.5", lw=1, ls="--")
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("training accuracy")
    axes[0].legend()
    for name, needed in fit.needed.items():
        axes[1].plot(fit.sizes, needed, marker="o", label=name)
    axes[1].axhline(fit.epochs + 1, color="0.5", lw=1, ls=":")
    axes[1].yaxis.set_major_locator(MaxNLocator(integer=True))
    axes[1].set_xlabel("training samples")
    axes[1].set_ylabel(f"epochs to reach\n{fit.threshold:.0%} training accuracy")
    axes[1].legend(loc="center right")
    fig.tight_layout()
    return fig


def fit_rows(card: Scorecard, fit: FitTimes) -> None:
    """More samples take longer to memorize (randY), and the time grows more on randY than on real data.

    A run that never reached the threshold is a lower bound; a claim it leaves open is not comparable.
    """
    sizes, epochs = fit.sizes, fit.epochs

    def undecided(outcome, what):
        return True if outcome is not None else (f"{what} never reached {fit.threshold:.0%} training accuracy "
                                                 f"within {epochs} epochs")

    for name in ("real", "randY"):
        card.add(f"epochs to {fit.threshold:.0%} training accuracy at {', '.join(map(str, sizes))} samples, {name}",
                 paper="context", value=" / ".join(str(e) if e <= epochs else "never" for e in fit.needed[name]))
    grows = fitting.fit_time_grows(fit.needed["randY"], epochs)
    card.add(f"randY takes more epochs to fit {sizes[-1]} than {sizes[0]} samples", paper="yes (limited capacity)",
             value=grows, test=holds("holds"), comparable=undecided(grows, "a randY run"))
    faster = fitting.fit_time_grows_faster(fit.needed["randY"], fit.needed["real"], epochs)
    card.add(f"the time to fit grows more from {sizes[0]} to {sizes[-1]} samples on randY than on real data",
             paper="yes (real samples follow shared patterns)", value=faster, test=holds("holds"),
             comparable=undecided(faster, "a run"))


# 5. Label noise ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelNoise:
    """One run per label-noise level: accuracy curves and the CSR of its models along training.

    train_curve, val_curve : dict[float, ndarray], each shape (epochs,)
        Training accuracy on the noisy labels and accuracy on the clean test set, per epoch.
    csr : dict[float, dict[int, float]]
        {level: {epoch: CSR}}, at the noise checkpoints, the validation peak and the last epoch.
    epochs : int
    threshold : float
        The training accuracy that counts as fitted.
    """

    train_curve: dict[float, np.ndarray]
    val_curve: dict[float, np.ndarray]
    csr: dict[float, dict[int, float]]
    epochs: int
    threshold: float

    @property
    def peak(self) -> dict[float, int]:
        """Epoch of the best validation accuracy (where early stopping would stop)."""
        return {q: int(fitting.peak_epoch(v)) for q, v in self.val_curve.items()}

    @property
    def fitted(self) -> dict[float, int]:
        """First epoch at the threshold training accuracy; ``epochs + 1``: never."""
        return {q: int(fitting.epochs_to_fit(t, self.threshold)) for q, t in self.train_curve.items()}

    @property
    def val_drop(self) -> dict[float, float]:
        """Best minus final validation accuracy."""
        return {q: float(fitting.drop_after_peak(v)) for q, v in self.val_curve.items()}


def label_noise(plan: Plan) -> LabelNoise:
    """Runs of ``noise_epochs`` epochs at every level of ``noise_levels``, their CSR along training."""
    p, s = plan.p, plan.s
    configs = {q: s.run_config(data=s.data_config(label_noise=q), epochs=p.noise_epochs, **plan.memorize)
               for q in p.noise_levels}
    history = {q: plan.runs(c).history for q, c in configs.items()}
    curves = LabelNoise({q: h["train_acc"][0] for q, h in history.items()},
                        {q: h["test_acc"][0] for q, h in history.items()}, {}, p.noise_epochs, p.fit_threshold)
    peak = curves.peak
    csr = {q: csr_along({e: plan.model(c, e) for e in sorted({*p.noise_checkpoints, peak[q], p.noise_epochs})},
                        load_for(c.data, c.arch).x_train, p, s.seed)
           for q, c in configs.items()}
    return replace(curves, csr=csr)


def plot_label_noise(noise: LabelNoise, radius: float) -> plt.Figure:
    """One panel of accuracy curves per noise level, the CSR along training in the last panel."""
    plots.use_style()
    levels, peak, fitted, epochs = list(noise.val_curve), noise.peak, noise.fitted, noise.epochs
    fig = plt.figure(figsize=(plots.PAGE_WIDTH_IN, 2.9))
    axes = plots.panel_grid(fig, len(levels) + 1, ncols=3, panel_height=2.9)
    epoch_axis = np.arange(1, epochs + 1)
    for ax, q in zip(axes, levels):
        ax.plot(epoch_axis, noise.train_curve[q], color=plots.COLORS["train"], label="training (noisy labels)")
        ax.plot(epoch_axis, noise.val_curve[q], color=plots.COLORS["test"], label="validation")
        ax.axvline(peak[q], color=plots.COLORS["test"], lw=1, ls="--")
        if fitted[q] <= epochs:
            ax.axvline(fitted[q], color=plots.COLORS["train"], lw=1, ls=":")
        ax.set_title(f"{q:.0%} noise\npeak epoch {peak[q]}, fitted {fitted[q] if fitted[q] <= epochs else 'never'}")
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy")
    axes[0].legend(loc="lower right")
    for q in levels:
        line, = axes[-1].plot(list(noise.csr[q]), list(noise.csr[q].values()), marker="o", label=f"{q:.0%} noise")
        axes[-1].plot([peak[q]], [noise.csr[q][peak[q]]], marker="*", ms=12, color=line.get_color())
    axes[-1].set_xlabel("epoch of the model\n(star: validation peak)")
    axes[-1].set_ylabel(f"CSR, r = {radius}")
    axes[-1].set_ylim(0, 1)
    axes[-1].legend()
    fig.tight_layout()
    return fig


def noise_rows(card: Scorecard, noise: LabelNoise) -> None:
    """Under label noise: the validation peak precedes the fit, fitting the noise costs validation accuracy
    (more than without noise), and the CSR at the end exceeds the CSR at the peak."""
    peak, fitted, drop, epochs = noise.peak, noise.fitted, noise.val_drop, noise.epochs
    for q in noise.val_curve:
        clean = q == 0
        card.add(f"epoch of peak validation accuracy / epoch fitted ({epochs + 1}: never), {q:.0%} label noise",
                 paper="context", value=f"{peak[q]} / {fitted[q]}")
        if not clean:
            before = fitting.peak_before_fit(peak[q], fitted[q], epochs)
            card.add(f"validation accuracy peaks before the training set is fitted, {q:.0%} label noise",
                     paper="yes", value=before, test=holds("holds"), comparable=True if before is not None else
                     f"the noisy labels never reached {noise.threshold:.0%} training accuracy in {epochs} epochs")
        card.add(f"validation accuracy lost after its peak, {q:.0%} label noise",
                 paper="reference" if clean else "fitting noise costs validation accuracy", value=drop[q],
                 test=None if clean or 0.0 not in drop else greater_than(drop[0.0], "without noise"),
                 comparable=True if clean or 0.0 in drop else "no noise-free run among noise_levels to compare with")
        card.add(f"CSR at the end of training (epoch {epochs}), {q:.0%} label noise",
                 paper="reference" if clean else "greatly increases after the validation peak",
                 value=noise.csr[q][epochs],
                 test=None if clean else greater_than(noise.csr[q][peak[q]],
                                                      f"the CSR at the validation peak (epoch {peak[q]})"),
                 comparable=True if clean or peak[q] < epochs else
                 "the validation accuracy peaks at the last epoch: the run never moves on to fitting the noise")


# 6. Regularization ------------------------------------------------------------------------------------------


def regularizers(p: SimpleNamespace) -> dict[str, dict]:
    """{label: RunConfig changes}: none, dropout, weight decay, adversarial training, adversarial + dropout."""
    return {"none": {}, f"dropout {p.regularize_dropout:g}": dict(dropout=p.regularize_dropout),
            f"weight decay {p.regularize_weight_decay:g}": dict(weight_decay=p.regularize_weight_decay),
            f"adversarial, eps {p.regularize_eps:g}": dict(adversarial_eps=p.regularize_eps),
            ADVERSARIAL_DROPOUT: dict(adversarial_eps=p.regularize_eps, dropout=p.regularize_dropout)}


@dataclass(frozen=True)
class Regularization:
    """One run per regularizer on random labels and one on real data.

    random_train : dict[str, ndarray], each shape (epochs,)
        Training accuracy per epoch on the random labels, by regularizer label (first "none").
    real_val : dict[str, ndarray], each shape (epochs,)
        Test accuracy per epoch of the runs on real data.
    noise : float
        Fraction of the labels replaced in the random-label runs.
    tolerance : float
        How far below "none" the real validation accuracy may end and still count as not hurt.
    """

    random_train: dict[str, np.ndarray]
    real_val: dict[str, np.ndarray]
    noise: float
    tolerance: float

    @property
    def speed(self) -> dict[str, float]:
        """Speed of memorization: the mean training accuracy on random labels over the epochs (area under the curve)."""
        return {reg: float(np.mean(a)) for reg, a in self.random_train.items()}

    @property
    def final_val(self) -> dict[str, float]:
        """Validation accuracy on real data after the last epoch."""
        return {reg: float(a[-1]) for reg, a in self.real_val.items()}


def regularization(plan: Plan) -> Regularization:
    """Every regularizer of :func:`regularizers` on ``regularize_noise`` random labels and on the real data."""
    s, p = plan.s, plan.p
    random_labels = s.data_config(label_noise=p.regularize_noise)
    history = {(data, reg): plan.runs(s.run_config(data=config, **(plan.memorize | changes))).history
               for data, config in (("random", random_labels), ("real", plan.conditions["real"]))
               for reg, changes in regularizers(p).items()}
    return Regularization({reg: h["train_acc"][0] for (data, reg), h in history.items() if data == "random"},
                          {reg: h["test_acc"][0] for (data, reg), h in history.items() if data == "real"},
                          p.regularize_noise, p.accuracy_tolerance)


def plot_regularization(reg: Regularization) -> plt.Figure:
    """Training accuracy on random labels (left) and validation accuracy on real data (right), per regularizer."""
    plots.use_style()
    fig, axes = plt.subplots(1, 2, figsize=(plots.PAGE_WIDTH_IN, 3.6))
    speed, final = reg.speed, reg.final_val
    for name in reg.random_train:
        epochs = np.arange(1, len(reg.random_train[name]) + 1)
        axes[0].plot(epochs, reg.random_train[name], label=f"{name} (mean {speed[name]:.1%})")
        axes[1].plot(epochs, reg.real_val[name], label=f"{name} ({final[name]:.1%})")
    axes[0].set_ylabel(f"training accuracy, {reg.noise:.0%} random labels")
    axes[1].set_ylabel("validation accuracy, real data")
    lowest = min(a.min() for a in reg.real_val.values())
    axes[1].set_ylim(max(0, 2 * lowest - 1), 1 + 0.05 * (1 - lowest))  # the lower half left to the legend
    for ax, where, title in zip(axes, ("upper left", "lower right"), ("regularizer", "regularizer (last epoch)")):
        ax.set_xlabel("epoch")
        ax.legend(title=title, loc=where)
    fig.tight_layout()
    return fig


def regularization_rows(card: Scorecard, reg: Regularization) -> None:
    """Each regularizer slows memorization without costing more than ``tolerance`` on real data;
    adversarial training with dropout slows it most."""
    speed, final = reg.speed, reg.final_val
    epochs = len(reg.random_train["none"])
    for name in reg.random_train:
        none = name == "none"
        card.add(f"mean training accuracy over {epochs} epochs on {reg.noise:.0%} random labels, {name}",
                 paper="reference" if none else "lower than without regularization", value=speed[name],
                 test=None if none else less_than(speed["none"], "without regularization"))
        card.add(f"validation accuracy on real data after {epochs} epochs, {name}",
                 paper="reference" if none else f"not significantly lower (here: by at most {reg.tolerance:.0%})",
                 value=final[name], test=None if none else at_least(final["none"] - reg.tolerance))
    others = [name for name in reg.random_train if name not in ("none", ADVERSARIAL_DROPOUT)]
    card.add(f"mean training accuracy on random labels, {ADVERSARIAL_DROPOUT}, against the other regularizers",
             paper="particularly effective: the lowest", value=speed[ADVERSARIAL_DROPOUT],
             test=less_than(min(speed[name] for name in others), "the lowest of the other regularizers"))


# The scorecard ----------------------------------------------------------------------------------------------


def setting(plan: Plan) -> str:
    """The scorecard's setting: data, network and the chapter's training."""
    c = plan.full["real"]
    return (f"{plan.s.dataset}, {c.arch}, {c.optimizer}, batch {c.batch_size}, weight decay {c.weight_decay}, "
            f"{c.epochs} epochs ({plan.s.profile} profile)")


def scorecard(plan: Plan, first: FirstEpoch, g_bar: dict, class_g: dict, csr: dict, fit: FitTimes,
              noise: LabelNoise, reg: Regularization) -> Scorecard:
    """Arpit et al.'s claims as tested verdicts, section by section (rows "context" or "reference" are not counted)."""
    card = Scorecard("arpit", setting=setting(plan))
    first_epoch_rows(card, first)
    loss_sensitivity_rows(card, g_bar)
    class_sensitivity_rows(card, class_g)
    csr_rows(card, csr, plan.p.csr_radius)
    fit_rows(card, fit)
    noise_rows(card, noise)
    regularization_rows(card, reg)
    return card
