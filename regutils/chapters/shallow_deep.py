"""Do deep networks learn shallow-learnable examples first? (Mangalam & Prabhu), on the book's main runs.

    from regutils.chapters import shallow_deep
    m_correct, n_fit = shallow_deep.fit_shallow(s, p.shallow_models, p.sklearn_train_size)
    c = shallow_deep.compare(m_correct, runs.test_correct)    # contingency counts and ratios per epoch
    shallow_deep.plot_accuracies(c, runs.history["test_acc"])  # R+ and R- along D's training
    shallow_deep.plot_ratios(c)                                # R± per M, the counts of the first M
    only = shallow_deep.shallow_only(c, runs.test_correct)     # M right, D wrong after its last epoch
    card = shallow_deep.scorecard(s, c)

A shallow model M (a classical classifier on the flattened images) is fitted once; the deep model
D's correctness on every test sample is read after each of its epochs. The 2 x 2 contingency of
the two, its ratios R+ (D's accuracy on the samples M gets right), R- (on those M gets wrong) and
R± = R+ / R- are those of :mod:`regutils.contingency`. The source's claims: D's training "starts
from quickly learning shallow classifiable easy examples and then slowly extends to the hard
ones" (R± above 1 early, then falling), and "even after convergence" T01, the samples M gets
right and D wrong, is non-zero.
"""
from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .. import algorithms, contingency, plots
from ..claims import above, less_than
from ..report import Scorecard, table

DEFAULT_SHALLOW = ("logistic regression", "SVM", "random forest")
COUNTS = list(contingency.COUNTS)


def shallow_names(shallow_models) -> tuple[str, ...]:
    """The shallow models M: ``shallow_models``, or the chapter's three when None or empty."""
    return tuple(shallow_models) if shallow_models else DEFAULT_SHALLOW


def fit_shallow(s, shallow_models=None, train_size: int | None = None) -> tuple[dict, int]:
    """Fit each shallow model once on the training images of ``s``'s data, as its main architecture sees them.

    Returns ({name: bool ndarray (N_test,), whether M classifies each test sample correctly}, the
    number of training images fitted on: a stratified share of ``train_size``, None for all).
    """
    config = s.run_config()
    return algorithms.sklearn_correct(shallow_names(shallow_models), config.data, config.arch,
                                      train_size=train_size, seed=s.seed)


@dataclass(frozen=True)
class Comparison:
    """Every shallow model M against the runs of D, epoch by epoch.

    m_correct : dict name -> bool ndarray (N,), M's correctness on the test samples
    counts : dict name -> DataFrame, one row per (run, epoch): T00, T01, T10, T11
    per_run : dict name -> DataFrame, those rows with R_plus, R_minus, R_pm
    pooled : dict name -> DataFrame indexed by epoch: counts summed over runs, and their ratios
    first_learned : dict name -> {"M right": mean, "M wrong": mean}, D's mean first-learned epoch
        of the samples it gets right after its last epoch, in each group
    epochs : int, D's epochs T
    """

    m_correct: dict
    counts: dict
    per_run: dict
    pooled: dict
    first_learned: dict
    epochs: int

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.m_correct)


def compare(m_correct: dict, test_correct) -> Comparison:
    """The contingency of each M in ``m_correct`` against D's record ``test_correct``, bool (runs, T, N)."""
    counts = {name: contingency.contingency_counts(m, test_correct) for name, m in m_correct.items()}
    return Comparison(
        m_correct, counts,
        per_run={name: contingency.ratios(c) for name, c in counts.items()},
        # pooling the counts of all runs before dividing weighs every test sample of every run alike
        pooled={name: contingency.ratios(c.groupby("epoch")[COUNTS].sum()) for name, c in counts.items()},
        first_learned={name: contingency.first_learned_by_group(m, test_correct) for name, m in m_correct.items()},
        epochs=np.shape(test_correct)[-2])


def describe(s, runs, n_fit: int) -> str:
    """Three lines: the settings, the images M is fitted on, D's test accuracy at its first and last epoch."""
    acc = runs.history["test_acc"]  # (runs, epochs)
    return (f"{s.describe()}\nshallow models M fitted on {n_fit:,} of {runs.train_correct.shape[-1]:,} training "
            f"images\ndeep model D ({s.arch}) test accuracy: epoch 1 {acc[:, 0].mean():.3f}, last epoch "
            f"{acc[:, -1].mean():.3f} (mean over {s.runs} runs)")


def shallow_table(c: Comparison):
    """One row per M: its test accuracy and the sizes of the M-right and M-wrong groups (a Styler)."""
    m = c.m_correct
    frame = pd.DataFrame({"test accuracy of M": [v.mean() for v in m.values()],
                          "M right (shallow learnable)": [int(v.sum()) for v in m.values()],
                          "M wrong": [int((~v).sum()) for v in m.values()]}, index=list(m))
    return table(frame, formats={"test accuracy of M": "{:.1%}"},
                 units={"M right (shallow learnable)": "samples", "M wrong": "samples"})


def plot_accuracies(c: Comparison, d_acc) -> plt.Figure:
    """One panel per M: R+ and R- after each epoch (pooled; bands: range over runs), and D's test accuracy.

    d_acc : (runs, T), D's test accuracy per run and epoch.
    """
    plots.use_style()
    fig = plt.figure(figsize=(plots.PAGE_WIDTH_IN, 3.4), layout="constrained")
    axes = plots.panel_grid(fig, len(c.names), ncols=3, panel_height=3.4, sharey=True)
    for ax, name in zip(axes, c.names):
        by_epoch = c.per_run[name].groupby("epoch")
        for column, label, color in (("R_plus", "$R_+$: D's accuracy on M-right samples", plots.OKABE_ITO[4]),
                                     ("R_minus", "$R_-$: D's accuracy on M-wrong samples", plots.OKABE_ITO[5])):
            band = by_epoch[column].agg(["min", "max"])
            plots.curve_with_band(ax, band.index, c.pooled[name][column], band["min"], band["max"], label=label,
                                  color=color)
        ax.plot(np.arange(1, c.epochs + 1), np.mean(d_acc, axis=0), color="0.5", ls="--", lw=1,
                label="D test accuracy")
        ax.set_title(f"M = {name}\n(accuracy {c.m_correct[name].mean():.3f})")
        ax.set_xlabel("epoch of D")
    axes[0].set_ylabel("share D gets right")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=2)
    return fig


def plot_ratios(c: Comparison) -> plt.Figure:
    """Left: R± per M along D's training (log scale; infinite ratios left out). Right: T01, T10, T00 of
    the first M, mean over runs (log scale)."""
    plots.use_style()
    fig, (left, right) = plt.subplots(1, 2, figsize=(plots.PAGE_WIDTH_IN, 3.8))
    for name in c.names:
        band = c.per_run[name].replace(np.inf, np.nan).groupby("epoch")["R_pm"].agg(["min", "max"])
        plots.curve_with_band(left, band.index, c.pooled[name]["R_pm"].replace(np.inf, np.nan), band["min"],
                              band["max"], label=name)
    left.axhline(1, color="0.5", lw=0.8)
    left.set_yscale("log")
    left.set_xlabel("epoch of D")
    left.set_ylabel("$R_\\pm = R_+ / R_-$ (log scale)")
    left.legend()
    name = c.names[0]
    mean_counts = c.counts[name].groupby("epoch")[COUNTS].mean()
    for column, label, color in (("T01", "$T_{01}$: D wrong, M right", plots.OKABE_ITO[5]),
                                 ("T10", "$T_{10}$: D right, M wrong", plots.OKABE_ITO[2]),
                                 ("T00", "$T_{00}$: both wrong", plots.OKABE_ITO[7])):
        right.plot(mean_counts.index, mean_counts[column].replace(0, np.nan), label=label, color=color)
    right.set_yscale("log")
    right.set_xlabel("epoch of D")
    right.set_ylabel("test samples (mean over runs)")
    right.set_title(f"M = {name}\n$T_{{11}}$, both right: {mean_counts['T11'].iloc[0]:.0f} to "
                    f"{mean_counts['T11'].iloc[-1]:.0f}")
    right.legend()
    fig.tight_layout()
    return fig


def first_learned_table(c: Comparison):
    """One row per M: D's mean first-learned epoch of the M-right and of the M-wrong samples it ends up learning
    (a Styler)."""
    frame = pd.DataFrame(c.first_learned).T.rename(columns=lambda g: f"mean first-learned epoch, {g}")
    return table(frame, formats=dict.fromkeys(frame.columns, "{:.2f}"))


def summary_table(c: Comparison):
    """The pooled counts (test samples) and ratios of every M at epochs 1, 2, T/4, T/2 and T (those that exist);
    a Styler."""
    t = c.epochs
    show = sorted(e for e in {1, 2, max(1, t // 4), max(1, t // 2), t} if e <= t)
    frame = pd.concat({name: pooled.loc[show, COUNTS + ["R_plus", "R_minus", "R_pm"]]
                       for name, pooled in c.pooled.items()}, names=["M", "epoch"])
    return table(frame.rename(columns={"R_plus": "R+", "R_minus": "R-", "R_pm": "R±"}))


def shallow_only(c: Comparison, test_correct) -> dict:
    """{name: (indices, wrong share)}: the test samples M gets right and D gets wrong after its last epoch in
    at least one run, with the share of runs that get each wrong, most persistent first.

    test_correct : bool (runs, T, N), D's record.
    """
    final = np.asarray(test_correct)[..., -1, :]
    return {name: contingency.shallow_only(m, final) for name, m in c.m_correct.items()}


def plot_shallow_only(only: dict, images, labels, classes, k: int = 12) -> plt.Figure:
    """One block per M: up to ``k`` of its shallow-only test samples in rows of six, titled with label and D's
    wrong share.

    images : (N, H, W[, C]) uint8 test images; labels : (N,) int.
    """
    plots.use_style()
    fig, axes = plt.subplots(len(only), 1, figsize=(plots.PAGE_WIDTH_IN, 2.4 * len(only) + 0.4), squeeze=False)
    for ax, (name, (idx, wrong)) in zip(axes[:, 0], only.items()):
        if len(idx) == 0:
            ax.set_axis_off()
            ax.set_title(f"M = {name}: none")
            continue
        titles = [f"{classes[c]}: {w:.0%}" for c, w in zip(labels[idx[:k]], wrong[:k])]
        plots.image_grid(ax, images[idx[:k]], titles=titles, ncols=6)
        ax.set_title(f"M = {name}: {len(idx)} test samples M gets right and D gets wrong in at least one run")
    fig.tight_layout()
    return fig


def persistence_note(only: dict, runs: int) -> str:
    """A sentence: per M, the shallow-only samples D gets wrong in at least half of its ``runs`` runs."""
    persistent = {name: int((wrong >= 0.5).sum()) for name, (_, wrong) in only.items()}
    return (f"Samples M gets right and D gets wrong in at least half of D's {runs} runs: "
            + ", ".join(f"{v} ({name})" for name, v in persistent.items()) + ".")


def scorecard(s, c: Comparison) -> Scorecard:
    """The source's claims as tested verdicts, per M.

    "Quickly learning shallow classifiable easy examples": pooled R± after epoch 1 above 1.
    "Then slowly extends to the hard ones": pooled R± after the last epoch below that of epoch 1.
    "Even after convergence, T01 is non-zero": the fewest T01 over D's runs after its last epoch
    above 0. The first-learned difference is context.
    """
    card = Scorecard("shallow_deep", setting=s.describe())
    for name in c.names:
        early, late = c.pooled[name].loc[1, "R_pm"], c.pooled[name].loc[c.epochs, "R_pm"]
        t01_last = c.counts[name].query(f"epoch == {c.epochs}")["T01"]
        card.add(f"R± after epoch 1 of D, M = {name}", paper="> 1: shallow classifiable examples learned quickly",
                 value=early, test=above(1))
        card.add(f"R± after the last epoch of D, M = {name}", paper="falls: D then slowly extends to the hard ones",
                 value=late, test=less_than(early, "R± after epoch 1"))
        card.add(f"T01 (D wrong, M right) after the last epoch, fewest over D's {s.runs} runs, M = {name}",
                 paper="> 0 even after convergence", value=int(t01_last.min()), test=above(0))
        card.add(f"first-learned epoch of D, M-wrong minus M-right samples, M = {name} (this book's addition)",
                 paper="n/a", value=c.first_learned[name]["M wrong"] - c.first_learned[name]["M right"])
    return card


def closing_note(c: Comparison, d_acc) -> str:
    """Markdown after the scorecard: D's final accuracy, M's accuracies and the size of the M-wrong group."""
    m_acc = [float(np.mean(m)) for m in c.m_correct.values()]
    wrong = [int((~m).sum()) for m in c.m_correct.values()]
    return (f"D's final test accuracy is {np.mean(d_acc, axis=0)[-1]:.3f} (mean over runs); the shallow models get "
            f"{min(m_acc):.1%} to {max(m_acc):.1%} of the test samples right, so the M-wrong group that $R_-$ rests "
            f"on holds {min(wrong)} to {max(wrong)} samples. A small group makes $R_-$, and with it $R_\\pm$, noisy "
            "from epoch to epoch.")
