"""Learnability across models (Lee et al. 2019): is how easy a sample is a property of the sample or of the network?

    from regutils.chapters import learnability
    archs = learnability.architectures(s)                  # s: the chapter's Settings
    traces = {a: get_runs(s.run_config(arch=a), s.robustness_runs, device=s.device) for a in archs}
    result = learnability.compute(traces)
    learnability.overview(result)                          # accuracy and learnability per model
    corr = learnability.correlate(result, seed=s.seed)     # every pair of models
    learnability.agreement_table(corr)
    learnability.plot_distribution(result); learnability.plot_pairs(result, corr)
    learnability.plot_extremes(result, data)               # data: the training images of the runs
    card = learnability.scorecard(corr, s)

Lee et al. define the learnability of a training sample under a model as the mean over the T epochs
of the probability of its label, in expectation over training randomness, and report that it "is
highly linearly correlated across different DNN models": Pearson 0.796, 0.713 and 0.774 (ranks
0.867, 0.792, 0.782) for VGG-16, ResNet-20 and MobileNet on CIFAR-10, "higher than 0.71" in all cases.
This is context chosen by the book, not a claim of Zhang et al.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm

from .. import measures, plots, stats
from ..claims import above
from ..report import Scorecard, table

#: the source's networks, in this package's names
SOURCE_NETS = ("vgg16_bn", "resnet20", "mobilenet")
#: the source's Table 1: {pair of networks: (Pearson of learnability, correlation of the ranks)}
SOURCE_TABLE = {frozenset(("vgg16_bn", "resnet20")): (0.796, 0.867),
                frozenset(("vgg16_bn", "mobilenet")): (0.713, 0.792),
                frozenset(("resnet20", "mobilenet")): (0.774, 0.782)}
#: "the correlation coefficients in all cases are higher than 0.71"
THRESHOLD = 0.71


def architectures(s) -> tuple[str, ...]:
    """The models compared at settings ``s``: its learnability networks, else the first three of its robustness list."""
    return tuple(s.learn_archs or s.archs[:3])


@dataclass(frozen=True)
class Learnability:
    """Per-sample measures of each model, averaged over its runs.

    learn, learn_test, hits : dict[str, ndarray]
        Per architecture: learnability of the N training samples, shape (N,); of the M test
        samples, shape (M,); and the hit rate CBTL/T of the training samples, shape (N,).
    test_acc : dict[str, float]
        Mean final test accuracy of each architecture's runs.
    y_train : ndarray, shape (N,)
        The training labels (shared by all runs).
    runs, epochs : int
        Runs per architecture and epochs per run.
    """

    learn: dict
    learn_test: dict
    hits: dict
    test_acc: dict
    y_train: np.ndarray
    runs: int
    epochs: int

    @property
    def archs(self) -> list[str]:
        return list(self.learn)


def compute(traces: dict) -> Learnability:
    """Learnability, test-set learnability and hit rate of each model, from its stacked runs.

    traces : {architecture: stacked Trace}, with ``train_prob`` and ``train_correct`` of shape
        (runs, epochs, N), ``test_prob`` (runs, epochs, M), ``index_train`` (N,).
    ValueError when the models were trained on different samples or in a different order.
    """
    first = next(iter(traces.values()))
    if not all(np.array_equal(t.index_train, first.index_train) for t in traces.values()):
        raise ValueError("the models' runs must hold the same training samples in the same order")

    def over_runs(f, name):
        return {a: measures.average_over_runs(f(getattr(t, name))) for a, t in traces.items()}

    epochs = first.train_correct.shape[-2]
    return Learnability(learn=over_runs(measures.learnability, "train_prob"),
                        learn_test=over_runs(measures.learnability, "test_prob"),
                        hits={a: v / epochs for a, v in over_runs(measures.cbtl, "train_correct").items()},
                        test_acc={a: float(t.history["test_acc"][:, -1].mean()) for a, t in traces.items()},
                        y_train=first.y_train, runs=first.train_correct.shape[0], epochs=epochs)


def describe(s, result: Learnability) -> str:
    """One line: the models, their runs and epochs, and the data set of settings ``s``."""
    return f"{', '.join(result.archs)}; {result.runs} runs each, {result.epochs} epochs, {s.dataset}"


def overview(result: Learnability):
    """Per model: mean final test accuracy, mean training learnability, and the share above 0.9 (a Styler)."""
    frame = pd.DataFrame({"final test accuracy (mean over runs)": list(result.test_acc.values()),
                          "mean learnability (train)": [v.mean() for v in result.learn.values()],
                          "share with learnability > 0.9": [(v > 0.9).mean() for v in result.learn.values()]},
                         index=result.archs)
    return table(frame, formats={"final test accuracy (mean over runs)": "{:.1%}",
                                 "share with learnability > 0.9": "{:.1%}"})


def networks_note(archs) -> str:
    """A sentence: the networks compared, and whether they are the source's three."""
    return (f"The networks compared here: {', '.join(archs)}"
            + (", the source's three." if set(archs) == set(SOURCE_NETS) else
               f"; the source's are {', '.join(SOURCE_NETS)}, so the numbers below are compared with the source's "
               "claim, not pair by pair."))


def plot_distribution(result: Learnability) -> plt.Figure:
    """Each model's learnability against its rank (left) and as a log-scale histogram (right)."""
    plots.use_style()
    fig, axes = plt.subplots(1, 2, figsize=(plots.PAGE_WIDTH_IN, 3.4))
    for a, values in result.learn.items():
        rank = measures.learnability_rank(values)  # 1 = most learnable
        order = np.argsort(rank)
        axes[0].plot(rank[order], values[order], label=a)
        axes[1].hist(values, bins=np.linspace(0, 1, 41), histtype="step", lw=1.5, label=a)
    axes[0].set_xlabel("rank (1 = most learnable)")
    axes[0].set_ylabel("learnability")
    axes[0].legend()
    axes[1].set_yscale("log")
    axes[1].set_xlabel("learnability")
    axes[1].set_ylabel("training samples")
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class PairCorrelation:
    """The agreement of two models on the training samples (test samples and hit rate: no interval)."""

    pearson: stats.Corr
    spearman: stats.Corr
    pearson_test: float
    pearson_hits: float


def correlate(result: Learnability, seed: int = 0) -> dict[tuple[str, str], PairCorrelation]:
    """Every pair of models: {(a, b): PairCorrelation}, pairs in the order of the models."""
    learn, test, hits = result.learn, result.learn_test, result.hits
    return {(a, b): PairCorrelation(stats.pearson(learn[a], learn[b], seed=seed),
                                    stats.spearman(learn[a], learn[b], seed=seed),
                                    stats.pearson(test[a], test[b], n_boot=0).r,
                                    stats.pearson(hits[a], hits[b], n_boot=0).r)
            for a, b in itertools.combinations(result.archs, 2)}


def agreement_table(corr: dict[tuple[str, str], PairCorrelation]):
    """One row per pair: Pearson and Spearman next to the source's values (a dash for a pair it did not train);
    a Styler."""
    rows = []
    for (a, b), c in corr.items():
        source = SOURCE_TABLE.get(frozenset((a, b)), (np.nan, np.nan))
        rows.append({"pair": f"{a} vs {b}", "Pearson, source": source[0], "Pearson": c.pearson.r,
                     "rank, source": source[1], "Spearman": c.spearman.r,
                     "Pearson, test samples": c.pearson_test, "Pearson, hits (CBTL/T)": c.pearson_hits})
    return table(pd.DataFrame(rows), index=False)


def plot_pairs(result: Learnability, corr: dict[tuple[str, str], PairCorrelation]) -> plt.Figure:
    """A 2-D histogram (log colours) of the training samples' learnability under each pair of models."""
    plots.use_style()
    fig = plt.figure(figsize=(min(plots.PAGE_WIDTH_IN, 4.6 * len(corr)), 3.8))
    axes = plots.panel_grid(fig, len(corr), ncols=2, panel_height=3.8)
    low = np.floor(min(v.min() for v in result.learn.values()) * 20) / 20  # zoom on the occupied range
    bins = np.linspace(low, 1, 41)
    for ax, ((a, b), c) in zip(axes, corr.items()):
        image = ax.hist2d(result.learn[a], result.learn[b], bins=bins, norm=LogNorm(), cmap="viridis")[3]
        ax.plot([low, 1], [low, 1], color="0.5", lw=0.8, ls="--")
        ax.set_xlabel(f"learnability, {a}")
        ax.set_ylabel(f"learnability, {b}")
        ax.set_title(f"Pearson {c.pearson.r:.3f}, Spearman {c.spearman.r:.3f}")
        ax.set_aspect("equal")
    plots.add_colorbar(axes[-1], image, label="training samples")
    fig.tight_layout()
    return fig


def extremes(result: Learnability, k: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` easiest and the ``k`` hardest training samples by their rank averaged over the models.

    Returns two int arrays of shape (k,), the easiest first and the hardest first (ties in the
    rank keep the order of the training set).
    """
    mean_rank = np.mean([measures.learnability_rank(v) for v in result.learn.values()], axis=0)
    order = np.argsort(mean_rank, kind="stable")
    return order[:k], order[::-1][:k]


def plot_extremes(result: Learnability, data, k: int = 16) -> plt.Figure:
    """The easiest (top) and hardest (bottom) training images in rows of eight, labelled with class and mean
    learnability.

    data : the data set of the runs, with ``images_train`` (N, H, W[, C]) and ``classes``.
    """
    plots.use_style()
    mean_learn = np.mean(list(result.learn.values()), axis=0)
    fig, axes = plt.subplots(2, 1, figsize=(plots.PAGE_WIDTH_IN, 2.6 * -(-k // 8) + 0.6))
    for ax, picked, title in zip(axes, extremes(result, k), ("easiest", "hardest")):
        labels = [f"{data.classes[result.y_train[i]]}: {mean_learn[i]:.2f}" for i in picked]
        plots.image_grid(ax, data.images_train[picked], titles=labels, ncols=8)
        ax.set_title(f"the {k} {title} training samples (label: learnability averaged over the models)")
    fig.tight_layout()
    return fig


def scorecard(corr: dict[tuple[str, str], PairCorrelation], s) -> Scorecard:
    """The source's claim, every correlation above 0.71, tested on each pair of models; hit rates as context.

    The "paper" column holds the source's value for the same pair when it trained that pair, else
    its claim. The setting names the models, data, epochs and runs of ``s``.
    """
    archs = architectures(s)
    setting = f"{s.dataset}, {', '.join(archs)}, {s.epochs} epochs, {s.robustness_runs} runs each ({s.profile} profile)"
    card = Scorecard("learnability", setting=setting)
    for (a, b), c in corr.items():
        source = SOURCE_TABLE.get(frozenset((a, b)))
        for kind, value, k in (("Pearson", c.pearson, 0), ("Spearman", c.spearman, 1)):
            paper = f"{source[k]} (all pairs > 0.71)" if source else "> 0.71 for every pair"
            card.add(f"{kind} of learnability, {a} vs {b}", paper=paper, value=value, test=above(THRESHOLD))
        card.add(f"Pearson of hits (CBTL/T), {a} vs {b}", paper="n/a", value=c.pearson_hits)
    return card

