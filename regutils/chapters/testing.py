"""Chapter 4.2, testing acceleration: small, difficulty-balanced test sets that rank algorithms as the full one does.

    from regutils.chapters import testing
    tb = testing.bin_test_set(runs.test_correct)             # (runs, epochs, N) -> the bins of every sample
    t3 = testing.draw_table3(tb, size=400, seeds=range(20))  # Table 3's subsets, every draw
    zoo = testing.algorithm_correctness(s, sklearn_train_size=None)   # the networks and scikit-learn models
    agreement = testing.table3_agreement(zoo.correct, t3)    # Spearman and mAP against the full set
    fig13 = testing.fig13_agreement(zoo.correct, tb.bins, s.subset_n, t3.seeds)
    small = testing.export_small_test_set(tb, s, data)       # the small test set as .npy and .csv
    card = testing.scorecard(tb, t3, agreement, testing.accuracy_drop(zoo.correct, t3), fig13, small,
                             len(zoo.correct), s)

The paper (§4.2) cuts the plane of run-averaged CBGL and mal-generalizing events into sectors of equal
angle and draws the same number of test samples from each: 400 samples from 10 or 4 sectors rank 17
algorithms as the 10,000 test samples do with Spearman's rho 0.9871 and 0.9877, every algorithm does worse
on the 10-bin subset, and with the half-axes of zero events as bins of their own, n = 30 samples per bin
(11 n + 3 = 333, CIFAR-10-333) rank best.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .. import algorithms, density, measures, plots, sampling, stats
from ..claims import at_least, below, between
from ..loop import load_for
from ..report import Scorecard, table
from ..sampling import LEFT_AXIS
from ..train import get_runs

PAPER = {"rho_10": 0.9871, "rho_4": 0.9877, "left_axis": 3, "smallest_bin": 49, "n": 30, "size": 333,
         "algorithms": 17, "table3_size": 400, "test_size": 10_000}
PAPER_N = PAPER["n"]  # samples per bin of CIFAR-10-333
SMALL_SHARE = 0.1  # a "small" test set: at most a tenth of the full one (the paper's 400 are 4 %)
STEPS = {18.0: "10 bins", 45.0: "4 bins"}  # Table 3's columns, finer first
PAPER_RHO = {18.0: PAPER["rho_10"], 45.0: PAPER["rho_4"]}
MERGED, EXCLUDED, RANDOM = "half-axes merged", "half-axes excluded", "random, same size"
AXES = {MERGED: "merge", EXCLUDED: "exclude"}  # the two readings of Table 3's bins
FIG13_STEP = 18.0
OUT_DIR = Path("book/generated/testing")


def n_sectors(step: float) -> int:
    """Sectors of ``step`` degrees in the half-plane: 10 at 18 degrees, 4 at 45."""
    return int(180 / step)


@dataclass(frozen=True)
class Bins:
    """Every test sample's place in the (CBGL, mal-generalizing events) plane and its bins.

    cbgl, events : ndarray, shape (N,)
        Run-averaged CBGL and mal-generalizing events of each test sample.
    sectors : dict (step, axes) -> ndarray, shape (N,)
        Table 3's sector labels 0 .. 180/step - 1 for step in :data:`STEPS` and axes "merge"
        (half-axes in the end sectors) or "exclude" (half-axes labelled -1).
    bins : ndarray, shape (N,)
        Fig. 13's labels: the two half-axes and the ten 18-degree sectors.
    """

    cbgl: np.ndarray
    events: np.ndarray
    sectors: dict
    bins: np.ndarray

    @property
    def n_test(self) -> int:
        return self.cbgl.size

    def sector_sizes(self, step: float) -> np.ndarray:
        """Test samples in each sector of ``step`` degrees, half-axes merged: shape (180/step,)."""
        return np.bincount(self.sectors[step, "merge"], minlength=n_sectors(step))

    @property
    def fig13_sizes(self) -> np.ndarray:
        """Test samples in each of Fig. 13's bins, indexed by label: shape (12,)."""
        return np.bincount(self.bins, minlength=len(sampling.bin_names(FIG13_STEP)))

    @property
    def smallest_bin(self) -> int:
        """The smallest of Fig. 13's bins other than the left half-axis (the paper's "latter 11 bins")."""
        return int(np.delete(self.fig13_sizes, LEFT_AXIS).min())


def bin_test_set(test_correct) -> Bins:
    """The bins of every test sample from the test record ``test_correct``, shape (runs, epochs, N)."""
    cbgl = measures.average_over_runs(measures.cbtl(test_correct))
    events = measures.average_over_runs(measures.forgetting_events(test_correct))
    sectors = {(step, axes): sampling.sector_bins(cbgl, events, step_deg=step, axes=axes)
               for step in STEPS for axes in sampling.SECTOR_AXES}
    return Bins(cbgl, events, sectors, sampling.angular_bins(cbgl, events, step_deg=FIG13_STEP))


@dataclass(frozen=True)
class Table3Draws:
    """Every draw of Table 3's subsets.

    size : int
        Samples asked of each subset (the paper's 400); a bin short of its share gives all it has.
    seeds : tuple of int
        One draw per seed; the first is the profile's seed.
    draws : dict (step, method) -> list of ndarray
        For each step of :data:`STEPS` and method (:data:`MERGED`, :data:`EXCLUDED`, :data:`RANDOM`),
        one sorted array of test-set positions per seed.
    """

    size: int
    seeds: tuple
    draws: dict

    def quota(self, step: float) -> int:
        """Samples asked of each sector of ``step`` degrees: 40 of 10 sectors, 100 of 4, for 400."""
        return self.size // n_sectors(step)

    def first(self, step: float) -> np.ndarray:
        """The draw with the profile's seed, half-axes merged."""
        return self.draws[step, MERGED][0]


def draw_table3(tb: Bins, size: int, seeds) -> Table3Draws:
    """Table 3's subsets of ``size`` samples, once per seed, for both readings of the half-axes.

    Next to them, uniformly random subsets as large as the merged draws (not in the paper), from
    ``numpy.random.default_rng([seed, step])``.
    """
    seeds = tuple(seeds)
    draws = {(step, method): [sampling.equal_share_subset(tb.sectors[step, axes], size, n_sectors(step), seed=k)
                              for k in seeds]
             for step in STEPS for method, axes in AXES.items()}
    for step in STEPS:
        draws[step, RANDOM] = [np.random.default_rng([k, int(step)]).choice(tb.n_test, size=d.size, replace=False)
                               for k, d in zip(seeds, draws[step, MERGED])]
    return Table3Draws(size, seeds, draws)


def bin_tables(tb: Bins, t3: Table3Draws) -> dict:
    """Heading -> Styler of the test samples per bin, one row per bin: Table 3's sectors (per step), then
    Fig. 13's bins."""
    tables = {}
    for step, name in STEPS.items():
        merged, k = tb.sectors[step, "merge"], n_sectors(step)
        counts = [np.bincount(merged, minlength=k), np.bincount(merged[tb.sectors[step, "exclude"] < 0], minlength=k),
                  np.bincount(merged[t3.first(step)], minlength=k)]
        heading = (f"{name} of {step:g}°: {t3.quota(step)} per bin; the subset holds {t3.first(step).size} of "
                   f"{tb.n_test} samples")
        tables[heading] = table(pd.DataFrame(counts, columns=sampling.bin_names(step)[sampling.FIRST_SECTOR:],
                                             index=["test samples (half-axes merged)", "of which on a half-axis",
                                                    f"in the subset (seed {t3.seeds[0]})"]).T)
    heading = (f"Fig. 13's 12 bins: {tb.fig13_sizes[LEFT_AXIS]} samples on the left half-axis (taken whole), "
               f"the smallest of the other 11 bins holds {tb.smallest_bin}")
    tables[heading] = table(pd.DataFrame({"test samples": tb.fig13_sizes}, index=sampling.bin_names(FIG13_STEP)))
    return tables


def plot_bins(tb: Bins, t3: Table3Draws) -> plt.Figure:
    """The test samples in the plane the bins are cut in, one panel per step, the first draw circled."""
    plots.use_style()
    # the plane as the bins see it: CBGL centred on the middle of its range, both axes divided by their ranges
    x = (tb.cbgl - (tb.cbgl.max() + tb.cbgl.min()) / 2) / (np.ptp(tb.cbgl) or 1.0)
    y = tb.events / (np.ptp(tb.events) or 1.0)
    d = density.density(tb.cbgl, tb.events)
    fig, axes = plt.subplots(1, 2, figsize=(plots.PAGE_WIDTH_IN, 4.2))
    for ax, (step, name) in zip(axes, STEPS.items()):
        points = plots.density_scatter(ax, x, y, d, rays_deg=step, center=(0.0, 0.0), s=10)
        chosen = t3.first(step)
        ax.scatter(x[chosen], y[chosen], s=30, facecolors="none", edgecolors=plots.COLORS["test"], linewidths=0.8)
        ax.set_aspect("equal")
        ax.set_ylim(-0.07, 1.05)
        for k, count in enumerate(tb.sector_sizes(step)):
            angle = np.deg2rad((k + 0.5) * step)  # each sector's count on its bisector
            ax.text(0.3 * np.cos(angle), 0.3 * np.sin(angle), str(count), ha="center", va="center",
                    fontsize=plots.SMALL_PT,
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8))
        ax.set_title(f"{name} of {step:g}°\ncircled: one draw of {chosen.size} samples")
        ax.set_xlabel("CBGL, centred and divided by its range")
        ax.set_ylabel("mal-generalizing events / range")
    plots.add_colorbar(axes[-1], points, label="density (raw plane)")
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class Algorithms:
    """The algorithms ranked and their correctness on the test set.

    correct : dict name -> ndarray, shape (N,)
        Correctness in [0, 1] on each test sample: a network's final-epoch eval-mode correctness
        averaged over its runs ("<arch> (deep)"), a scikit-learn model's 0 or 1.
    """

    correct: dict
    networks: tuple
    runs: int
    n_fit: int
    n_train: int
    features: int

    def describe(self) -> str:
        shallow = len(self.correct) - len(self.networks)
        return (f"{len(self.correct)} algorithms: {len(self.networks)} networks x {self.runs} runs and {shallow} "
                f"scikit-learn models trained on {self.n_fit} of {self.n_train} training samples, "
                f"{self.features} features")


def algorithm_correctness(s, sklearn_train_size: int | None = None) -> Algorithms:
    """The profile's networks (``s.testing_archs``, ``s.robustness_runs`` runs each) and the six scikit-learn models.

    The models are fitted on ``sklearn_train_size`` flattened, normalized training images (None: all,
    at most :data:`regutils.algorithms.SKLEARN_MAX_TRAIN`); the networks' runs come from the cache.
    """
    correct = {f"{a} (deep)": algorithms.final_correct(
        get_runs(s.run_config(arch=a), s.robustness_runs, device=s.device).test_correct) for a in s.testing_archs}
    config = s.run_config()
    shallow, n_fit = algorithms.sklearn_correct(algorithms.SKLEARN_NAMES, config.data, config.arch,
                                                train_size=sklearn_train_size, seed=s.seed)
    data = load_for(config.data, config.arch)
    return Algorithms(correct | shallow, tuple(s.testing_archs), s.robustness_runs, n_fit, len(data.y_train),
                      int(np.prod(data.x_train.shape[1:])))


def accuracy_table(correct: dict, t3: Table3Draws):
    """Accuracy and rank of every algorithm on the full test set and on the first draw of each subset (a Styler)."""
    columns = {"full": None} | {f"{t3.size} samples ({name})": t3.first(step) for step, name in STEPS.items()}
    frame = algorithms.accuracy_table(correct, columns).sort_values("rank (full)")
    return table(frame, formats={c: "{:.1%}" for c in frame.columns if c.startswith("accuracy")})


def agreement_summary(summary: pd.DataFrame):
    """:func:`table3_agreement` or :func:`fig13_agreement` rows for the page (a Styler): the mean subset size,
    each ranking statistic as "mean [10 %, 90 %]" over the draws, and the draws where it is undefined."""
    def band(metric):
        return [f"{m:.3f} [{lo:.3f}, {hi:.3f}]" for m, lo, hi in
                summary[[f"{metric}_mean", f"{metric}_low", f"{metric}_high"]].to_numpy()]

    frame = pd.DataFrame({"subset size": summary["size"].to_numpy(), "Spearman's rho": band("spearman"),
                          "mAP": band("map"), "undefined draws": summary["undefined"].to_numpy()},
                         index=summary.index)
    return table(frame, formats={"subset size": "{:,.1f}"}, units={"subset size": "samples, mean"})


def table3_agreement(correct: dict, t3: Table3Draws) -> pd.DataFrame:
    """Spearman and mAP of each subset's ranking against the full set's: mean and 10-90 % range over draws.

    Rows indexed by (bins, method), bins in :data:`STEPS`' names; columns size (mean over draws),
    spearman_mean, spearman_low, spearman_high, map_mean, map_low, map_high, undefined.
    """
    curve = pd.concat([algorithms.subset_agreement(correct, t3.draws[step, method])
                       .assign(bins=name, method=method, n=t3.quota(step), seed=list(t3.seeds))
                       for step, name in STEPS.items() for method in (MERGED, EXCLUDED, RANDOM)], ignore_index=True)
    summary = {name: algorithms.summarize_curve(curve[curve.bins == name]).set_index("method")
               for name in STEPS.values()}
    return pd.concat(summary, names=["bins"]).drop(columns="n")


def accuracy_drop(correct: dict, t3: Table3Draws) -> pd.DataFrame:
    """Each algorithm's mean accuracy over the draws of the 10-bin and 4-bin subsets (half-axes merged).

    Rows: algorithms; columns "<bins>, mean over draws" (10 bins first) and "10 bins lower" (bool).
    """
    drop = pd.DataFrame({f"{name}, mean over draws": algorithms.subset_accuracies(correct, t3.draws[step, MERGED])
                         .mean() for step, name in STEPS.items()})
    drop["10 bins lower"] = drop.iloc[:, 0] < drop.iloc[:, 1]
    return drop


def fig13_agreement(correct: dict, bins: np.ndarray, ns, seeds) -> pd.DataFrame:
    """Fig. 13's curve: agreement of balanced and random subsets with the full ranking, per n (summarized over seeds).

    bins : ndarray, shape (N,), Fig. 13's labels; the left half-axis is taken whole. Columns as
    :func:`regutils.algorithms.summarize_curve`: method ("balanced" or "random"), n, size, ...
    """
    return algorithms.summarize_curve(algorithms.subset_agreement_curve(correct, bins, sorted(ns), list(seeds)))


def plot_fig13(fig13: pd.DataFrame, smallest_bin: int) -> plt.Figure:
    """Spearman and mAP against n per bin, balanced against random subsets; a dotted line at the smallest bin."""
    plots.use_style()
    fig, axes = plt.subplots(1, 2, figsize=(plots.PAGE_WIDTH_IN, 3.8))
    for method, color in zip(algorithms.SUBSET_METHODS, (plots.COLORS["test"], "0.45")):
        rows = fig13[fig13.method == method]
        label = "11n + left axis (Fig. 13)" if method == "balanced" else "random subset, same size (this book)"
        for ax, metric in zip(axes, ("spearman", "map")):
            plots.curve_with_band(ax, rows.n, rows[f"{metric}_mean"], rows[f"{metric}_low"], rows[f"{metric}_high"],
                                  label=label, color=color)
    balanced = fig13[fig13.method == "balanced"]
    ns, sizes = balanced.n.tolist(), balanced["size"].round().astype(int)
    for ax, metric in zip(axes, ("Spearman's rho", "mAP")):
        ax.set_ylabel(f"{metric} with the full ranking")
        ax.set_xticks(ns, [f"{n}\n({size})" for n, size in zip(ns, sizes)])
        ax.set_xlabel("n per bin (subset size)")
        if smallest_bin < max(ns):
            ax.axvline(smallest_bin, color="0.6", lw=0.8, ls=":")
    axes[0].legend(loc="lower right")
    fig.tight_layout()
    return fig


def export_n(ns, smallest_bin: int) -> int:
    """The n of the exported set: the paper's 30 when every bin holds 30, else the largest n of ``ns`` every bin
    can give in full (the smallest of ``ns`` when none can)."""
    if smallest_bin >= PAPER_N:
        return PAPER_N
    return max((n for n in ns if n <= smallest_bin), default=min(ns))


@dataclass(frozen=True)
class SmallTestSet:
    """The exported small test set: Fig. 13's construction at ``n`` samples per bin.

    indices : ndarray, shape (k,)
        Sorted positions in the analysed test set.
    table : DataFrame
        One row per sample: position, dataset_index (as written to the CSV), label, bin, CBGL, events.
    """

    n: int
    seed: int
    indices: np.ndarray
    npy_path: Path
    csv_path: Path
    table: pd.DataFrame

    def describe(self) -> str:
        """Markdown: what the set holds and where it is written."""
        return (f"The small test set holds {len(self.table)} test samples (Fig. 13's bins, n = {self.n}, seed "
                f"{self.seed}); it is written to `{self.npy_path}` and `{self.csv_path}`. Its first rows:")


def export_small_test_set(tb: Bins, s, data, out_dir: Path | str = OUT_DIR) -> SmallTestSet:
    """Draw Fig. 13's subset at :func:`export_n` of ``s.subset_n`` and write it as ``<data set>-<size>.npy/.csv``.

    Files already in ``out_dir`` are removed first, so only this build's small test set stays there.
    ``data`` supplies the source index (``index_test``) and labels (``y_test``) of the test samples.
    """
    n = export_n(sorted(s.subset_n), tb.smallest_bin)
    subset = sampling.balanced_subset(tb.bins, n, seed=s.seed, take_all=(LEFT_AXIS,))
    label = s.dataset if s.dataset != "npz" else Path(s.data_path).stem
    out_dir = Path(out_dir)
    for old in out_dir.glob("*"):
        old.unlink()
    npy_path, csv_path = sampling.export_subset(subset, data.index_test, out_dir / f"{label}-{subset.size}")
    written = pd.read_csv(csv_path)
    pos = written.position.to_numpy()
    names = np.array(sampling.bin_names(FIG13_STEP))
    table = written.assign(label=np.asarray(data.y_test)[pos], bin=names[tb.bins[pos]], CBGL=tb.cbgl[pos],
                           events=tb.events[pos])
    return SmallTestSet(n, s.seed, subset, npy_path, csv_path, table)


def plot_subset_images(images_test: np.ndarray, bins: np.ndarray, subset: np.ndarray, per_row: int = 10
                       ) -> plt.Figure:
    """Up to ``per_row`` images of ``subset`` from each of Fig. 13's bins, easy (right half-axis) to hard.

    images_test : ndarray, shape (N, H, W[, C]); bins : ndarray, shape (N,); subset : positions.
    """
    plots.use_style()
    names = sampling.bin_names(FIG13_STEP)
    order = [sampling.RIGHT_AXIS, *range(sampling.FIRST_SECTOR, len(names)), LEFT_AXIS]  # easy to hard
    in_subset = bins[subset]
    present = [b for b in order if np.any(in_subset == b)]
    fig, axes = plt.subplots(len(present), 1, figsize=(per_row * 0.6, 0.85 * len(present)), squeeze=False)
    width = images_test.shape[2]
    for ax, b in zip(axes[:, 0], present):
        plots.image_grid(ax, images_test[subset[in_subset == b][:per_row]], ncols=per_row)
        ax.set_xlim(-0.5, per_row * (width + 2) - 2.5)  # the same scale in every row, rows left-aligned
        ax.set_anchor("W")
        ax.set_title(f"{names[b]}: {np.count_nonzero(in_subset == b)} in the subset", fontsize=plots.SMALL_PT,
                     loc="left")
    fig.tight_layout()
    return fig


def _corr(row) -> stats.Corr:
    """Mean over draws with its 10-90 % range, as a correlation row of the scorecard."""
    return stats.Corr(float(row["spearman_mean"]), float(row["spearman_low"]), float(row["spearman_high"]),
                      int(round(row["size"])))


def _best_n(fig13: pd.DataFrame, smallest_bin: int):
    """(the n every bin can give in full, up to the paper's 49; best n by Spearman; best n by mAP), None if none."""
    ns_paper = [int(n) for n in sorted(fig13.n.unique()) if n <= smallest_bin and n <= PAPER["smallest_bin"]]
    if not ns_paper:
        return ns_paper, None, None
    rows = fig13[fig13.n.isin(ns_paper)]
    return ns_paper, algorithms.best_n(rows), algorithms.best_n(rows, metric="map")


def scorecard(tb: Bins, t3: Table3Draws, agreement: pd.DataFrame, drop: pd.DataFrame, fig13: pd.DataFrame,
              small: SmallTestSet, n_algorithms: int, s) -> Scorecard:
    """The paper's claims of §4.2 as tested verdicts.

    Table 3's "extremely strong" Spearman coefficients are tested as a mean over draws ≥ 0.95. They and
    the ordering of accuracies (every algorithm lower on the 10-bin subset) are comparable only when the
    subsets are the paper's 400 samples, every bin gives its full share, and 400 is at most a tenth of
    the test set. The bin counts are absolute, comparable only on CIFAR-10's 10,000 test samples; the
    best n only when n = 30 is among several n tried, up to 49, that every bin can give in full.
    """
    n_test = tb.n_test
    full_draw = all(tb.sector_sizes(step).min() >= t3.quota(step) for step in STEPS)
    problems = [f"the subsets are set to {t3.size} samples"] if t3.size != PAPER["table3_size"] else []
    problems += [] if full_draw else ["some bins hold fewer samples than their share"]
    if t3.size > SMALL_SHARE * n_test:
        problems.append(f"{t3.size} samples would be {t3.size / n_test:.0%} of the {n_test} test samples")
    table3_comparable = (True if not problems else
                         "the paper draws 400 samples, 100 or 40 from every bin, 4 % of its test set; here "
                         + " and ".join(problems))
    counts_comparable = (True if s.dataset == "cifar10" and n_test == PAPER["test_size"] else
                         f"absolute counts of a {n_test}-sample test set; the paper's are of CIFAR-10's 10,000")
    ns_paper, best, best_map = _best_n(fig13, tb.smallest_bin)
    best_comparable = (True if PAPER_N in ns_paper and len(ns_paper) > 1 else
                       f"n = {PAPER_N} is not among the n tried that every bin can give in full "
                       f"({', '.join(map(str, ns_paper)) or 'none'}; the smallest bin holds {tb.smallest_bin})")

    card = Scorecard("testing", setting=s.describe())
    for step, name in STEPS.items():
        card.add(f"Spearman of the ranking, 400-sample subset of {name} vs full test set (mean, 10-90 % over draws)",
                 paper=PAPER_RHO[step], value=_corr(agreement.loc[(name, MERGED)]), test=at_least(0.95),
                 comparable=table3_comparable)
    for step, name in STEPS.items():
        card.add(f"Spearman, subset of {name} with the zero-event samples left out (the other reading)",
                 paper=PAPER_RHO[step], value=_corr(agreement.loc[(name, EXCLUDED)]))
        card.add(f"Spearman, uniformly random subset as large as that of {name} (this book's addition)",
                 paper="n/a", value=_corr(agreement.loc[(name, RANDOM)]))
    card.add("share of algorithms less accurate on the 10-bin subset than on the 4-bin one", paper="17 of 17",
             value=float(drop["10 bins lower"].mean()), test=at_least(1.0), comparable=table3_comparable)
    card.add("samples on the left half-axis (taken whole)", paper=PAPER["left_axis"],
             value=int(tb.fig13_sizes[LEFT_AXIS]), test=below(PAPER_N), comparable=counts_comparable)
    card.add("smallest of the latter 11 bins (so n = 30 can be drawn from each)", paper=PAPER["smallest_bin"],
             value=tb.smallest_bin, test=at_least(PAPER_N), comparable=counts_comparable)
    card.add("n per bin with the highest mean Spearman (Fig. 13), among the n tried", paper=PAPER_N,
             value=best if best is not None else "n/a", test=between(PAPER_N, PAPER_N), comparable=best_comparable)
    card.add("n per bin with the highest mean mAP (Fig. 13), among the n tried", paper=PAPER_N,
             value=best_map if best_map is not None else "n/a")
    card.add(f"size of Fig. 13's small test set at n = {small.n}", paper=PAPER["size"], value=int(small.indices.size))
    card.add("algorithms ranked", paper=PAPER["algorithms"], value=n_algorithms)
    return card


def summary(tb: Bins, agreement: pd.DataFrame, drop: pd.DataFrame, fig13: pd.DataFrame,
            n_algorithms: int) -> str:
    """The chapter's closing paragraph, in Markdown: this build's numbers next to the paper's."""
    merged = {name: agreement.loc[(name, MERGED)] for name in STEPS.values()}
    rho_random = {name: agreement.loc[(name, RANDOM), "spearman_mean"] for name in STEPS.values()}
    ns = sorted(int(n) for n in fig13.n.unique())
    ns_paper, best, _ = _best_n(fig13, tb.smallest_bin)
    return (
        f"On the Table 3 subsets ({merged['10 bins']['size']:.0f} and {merged['4 bins']['size']:.0f} of {tb.n_test} "
        f"test samples on average, 10 and 4 bins), the {n_algorithms} algorithms of this build keep their "
        f"full-test-set order with a mean Spearman's rho of {merged['10 bins']['spearman_mean']:.3f} and "
        f"{merged['4 bins']['spearman_mean']:.3f}, against the paper's 0.9871 and 0.9877 for 17 algorithms on 400 "
        f"of 10,000. Uniformly random subsets of the same sizes, which the paper does not try, reach "
        f"{rho_random['10 bins']:.3f} and {rho_random['4 bins']:.3f}. "
        f"{float(drop['10 bins lower'].mean()):.0%} of the algorithms are less accurate on the 10-bin subset than on "
        "the 4-bin one. "
        + (f"Among the n that every bin of Fig. 13 can give in full ({', '.join(map(str, ns_paper))}), the mean "
           f"Spearman's rho is highest at n = {best} (paper: {PAPER_N})." if ns_paper else
           f"No n of the profile ({', '.join(map(str, ns))}) can be drawn in full from every bin of Fig. 13 (the "
           f"smallest bin holds {tb.smallest_bin}), so the best n is not defined here.")
        + " The list above gives the verdict on each of the paper's claims."
    )
