"""Easy and hard examples across architectures (Kishida & Nakayama), on the robustness chapter's runs.

    from regutils.chapters import easy_hard
    w = easy_hard.early_stage(p.early_epochs, s.epochs)            # the early stage: epochs 1..w
    sets = easy_hard.find_sets(by_arch, w)                         # by_arch: {arch: stacked Trace}
    easy_hard.set_sizes(by_arch, sets, w)                          # the opening table
    overlap = easy_hard.overlaps(sets, n)                          # Jaccard and overlap coefficient
    easy_hard.plot_overlaps(overlap, s.archs)
    draws = easy_hard.draw_samples(sets, s.arch, n, seed=s.seed)   # shown samples, a random reference
    distance = easy_hard.within_class_distances(easy_hard.feature_spaces(s, data.images_train), sets,
                                                draws.random, y)
    accuracy = easy_hard.retrainer(s, p.retrain_runs)              # kept indices -> retrained test accuracy
    removed = easy_hard.removal(main, y, p.remove_fraction, accuracy, seed=s.seed)   # main: the arch's runs
    compressed = easy_hard.compression(main, y, p.keep_fractions, accuracy, seed=s.seed)
    card = easy_hard.scorecard(s, w, sets, overlap, distance, removed, compressed)

The source's claims: "easy examples are visually similar to each other and hard examples are
visually diverse, and both examples are largely shared across different CNN architectures";
"while hard examples tend to contribute more to generalization than easy examples, removing a
large number of easy examples leads to poor generalization"; and "large scale classification
datasets can be efficiently compressed by using easiness".

Easy, hard and the hardest / easiest fractions are those of :mod:`regutils.easy_hard`: easy is
right at every epoch 1..w of every run, hard (early) wrong at every epoch 1..w of every run,
hard (final) wrong after the last epoch of every run.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .. import easy_hard as eh
from .. import features, plots, sampling, stats
from ..claims import above, at_least, below, greater_than, less_than
from ..loop import load_for
from ..report import Scorecard, table
from ..train import get_runs, trained_model

KINDS = ("easy", "hard")  # the two sets the claims are about
STATISTICS = {"Jaccard": (eh.jaccard_matrix, eh.chance_jaccard),
              "overlap": (eh.overlap_matrix, eh.chance_overlap)}
# easy green, hard red, random grey, in every figure
COLORS = {"easy": plots.OKABE_ITO[2], "easiest": plots.OKABE_ITO[2], "random": "0.6", "hard": plots.OKABE_ITO[5],
          "hardest": plots.OKABE_ITO[5]}


def early_stage(early_epochs: int | None, epochs: int) -> int:
    """w, the last epoch of the early stage: ``early_epochs``, or the first tenth of ``epochs`` when None."""
    return early_epochs or eh.early_window(epochs)


@dataclass(frozen=True)
class Sets:
    """Sorted training-sample indices per architecture (same order as the runs' dict).

    easy, hard, hard_final : dict arch -> int ndarray (k,)
        Right at every epoch 1..w of every run; wrong at every epoch 1..w of every run; wrong
        after the last epoch of every run.
    """

    easy: dict
    hard: dict
    hard_final: dict

    @property
    def archs(self) -> tuple[str, ...]:
        return tuple(self.easy)

    def of(self, kind: str) -> dict:
        """The sets of ``kind`` ("easy", "hard" or "hard_final"), by architecture."""
        return getattr(self, kind)


def find_sets(by_arch: dict, window: int) -> Sets:
    """The easy and hard sets of each architecture's runs; ``by_arch[a].train_correct`` is (runs, T, N)."""
    return Sets(easy={a: eh.easy(r.train_correct, window) for a, r in by_arch.items()},
                hard={a: eh.hard(r.train_correct, window) for a, r in by_arch.items()},
                hard_final={a: eh.hard(r.train_correct, stage="final") for a, r in by_arch.items()})


def set_sizes(by_arch: dict, sets: Sets, window: int):
    """One row per architecture: mean training accuracy at epoch w, mean final test accuracy, set sizes (a Styler)."""
    runs = next(iter(by_arch.values())).history["train_acc"].shape[0]  # every architecture has as many
    accuracy = {f"train accuracy, epoch {window}": [r.history["train_acc"][:, window - 1].mean() for r in by_arch.values()],
                "final test accuracy": [r.history["test_acc"][:, -1].mean() for r in by_arch.values()]}
    frame = pd.DataFrame({**accuracy,
                          "easy samples": [len(sets.easy[a]) for a in by_arch],
                          "hard samples, early": [len(sets.hard[a]) for a in by_arch],
                          "hard samples, final": [len(sets.hard_final[a]) for a in by_arch],
                          }, index=pd.Index(list(by_arch), name=f"{runs} runs each"))
    return table(frame, formats=dict.fromkeys(accuracy, "{:.1%}"))


@dataclass(frozen=True)
class Overlap:
    """One statistic between the sets of one kind of every pair of architectures.

    matrix : ndarray (K, K), 1 on the diagonal
    mean : float, the mean off the diagonal
    chance : float, the mean over pairs of the expected value for random sets of the same sizes
    """

    matrix: np.ndarray
    mean: float
    chance: float


def overlaps(sets: Sets, n: int) -> dict[tuple[str, str], Overlap]:
    """{(statistic, kind): Overlap} for "Jaccard" and "overlap" of the easy and hard sets, out of n samples."""
    archs = sets.archs
    first, second = np.triu_indices(len(archs), k=1)  # every pair of architectures once
    out = {}
    for kind in KINDS:
        sizes = [len(sets.of(kind)[a]) for a in archs]
        for name, (matrix, chance) in STATISTICS.items():
            m = matrix([sets.of(kind)[a] for a in archs])
            out[name, kind] = Overlap(m, stats.mean_off_diagonal(m),
                                      float(np.mean([chance(sizes[i], sizes[j], n) for i, j in zip(first, second)])))
    return out


def plot_overlaps(overlap: dict[tuple[str, str], Overlap], archs) -> plt.Figure:
    """2 x 2 heatmaps: easy (top) and hard (bottom), Jaccard (left) and overlap coefficient (right)."""
    plots.use_style()
    fig, axes = plt.subplots(2, 2, figsize=(plots.PAGE_WIDTH_IN, 7.4))
    for ax, kind_name in zip(axes.ravel(), [(name, kind) for kind in KINDS for name in STATISTICS]):
        o = overlap[kind_name]
        plots.correlation_heatmap(ax, o.matrix, list(archs), vmin=0, vmax=1)
        ax.set_title(f"{kind_name[1]}, {kind_name[0]}: mean {o.mean:.2f}, chance {o.chance:.2f}")
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class Draws:
    """The chapter's random draws, from one seeded stream.

    shown : dict kind -> int ndarray (<= show,), sorted: the easy and hard samples of one architecture on show
    random : int ndarray (max(2, n // 10),), sorted: the random reference set of the distances
    """

    shown: dict
    random: np.ndarray


def draw_samples(sets: Sets, arch: str, n: int, seed: int = 0, show: int = 16) -> Draws:
    """Up to ``show`` easy and hard samples of ``arch``, then a random tenth of the n samples (at least 2)."""
    rng = np.random.default_rng(seed)
    shown = {}
    for kind in KINDS:  # easy first: the stream's order fixes every draw
        idx = sets.of(kind)[arch]
        shown[kind] = np.sort(rng.choice(idx, min(show, len(idx)), replace=False)) if len(idx) else idx
    return Draws(shown, np.sort(rng.choice(n, max(2, n // 10), replace=False)))


def plot_examples(draws: Draws, sets: Sets, arch: str, images, labels, classes) -> plt.Figure:
    """The drawn easy (top) and hard (bottom) training images in rows of eight, each titled with its label.

    images : (N, H, W[, C]) uint8; labels : (N,) int; classes : class names.
    """
    plots.use_style()
    fig, axes = plt.subplots(2, 1, figsize=(plots.PAGE_WIDTH_IN, 5.6))
    for ax, kind in zip(axes, KINDS):
        picks = draws.shown[kind]
        if len(picks):
            plots.image_grid(ax, images[picks], titles=[classes[c] for c in labels[picks]], ncols=8)
        ax.set_title(f"{kind} for {arch}: {len(picks)} of {len(sets.of(kind)[arch])} at random (title: label)")
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def feature_spaces(s, images) -> dict[str, dict[str, np.ndarray]]:
    """{space: {arch: (N, D) features}}: flattened pixels in [0, 1], and the penultimate features of the
    first run of each of ``s.archs`` (what its classifier head sees). images: (N, H, W[, C]) uint8."""
    pixels = images.reshape(len(images), -1) / 255.0
    return {"pixels": {a: pixels for a in s.archs},
            "penultimate features": {a: features.penultimate_features(
                trained_model(s.run_config(arch=a), device=s.device), load_for(s.data_config(), a).x_train)
                for a in s.archs}}


def within_class_distances(spaces: dict, sets: Sets, random_set, labels) -> pd.DataFrame:
    """Mean within-class Euclidean distance of each architecture's easy set, the random set and its hard set.

    Rows: (space, architecture); columns: easy, random, hard (NaN where no class has two members).
    labels: (N,) int.
    """
    rows = [(space, a, kind, eh.mean_pairwise_distance(feats[a][idx], labels[idx]))
            for space, feats in spaces.items() for a in sets.archs
            for kind, idx in (("easy", sets.easy[a]), ("random", random_set), ("hard", sets.hard[a]))]
    frame = pd.DataFrame(rows, columns=["space", "architecture", "set", "distance"])
    return frame.pivot(index=["space", "architecture"], columns="set", values="distance")[["easy", "random", "hard"]]


def relative_to_random(distance: pd.DataFrame) -> pd.DataFrame:
    """Each row of :func:`within_class_distances` divided by its random set's distance."""
    return distance.div(distance["random"], axis=0)


def plot_distances(distance: pd.DataFrame) -> plt.Figure:
    """Bars of the easy and hard sets' distances relative to the random set's, one panel per space."""
    plots.use_style()
    relative = relative_to_random(distance)
    spaces = relative.index.unique("space")
    fig, axes = plt.subplots(1, len(spaces), figsize=(plots.PAGE_WIDTH_IN, 3.4), sharey=True, squeeze=False)
    for ax, space in zip(axes[0], spaces):
        relative.loc[space, list(KINDS)].plot.bar(ax=ax, rot=0, legend=False, color=[COLORS[k] for k in KINDS])
        ax.axhline(1, color="0.4", lw=1, ls="--")
        ax.set_title(space)
    axes[0, 0].set_ylabel("within-class distance / random set's")
    axes[0, 0].legend(ncols=2, loc="lower center", bbox_to_anchor=(1.0, 1.08))
    fig.tight_layout()
    return fig


def retrainer(s, runs: int) -> Callable[[np.ndarray], float]:
    """A function: kept training indices -> mean final test accuracy of ``runs`` runs of the main
    configuration of ``s`` trained on those samples only (cached like every run)."""
    def accuracy(keep) -> float:
        keep = tuple(int(i) for i in keep)
        r = get_runs(s.run_config(data=s.data_config(train_keep=keep)), runs, device=s.device)
        return float(r.history["test_acc"][:, -1].mean())
    return accuracy


def full_accuracy(main) -> float:
    """Mean final test accuracy of the runs ``main`` on the full training set."""
    return float(main.history["test_acc"][:, -1].mean())


@dataclass(frozen=True)
class Removal:
    """Test accuracy after removing ``fraction`` of the training set (per class).

    removed : dict kind -> int ndarray: the indices removed, kinds "easiest", "random", "hardest"
    accuracy : dict kind -> float, after training on the rest
    full, full_runs : float, int: the mean final test accuracy of the runs on the full training set, their number
    """

    fraction: float
    removed: dict
    accuracy: dict
    full: float
    full_runs: int


def removal(main, labels, fraction: float, accuracy: Callable, seed: int = 0) -> Removal:
    """Remove the easiest, a random or the hardest ``fraction`` (by mean CBTL of ``main``'s runs) and retrain.

    main.train_correct : (runs, T, N); labels : (N,); accuracy : kept indices -> test accuracy.
    """
    correct, n = main.train_correct, len(labels)
    removed = {"easiest": eh.easiest(correct, fraction, labels=labels, seed=seed),
               "random": eh.complement(sampling.prune(fraction, "random", labels=labels, seed=seed), n),
               "hardest": eh.hardest(correct, fraction, labels=labels, seed=seed)}
    return Removal(fraction, removed, {k: accuracy(eh.complement(idx, n)) for k, idx in removed.items()},
                   full_accuracy(main), main.history["test_acc"].shape[0])


def plot_removal(result: Removal) -> plt.Figure:
    """Bars of the test accuracy after each removal; the dashed line is the full training set's."""
    plots.use_style()
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    kinds = list(result.accuracy)
    ax.bar(kinds, list(result.accuracy.values()), color=[COLORS[k] for k in kinds])
    ax.axhline(result.full, color="k", lw=1, ls="--", label=f"full training set ({result.full_runs} runs)")
    ax.set_ylim(max(0, min(min(result.accuracy.values()), result.full) - 0.05), 1)
    ax.set_xlabel(f"{result.fraction:.0%} of the training set removed")
    ax.set_ylabel("test accuracy")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class Compression:
    """Test accuracy after training on a kept fraction of the training set (per class).

    accuracy : dict kind -> list of float, one per fraction; kinds "hardest", "random"
    """

    fractions: tuple
    accuracy: dict
    full: float


def compression(main, labels, fractions, accuracy: Callable, seed: int = 0) -> Compression:
    """Keep the hardest or a random ``f`` of the training set, for each f of ``fractions``, and retrain."""
    correct = main.train_correct
    kept = {"hardest": [eh.hardest(correct, f, labels=labels, seed=seed) for f in fractions],
            "random": [sampling.prune(1 - f, "random", labels=labels, seed=seed) for f in fractions]}
    return Compression(tuple(fractions), {k: [accuracy(keep) for keep in v] for k, v in kept.items()},
                       full_accuracy(main))


def plot_compression(result: Compression) -> plt.Figure:
    """Test accuracy against the kept fraction, for the hardest and for random samples."""
    plots.use_style()
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for kind, color in (("hardest", plots.OKABE_ITO[5]), ("random", "0.4")):
        ax.plot(result.fractions, result.accuracy[kind], marker="o", color=color, label=f"keep the {kind}")
    ax.axhline(result.full, color="k", lw=1, ls="--", label="full training set")
    ax.set_xlabel("fraction of the training set kept (per class)")
    ax.set_ylabel("test accuracy")
    ax.legend()
    fig.tight_layout()
    return fig


def setting(s, window: int) -> str:
    """The scorecard's setting: data, architectures, optimizer, epochs, early stage, runs."""
    return (f"{s.dataset}, {', '.join(s.archs)}, {s.optimizer}, {s.epochs} epochs, early stage 1..{window}, "
            f"{s.robustness_runs} runs each ({s.profile} profile)")


def scorecard(s, window: int, sets: Sets, overlap: dict, distance: pd.DataFrame, removed: Removal,
              compressed: Compression) -> Scorecard:
    """The source's claims as tested verdicts.

    "Largely shared" is a mean overlap coefficient of at least 0.5 (most of the smaller set lies in
    the larger) and above the chance level of random sets of the same sizes; a claim on an empty set
    is not comparable (both indices are 1 by convention). "Visually similar / diverse" is the mean
    over architectures of the within-class pixel distance, below / above the random set's.
    Generalization claims compare retrained test accuracies; compression compares the hardest kept
    fraction with a random one of the same size.
    """
    card = Scorecard("easy_hard", setting=setting(s, window))
    for kind in KINDS:
        empty = [a for a in sets.archs if len(sets.of(kind)[a]) == 0]
        comparable = f"the {kind} set of {', '.join(empty)} is empty" if empty else True
        o, j = overlap["overlap", kind], overlap["Jaccard", kind]
        card.add(f"mean overlap coefficient of the {kind} sets of {len(s.archs)} architectures",
                 paper="largely shared: most of the smaller set", value=o.mean, test=at_least(0.5),
                 comparable=comparable)
        card.add(f"mean overlap coefficient of the {kind} sets vs random sets of the same sizes",
                 paper="shared across architectures", value=o.mean, test=greater_than(o.chance, "chance level"),
                 comparable=comparable)
        card.add(f"mean Jaccard of the {kind} sets (chance level {j.chance:.4f})", paper="n/a", value=j.mean)
    relative = relative_to_random(distance)
    rel = {space: relative.loc[space].mean() for space in relative.index.unique("space")}  # mean over archs
    card.add("within-class pixel distance of the easy sets / a random set's (mean over architectures)",
             paper="< 1: easy examples visually similar", value=rel["pixels"]["easy"], test=below(1))
    card.add("within-class pixel distance of the hard sets / a random set's (mean over architectures)",
             paper="> 1: hard examples visually diverse", value=rel["pixels"]["hard"], test=above(1))
    for kind in KINDS:
        card.add(f"within-class penultimate-feature distance of the {kind} sets / a random set's",
                 paper="n/a", value=rel["penultimate features"][kind])
    f, acc = removed.fraction, removed.accuracy
    card.add(f"test accuracy after removing the hardest {f:.0%}", paper="hard examples contribute more",
             value=acc["hardest"], test=less_than(acc["easiest"], "after removing the easiest"))
    card.add(f"test accuracy after removing the easiest {f:.0%}", paper="removing many easy examples hurts",
             value=acc["easiest"], test=less_than(removed.full, "the full training set"))
    card.add(f"test accuracy after removing a random {f:.0%}", paper="n/a", value=acc["random"])
    for f, h, r in zip(compressed.fractions, compressed.accuracy["hardest"], compressed.accuracy["random"]):
        card.add(f"test accuracy keeping the hardest {f:.0%}", paper="compresses efficiently", value=h,
                 test=greater_than(r, f"a random {f:.0%}"))
    return card
