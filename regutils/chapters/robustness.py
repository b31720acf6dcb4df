"""Chapter 3.3.3, robustness: the run-averaged sample measures across architectures and optimizers.

    from regutils.chapters import robustness
    by_arch = robustness.sample_measures(robustness.architecture_runs(s))   # {arch: {measure: (N,) or (M,)}}
    robustness.plot_representations(by_arch)          # Fig. 10: each group's test and training planes
    arch_corr = robustness.architecture_correlations(by_arch, n_boot=1000, seed=s.seed)   # Table 2
    ceiling = robustness.noise_ceiling(s)             # two groups of seeds of one architecture
    by_opt = robustness.sample_measures(robustness.optimizer_runs(s))
    opt_density = robustness.optimizer_density(by_opt, n_boot=1000, seed=s.seed)          # Fig. 11's numbers
    card = robustness.scorecard(arch_corr, ceiling, opt_density, s, tolerance=0.1)

The paper (§3.3.3) finds the six run-averaged quantities (CBTL, CBGL, forgetting and
mal-generalizing events, the densities of both planes) correlated above 0.88 between every pair of
four architectures (Table 2), while "the sample distribution representations under different
optimizers differ significantly": density correlations 0.8914, 0.6877, 0.6962 (training) and
0.8877, 0.6628, 0.7062 (test) for SGD–AdaGrad, SGD–AdaMax, AdaGrad–AdaMax (Fig. 11).
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .. import plots, stats
from .. import robustness as rob
from ..claims import at_least, holds, less_than, within
from ..report import Scorecard, table
from ..train import get_runs

CLOSEST = ("sgd", "adagrad")  # the paper's closest optimizer pair


def describe(s) -> str:
    """One line: the architectures and optimizers compared, with their initial rates, and the runs each."""
    rates = ", ".join(f"{o} (initial rate {s.learning_rate(o):g})" for o in s.optimizers)
    return (f"architectures {', '.join(s.archs)} (optimizer {s.optimizer}, initial rate {s.learning_rate():g}); "
            f"optimizers {rates} ({s.arch}); {s.robustness_runs} runs each, measures averaged over them")


def architecture_runs(s) -> dict:
    """{arch: stacked Trace} of ``s.robustness_runs`` runs of each of ``s.archs`` (trained or loaded)."""
    return {a: get_runs(s.run_config(arch=a), s.robustness_runs, device=s.device) for a in s.archs}


def optimizer_runs(s) -> dict:
    """{optimizer: stacked Trace} of ``s.arch`` trained by each of ``s.optimizers`` at its own rate."""
    return {o: get_runs(s.run_config(optimizer=o), s.robustness_runs, device=s.device) for o in s.optimizers}


def seed_groups(s) -> tuple[str, str]:
    """The two disjoint groups of seeds of the noise ceiling, as text: ("0–2", "3–5") for 3 runs from seed 0."""
    r = s.robustness_runs
    return f"{s.seed}–{s.seed + r - 1}", f"{s.seed + r}–{s.seed + 2 * r - 1}"


def sample_measures(traces: dict) -> dict[str, dict[str, np.ndarray]]:
    """{group: {measure: (N,) training or (M,) test values}} for every name of ``regutils.robustness.MEASURES``."""
    return {name: rob.sample_measures(t) for name, t in traces.items()}


def noise_ceiling(s) -> pd.DataFrame:
    """Correlations of the six quantities between two groups of seeds of ``s.arch``: one row, six columns."""
    first, second = seed_groups(s)
    r = s.robustness_runs
    traces = {f"{s.arch}, seeds {first}": get_runs(s.run_config(), r, device=s.device),
              f"{s.arch}, seeds {second}": get_runs(s.run_config(seed=s.seed + r), r, device=s.device)}
    return stats.pairwise_measure_correlations(sample_measures(traces))


def training_summary(traces: dict):
    """Per group: mean final test accuracy, mean epoch-1 training accuracy, and time per epoch (a Styler).

    The time counts training and the two eval passes, averaged over the runs' ``meta["runs"]``.
    """
    frame = pd.DataFrame({
        "final test accuracy": {k: t.history["test_acc"][:, -1].mean() for k, t in traces.items()},
        "epoch-1 training accuracy": {k: t.history["train_acc"][:, 0].mean() for k, t in traces.items()},
        "time per epoch": {k: np.mean([m["train_seconds"] + m["eval_seconds"] for m in t.meta["runs"]]) / t.epochs
                           for k, t in traces.items()},
    })
    return table(frame, formats={"final test accuracy": "{:.1%}", "epoch-1 training accuracy": "{:.1%}",
                                 "time per epoch": "{:.1f}"}, units={"time per epoch": "s"})


def plot_representations(by_group: dict) -> plt.Figure:
    """One column per group: the test plane on top, the training plane below, coloured by density (Fig. 10, 11)."""
    plots.use_style()
    width = min(plots.PAGE_WIDTH_IN, 2.9 * len(by_group) + 0.8)
    fig, axes = plt.subplots(2, len(by_group), figsize=(width, 6.2), sharey="row", squeeze=False, layout="constrained")
    drawn = plots.representations(axes, by_group)
    for row in range(2):
        plots.add_colorbar(axes[row, -1], drawn[row, -1], label="density")
    return fig


def plot_correlations(by_arch: dict) -> plt.Figure:
    """One heatmap per quantity: its Pearson correlation between every two groups (Table 2 as heatmaps)."""
    plots.use_style()
    groups = list(by_arch)
    fig = plt.figure(figsize=(plots.PAGE_WIDTH_IN, 3.3), layout="constrained")
    axes = plots.panel_grid(fig, len(rob.MEASURES), ncols=2, panel_height=3.3)
    for ax, name in zip(axes, rob.MEASURES):
        matrix = stats.correlation_matrix(np.stack([by_arch[g][name] for g in groups]))
        image = plots.correlation_heatmap(ax, matrix, groups, vmin=0, vmax=1)
        ax.set_title(name)
    fig.colorbar(image, ax=axes, shrink=0.6, label="Pearson r")
    return fig


def architecture_correlations(by_arch: dict, n_boot=1000, seed=0) -> dict[tuple[str, str, str], stats.Corr]:
    """{(quantity, a, b): Pearson with its bootstrap interval} for every quantity, then every pair a before b."""
    pairs = stats.pairwise_measure_correlations(by_arch).index
    return {(name, a, b): stats.pearson(by_arch[a][name], by_arch[b][name], n_boot=n_boot, seed=seed)
            for name in rob.MEASURES for a, b in pairs}


def optimizer_density(by_opt: dict, n_boot=1000, seed=0) -> dict[str, dict[tuple[str, str], stats.Corr]]:
    """{split: {(a, b): Pearson of the normalized density vectors}} for "train" and "test" (Fig. 11's numbers)."""
    return {split: rob.density_correlations(rob.planes(by_opt, split), n_boot=n_boot, seed=seed)
            for split in rob.PLANES}


def fig11_table(opt_density: dict):
    """One row per optimizer pair: this build's density correlation of each split, then the paper's (a dash:
    none); a Styler."""
    ours = {f"{split} density, Pearson": {f"{a}–{b}": c.r for (a, b), c in pairs.items()}
            for split, pairs in opt_density.items()}
    paper = {f"{split}, paper": {f"{a}–{b}": rob.paper_fig11_value(split, a, b) for a, b in pairs}
             for split, pairs in opt_density.items()}
    return table(pd.DataFrame(ours | paper))


def scorecard(arch_corr: dict, ceiling: pd.DataFrame, opt_density: dict, s, tolerance=0.1) -> Scorecard:
    """The claims of §3.3.3 as tested verdicts.

    Table 2: every entry ≥ 0.88, the paper's bound. Noise ceiling: context. Fig. 11: each pair
    within the paper's value ± ``tolerance``. Then the paper's comparison: SGD–AdaGrad is the
    closest optimizer pair (comparable only with SGD, AdaGrad and another optimizer), and every
    optimizer pair whose paper value lies below Table 2's lowest entry of the same density lies
    below the lowest architecture pair here too.
    """
    card = Scorecard("robustness", setting=s.describe())
    arch_setting = f"{', '.join(s.archs)}; {s.optimizer}; {s.robustness_runs} runs each ({s.profile} profile)"
    opt_setting = f"{s.arch}; {', '.join(s.optimizers)}; {s.robustness_runs} runs each ({s.profile} profile)"
    for (name, a, b), c in arch_corr.items():
        paper = rob.paper_table2_value(name, a, b)
        card.add(f"Table 2, {name}: {a} vs {b}", paper=f"> {rob.TABLE2_BOUND}" if paper is None else paper,
                 value=c, test=at_least(rob.TABLE2_BOUND), setting=arch_setting)
    first, second = seed_groups(s)
    for name in ("train density", "test density"):
        card.add(f"noise ceiling, {name}: {s.arch}, seeds {first} vs {second}", paper="n/a",
                 value=float(ceiling[name].iloc[0]),
                 setting=f"{s.arch}, {s.optimizer}; 2 groups of {s.robustness_runs} runs")

    for split, pairs in opt_density.items():
        for (a, b), c in pairs.items():
            paper = rob.paper_fig11_value(split, a, b)
            card.add(f"Fig. 11, {split} density: {a} vs {b}", paper="n/a" if paper is None else paper, value=c,
                     test=None if paper is None else within(paper, tolerance), setting=opt_setting)

    for split, pairs in opt_density.items():
        has_all = set(CLOSEST) <= set(s.optimizers) and len(pairs) > 1
        top = max(pairs, key=lambda k: pairs[k].r)
        card.add(f"sgd–adagrad is the closest optimizer pair, {split} density (here: {'–'.join(top)})", paper="yes",
                 value=bool(set(top) == set(CLOSEST)), test=holds("sgd–adagrad has the highest correlation"),
                 comparable=True if has_all else "the profile's optimizers are not sgd, adagrad and another",
                 setting=opt_setting)
        name = f"{split} density"
        by_pair = {(a, b): c for (n, a, b), c in arch_corr.items() if n == name}
        lowest = min(by_pair, key=lambda k: by_pair[k].r)  # the first on ties, in the pairs' order
        floor, paper_floor = by_pair[lowest], min(rob.TABLE2[name])
        for (a, b), c in pairs.items():
            paper = rob.paper_fig11_value(split, a, b)
            if paper is None or not paper < paper_floor:
                continue  # the paper's numbers make no such claim for this pair
            card.add(f"{a}–{b} below every architecture pair, {name}", paper=f"{paper} < {paper_floor}", value=c,
                     test=less_than(floor, f"the lowest architecture pair, {'–'.join(lowest)}"), setting=opt_setting)
    return card


def ceiling_summary(card: Scorecard, arch_table: pd.DataFrame, ceiling: pd.DataFrame, s) -> str:
    """Markdown: how many Table 2 entries reach the bound, and how the lowest pair compares with the noise ceiling.

    ``arch_table``: the pairs' correlations, one column per quantity; ``ceiling``: :func:`noise_ceiling`.
    """
    frame = card.frame()
    table2 = frame[frame["quantity"].str.startswith("Table 2")]
    held = int((table2["verdict"] == "reproduced").sum())
    top = ceiling.iloc[0]
    ratio = arch_table[list(rob.MEASURES)].min() / top[list(rob.MEASURES)]
    capped = [n for n in rob.MEASURES if top[n] < rob.TABLE2_BOUND]
    return (f"{held} of the {len(table2)} Table 2 entries of this build are at least {rob.TABLE2_BOUND}. "
            "For scale, two groups of seeds of the same architecture correlate at "
            + ", ".join(f"{n} {top[n]:.3f}" for n in rob.MEASURES)
            + f"; the lowest architecture pair reaches {ratio.min():.0%} to {ratio.max():.0%} of that "
            f"ceiling, quantity by quantity. {len(capped)} of the 6 ceilings lie below {rob.TABLE2_BOUND}"
            + (f" ({', '.join(capped)}): for these, {s.robustness_runs} runs of {s.epochs} epochs per group leave "
               "seed-to-seed noise that alone keeps a correlation under the paper's threshold, whatever the "
               "architectures." if capped else "."))
