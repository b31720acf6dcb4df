"""Chapter 4.1, training acceleration: pruning the training set by density, and retraining (Fig. 12).

    from regutils.chapters import pruning
    scores = pruning.scores(main, s.prune_radii)          # main: the stacked main runs
    pruning.plot_removal(scores, pruning.shown_fraction(s.prune_fractions), seed=s.seed)
    table = pruning.retrain(s, scores, runs=p.prune_runs)  # one row per strategy, radius and fraction
    pruning.plot_accuracy(table, scores)                   # Fig. 12a and 12b
    card = pruning.scorecard(table, scores, s, prune_runs=p.prune_runs)

The paper (§4.1) removes the densest samples of the run-averaged (CBTL, forgetting) plane first:
"the overall performance is relatively best for r = 1" (Fig. 12a), "the performance fast drops
when the samples are removed randomly", "the test accuracy remains above 0.91 even after removing
60% of the training samples", and density "slightly outperforms the strategies of forgetting
events and CBTL" (Fig. 12b; ResNet-110 on CIFAR-10).
"""
from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .. import measures, plots
from .. import pruning as prune
from ..claims import above, below, holds
from ..profiles import PROFILES
from ..report import Scorecard, table

PAPER_ACCURACY, PAPER_FRACTION = 0.91, 0.6  # "above 0.91 even after removing 60%"
COLORS = {"density": plots.OKABE_ITO[4], "cbtl": plots.OKABE_ITO[0], "forgetting": plots.OKABE_ITO[2],
          "random": "0.3"}


@dataclass(frozen=True)
class Scores:
    """What decides the pruning: run-averaged measures of the full training set, from the main runs.

    cbtl, events : ndarray of float, shape (samples,)
        Run-averaged CBTL and forgetting events: the plane of the density strategy.
    toneva_events : ndarray of float, shape (samples,)
        Run-averaged forgetting events with a never-learned sample counted as most forgotten, as
        Toneva et al. rank: the score of the forgetting strategy.
    never_learned : int
        Samples never classified correctly in at least one run.
    full_acc : ndarray, shape (runs,)
        Final test accuracy of each main run, trained on the full set.
    radius : float
        The density radius of Fig. 12b: the paper's r = 1 where the profile tries it, else its first.
    n_test : int
        Test samples each accuracy is scored on.
    """

    cbtl: np.ndarray
    events: np.ndarray
    toneva_events: np.ndarray
    never_learned: int
    full_acc: np.ndarray
    radius: float
    n_test: int


def scores(main, radii) -> Scores:
    """The :class:`Scores` of the main runs ``main`` (``train_correct``: (runs, epochs, samples)).

    radii : the density radii the profile tries (Fig. 12a), ``Settings.prune_radii``.
    """
    correct = main.train_correct
    return Scores(cbtl=measures.average_over_runs(measures.cbtl(correct)),
                  events=measures.average_over_runs(measures.forgetting_events(correct)),
                  toneva_events=measures.average_over_runs(measures.forgetting_events(correct, never_learned="max")),
                  never_learned=int((~np.asarray(correct).any(axis=-2)).any(axis=0).sum()),
                  full_acc=np.asarray(main.history["test_acc"])[:, -1],
                  radius=float(prune.PAPER_RADIUS if prune.PAPER_RADIUS in radii else radii[0]),
                  n_test=len(main.y_test))


def describe(sc: Scores) -> str:
    """The samples, the full set's accuracy over seeds, and the range of the plane."""
    return (f"{len(sc.cbtl)} training samples; full-set test accuracy over {len(sc.full_acc)} runs: "
            f"{sc.full_acc.mean():.4f} ± {sc.full_acc.std():.4f} (mean ± std)\n"
            f"never learned in at least one run: {sc.never_learned} samples\n"
            f"range of the plane: CBTL {sc.cbtl.min():g} to {sc.cbtl.max():g}, "
            f"forgetting events {sc.events.min():g} to {sc.events.max():g}")


def shown_fraction(fractions, limit: float = PAPER_FRACTION) -> float:
    """The fraction the removal figure shows: the largest up to ``limit``, or the largest when all are 0 or above."""
    return max((f for f in fractions if f <= limit), default=0.0) or max(fractions)


def kept(sc: Scores, strategy: str, fraction: float, seed: int = 0) -> np.ndarray:
    """Sorted positions of the training samples ``strategy`` keeps after removing ``fraction``, int64 (kept,)."""
    return prune.kept_indices(strategy, fraction, cbtl=sc.cbtl, events=sc.events, radius=sc.radius,
                              forgetting=sc.toneva_events, seed=seed)


def plot_removal(sc: Scores, fraction: float, seed: int = 0) -> plt.Figure:
    """The training plane, one panel per strategy: each point's area its samples, its colour the share removed."""
    plots.use_style()
    strategies = prune.STRATEGIES
    fig = plt.figure(figsize=(plots.PAGE_WIDTH_IN, 3.2), layout="constrained")
    axes = plots.panel_grid(fig, len(strategies), ncols=2, panel_height=3.2, sharex=True, sharey=True)
    for ax, strategy in zip(axes, strategies):
        k = kept(sc, strategy, fraction, seed=seed)
        points = prune.removal_map(sc.cbtl, sc.events, k)
        shown = ax.scatter(points["cbtl"], points["events"], s=4 + 200 * points["samples"] / points["samples"].max(),
                           c=points["removed_share"], cmap="viridis", vmin=0, vmax=1, alpha=0.8, linewidths=0)
        ax.set_title(f"{strategy}: {len(sc.cbtl) - len(k)} removed")
    for ax in axes[-2:]:
        ax.set_xlabel("CBTL (run mean)")
    for ax in axes[::2]:
        ax.set_ylabel("forgetting events (run mean)")
    fig.colorbar(shown, ax=axes, shrink=0.8, label="share of the point's samples removed")
    return fig


def retrain(s, sc: Scores, runs: int = 1, runner=None) -> pd.DataFrame:
    """Train ``runs`` seeds on every pruned training set of the profile ``s`` (its fractions and radii).

    Returns :func:`regutils.pruning.sweep`'s table: one row per (strategy, radius, fraction) with the
    samples kept, the final test accuracy (mean and std over runs) and the training seconds.
    ``runner(config, runs)`` replaces the cached training (tests); None trains on ``s.device``.
    """
    return prune.sweep(s.run_config(), sc.cbtl, sc.events, strategies=prune.STRATEGIES, fractions=s.prune_fractions,
                       radii=s.prune_radii, runs=runs, forgetting=sc.toneva_events, seed=s.seed, runner=runner,
                       device=s.device)


def retrain_table(sweep: pd.DataFrame, runs: int):
    """:func:`retrain`'s table for the page (a Styler): readable headers, shares and accuracies in %, the
    standard deviation over runs only when ``runs`` > 1."""
    frame = sweep.rename(columns={"fraction": "removed", "kept": "samples kept", "test_acc": "final test accuracy",
                                  "test_acc_std": "std over runs", "train_seconds": "training time"})
    formats = {"radius": "{:g}", "removed": "{:.0%}", "final test accuracy": "{:.1%}", "std over runs": "{:.1%}",
               "training time": "{:,.1f}"}
    if runs == 1:
        frame, formats = frame.drop(columns="std over runs"), {k: v for k, v in formats.items() if k != "std over runs"}
    return table(frame, index=False, units={"training time": "s"}, formats=formats)


def at_radius(table: pd.DataFrame, radius: float) -> pd.DataFrame:
    """The rows of ``table`` of Fig. 12b: every strategy without a radius, and density at ``radius``."""
    return table[table["radius"].isna() | np.isclose(table["radius"].fillna(-1.0), radius)]


def plot_accuracy(table: pd.DataFrame, sc: Scores) -> plt.Figure:
    """Final test accuracy against the fraction removed: density by radius (a), every strategy (b).

    The grey band is the full set's mean ± one standard deviation over the main runs.
    """
    plots.use_style()
    fig, (ax_a, ax_b) = plt.subplots(1, 2, figsize=(plots.PAGE_WIDTH_IN, 3.8), sharey=True)
    for r, rows in table[table["strategy"] == "density"].groupby("radius"):
        ax_a.plot(rows["fraction"], rows["test_acc"], marker="o", label=f"r = {r:g}")
    ax_a.set_title("(a) density strategy, several radii")
    for strategy, rows in at_radius(table, sc.radius).groupby("strategy", sort=False):
        label = f"{strategy} (r = {sc.radius:g})" if strategy == "density" else strategy
        ax_b.plot(rows["fraction"], rows["test_acc"], marker="o", label=label, color=COLORS[strategy],
                  ls="--" if strategy == "random" else "-")
    ax_b.set_title("(b) strategies")
    mean, std = sc.full_acc.mean(), sc.full_acc.std()
    for ax in (ax_a, ax_b):
        ax.axhspan(mean - std, mean + std, color="0.9", zorder=0)
        ax.set_xlabel("fraction of the training set removed")
        ax.legend()
    ax_a.set_ylabel("final test accuracy")
    fig.tight_layout()
    return fig


def _paper_protocol_reason(s) -> bool | str:
    """True where ``s`` trains the paper's network on its data for as long; else why not."""
    paper = {k: PROFILES["paper"][k] for k in ("dataset", "arch", "epochs")}
    if {"dataset": s.dataset, "arch": s.arch, "epochs": s.epochs} == paper:
        return True
    return (f"0.91 is the paper's accuracy with {paper['arch']} on {paper['dataset']}; this profile "
            f"trains {s.arch} on {s.dataset} for {s.epochs} epochs")


def scorecard(table: pd.DataFrame, sc: Scores, s, prune_runs: int = 1) -> Scorecard:
    """The claims of Fig. 12 as tested verdicts on the sweep ``table`` under settings ``s``.

    Fig. 12a: r = 1 must give the highest mean accuracy over the fractions > 0 (comparable when the
    profile tries r = 1 and another radius). Fig. 12b: "slightly outperforms" and "fast drops" are
    the sign of the mean accuracy difference between two strategies over their common fractions > 0.
    The absolute 0.91 is comparable only on the paper's network, data and epochs, at 60 % removed.
    """
    radius = sc.radius
    card = Scorecard("pruning", setting=s.describe())
    prune_setting = f"{s.describe()}; {prune_runs} run(s) per pruned setting"
    card.add(f"test accuracy, full training set (mean of {s.runs} runs)", paper="n/a", value=float(sc.full_acc.mean()))

    means, best = prune.radius_means(table), prune.best_radius(table)
    radius_reason = (True if len(means) > 1 and prune.PAPER_RADIUS in means.index
                     else f"the profile tries the radii {', '.join(f'{r:g}' for r in means.index)}: "
                          f"r = {prune.PAPER_RADIUS:g} and at least one other are needed")
    card.add(f"r = {prune.PAPER_RADIUS:g} gives the best mean test accuracy over the fractions removed "
             f"(here: r = {best:g})", paper="yes", value=bool(np.isclose(best, prune.PAPER_RADIUS)),
             test=holds(f"r = {prune.PAPER_RADIUS:g} has the highest mean"), comparable=radius_reason,
             setting=prune_setting)

    # density against the strategies of Jiang et al. (CBTL) and Toneva et al. (forgetting), and random
    for other in ("cbtl", "forgetting"):
        card.add(f"density (r = {radius:g}) outperforms {other}: mean test-accuracy difference", paper="> 0 (slightly)",
                 value=prune.mean_difference(table, "density", other, radius=radius), test=above(0),
                 setting=prune_setting)
    for other in ("density", "cbtl", "forgetting"):
        card.add(f"random removal below {other}: mean test-accuracy difference", paper="< 0 (fast drop)",
                 value=prune.mean_difference(table, "random", other, radius=radius), test=below(0),
                 setting=prune_setting)

    protocol = _paper_protocol_reason(s)
    at = prune.accuracy_at(table, max_fraction=PAPER_FRACTION, radius=radius)
    for strategy, row in at.drop(index="random", errors="ignore").iterrows():
        name = f"density (r = {radius:g})" if strategy == "density" else strategy
        reason = protocol
        if reason is True and not np.isclose(row["fraction"], PAPER_FRACTION):
            reason = f"the profile removes at most {row['fraction']:.0%} up to {PAPER_FRACTION:.0%}"
        card.add(f"test accuracy, {name} strategy, {row['fraction']:.0%} removed",
                 paper=f"> {PAPER_ACCURACY} at {PAPER_FRACTION:.0%}", value=float(row["test_acc"]),
                 test=above(PAPER_ACCURACY), comparable=reason, setting=prune_setting)
    return card


def summary(table: pd.DataFrame, sc: Scores, prune_runs: int = 1) -> str:
    """The density strategy's mean accuracy by radius, and how large a difference one run can show by chance."""
    means = prune.radius_means(table)
    return ("Mean test accuracy of the density strategy over the fractions removed, by radius: "
            + ", ".join(f"r = {r:g}: {m:.4f}" for r, m in means.items())
            + f". Each point is {prune_runs} run(s) scored on {sc.n_test} test samples, and one run of the "
            f"full set varies by ± {sc.full_acc.std():.4f} between seeds: differences smaller than that are within "
            "the noise of a single run.")
