"""Chapter 3.2, representation: every sample a point of the (CBTL, forgetting events) plane.

    from regutils.chapters import representation as rep
    planes = rep.planes(runs, data, min_group=5)        # {"train": Plane, "test": Plane}
    contrast = rep.contrast(planes["train"], n_values=3, k=4, seed=0)
    rep.plot_contrast(contrast, planes["train"], data.classes)   # equal CBTL, fewest vs most events
    rep.plot_planes(planes, step_deg=18.0, positions=10)          # density and thumbnails in both planes
    hist = rep.compare_histograms(planes, seed=0)
    rep.plot_histograms(planes, hist)                             # the 1-D distributions
    rep.plot_events_peak(planes)                                  # mean events along CBTL / CBGL
    card = rep.scorecard(planes, hist, s)                         # s: the chapter's Settings

The paper (§2.1, §3.2) represents each training sample by its run-averaged CBTL and forgetting
events, each test sample by its CBGL and mal-generalizing events: samples of equal CBTL differ in
their events, the density is highest in the lower right corner (high CBTL, few events), the events
peak at intermediate CBTL, and the 1-D distributions are long-tailed and "very similar" between
the training and the test set. It gives no numbers for these, except the density radius, 6.8.
"""
from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import scipy.stats

from .. import density, measures, picks, plots, sampling, stats
from ..claims import above, at_least, below, greater_than, holds, less_than, within
from ..report import Scorecard

PAPER_RADIUS = 6.8  # Fig. 2's caption
VERY_STRONG = 0.88  # §3.3.3 calls every correlation above it "very strong"


@dataclass(frozen=True)
class Plane:
    """One set's run-averaged bi-dimensional representation.

    name : str
        "training set" or "test set".
    xlabel, ylabel : str
        The measures on the axes: CBTL and forgetting events, or CBGL and mal-generalizing events.
    x, y : ndarray, shape (N,)
        The two measures per sample, averaged over the runs.
    epochs, runs : int
        Epochs T of each run and runs R averaged over.
    radius : float
        The paper's default density radius of this plane.
    density : ndarray, shape (N,)
        Samples within ``radius`` of each sample, divided by the disc's area.
    corner : str
        The quadrant (split at the middle of each axis range) of highest mean density.
    peak : measures.Peak
        Where the mean of ``y`` peaks along ``x`` rounded to integers (halves up).
    images : ndarray, shape (N, H, W[, C])
        The samples' images, for the figures.
    labels : ndarray, shape (N,)
        The samples' class indices.
    """

    name: str
    xlabel: str
    ylabel: str
    x: np.ndarray
    y: np.ndarray
    epochs: int
    runs: int
    radius: float
    density: np.ndarray
    corner: str
    peak: measures.Peak
    images: np.ndarray
    labels: np.ndarray

    @property
    def rounded(self) -> np.ndarray:
        """``x`` grouped on the integers 0..T, halves up: shape (N,)."""
        return np.floor(self.x + 0.5)


def measure_plane(name, xlabel, ylabel, correct, images, labels, min_group=5) -> Plane:
    """The :class:`Plane` of one set from its record ``correct``, shape (runs, epochs, N)."""
    correct = np.asarray(correct)
    x = measures.average_over_runs(measures.cbtl(correct))
    y = measures.average_over_runs(measures.forgetting_events(correct))
    radius = density.default_radius(x, y)
    d = density.density(x, y, radius)
    return Plane(name, xlabel, ylabel, x, y, correct.shape[1], correct.shape[0], radius, d,
                 density.densest_quadrant(x, y, d), measures.events_peak(np.floor(x + 0.5), y, min_group=min_group),
                 np.asarray(images), np.asarray(labels))


def planes(runs, data, min_group=5) -> dict[str, Plane]:
    """{"train": (CBTL, forgetting events) plane, "test": (CBGL, mal-generalizing events) plane}.

    ``runs`` holds ``train_correct`` (runs, epochs, N) and ``test_correct`` (runs, epochs, M), with
    labels ``y_train`` (N,) and ``y_test`` (M,); ``data`` holds the images ``images_train`` and
    ``images_test``. ``min_group``: samples a rounded CBTL value needs to count in the events' peak.
    """
    return {"train": measure_plane("training set", "CBTL", "forgetting events", runs.train_correct,
                                   data.images_train, runs.y_train, min_group),
            "test": measure_plane("test set", "CBGL", "mal-generalizing events", runs.test_correct,
                                  data.images_test, runs.y_test, min_group)}


@dataclass(frozen=True)
class Contrast:
    """Samples of (about) equal measure with the fewest and the most events.

    values : ndarray, shape (V,)
        The integer values of the measure, where the events of its samples spread most.
    fewest, most : ndarray, shape (V, k)
        Row j: the k samples within 0.5 of ``values[j]`` with the fewest (most) events, fewest (most) first.
    """

    values: np.ndarray
    fewest: np.ndarray
    most: np.ndarray


def contrast(plane: Plane, n_values=3, k=4, seed=0) -> Contrast:
    """``n_values`` integer values of the plane's measure, with their k + k samples (:class:`Contrast`).

    The values are at least 1 and at least range / (2 ``n_values``) apart; each needs 2 k samples within 0.5.
    """
    values = picks.widest_contrast_values(plane.x, plane.y, n_values, min_count=2 * k,
                                          min_gap=max(1, int(np.ptp(plane.x) // (2 * n_values))))
    fewest, most = picks.pick_same_measure_contrast(plane.x, plane.y, values, k=k, seed=seed)
    return Contrast(values, fewest, most)


def plot_contrast(chosen: Contrast, plane: Plane, classes) -> plt.Figure:
    """Two rows per value: the samples with the fewest events, then those with the most, titled label: events."""
    plots.use_style()
    n, k = chosen.fewest.shape
    fig, axes = plt.subplots(2 * n, 1, figsize=(plots.PAGE_WIDTH_IN, 1.5 * 2 * n), squeeze=False)
    for row, v in enumerate(chosen.values):  # a few rows
        for ax, samples, side in ((axes[2 * row, 0], chosen.fewest[row], "fewest"),
                                  (axes[2 * row + 1, 0], chosen.most[row], "most")):
            titles = [f"{classes[label]}: {events:.1f}"
                      for label, events in zip(plane.labels[samples], plane.y[samples])]
            plots.image_grid(ax, plane.images[samples], titles=titles, ncols=k)
            ax.set_title(f"{plane.xlabel} ≈ {v:g}, {side} {plane.ylabel}", pad=12)
    fig.tight_layout()
    return fig


def plot_planes(both: dict[str, Plane], step_deg=18.0, positions=10) -> plt.Figure:
    """Top: each plane coloured by density, with the angular sectors' rays; bottom: thumbnails across it."""
    plots.use_style()
    fig, axes = plt.subplots(2, len(both), figsize=(plots.PAGE_WIDTH_IN, 7.2), squeeze=False)
    for col, p in enumerate(both.values()):
        top, bottom = axes[0, col], axes[1, col]
        plots.add_colorbar(top, plots.density_scatter(top, p.x, p.y, p.density, s=8), label="density")
        xlim, ylim = top.get_xlim(), top.get_ylim()
        centre, ends = sampling.sector_rays(p.x, p.y, step_deg=step_deg)
        for end in ends:
            top.plot([centre[0], end[0]], [centre[1], end[1]], color="0.5", lw=0.6, ls="--", zorder=0)
        top.set_xlim(xlim)  # the rays reach past the points: keep the points' limits
        top.set_ylim(ylim)
        top.set_title(f"{p.name}: density (r = {p.radius:.2f}) and {step_deg:g}° sectors")
        bottom.scatter(p.x, p.y, s=3, color="0.75", linewidths=0)
        zoom = 24 / p.images.shape[1]  # thumbnails about 24 px wide whatever the image size
        plots.images_at_positions(bottom, p.x, p.y, p.images, picks.spread_over_plane(p.x, p.y, positions), zoom=zoom)
        bottom.set_title(f"{p.name}: samples across the plane")
        for ax in (top, bottom):
            ax.set_xlabel(p.xlabel)
            ax.set_ylabel(p.ylabel)
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class Histograms:
    """The training against the test distribution of each measure.

    measure_edges : ndarray, shape (B + 1,)
        Unit bins of CBTL / CBGL over the observed range, up to T.
    event_edges : ndarray, shape (E + 1,)
        One bin per attainable run average k / R of the events (at least 3 bins).
    shape_measure, shape_events : stats.Corr
        Pearson of the normalized histograms, CBTL against CBGL and forgetting against mal-generalizing.
    ks_measure, ks_events : tuple (statistic, p-value)
        Two-sample Kolmogorov-Smirnov tests of the same pairs.
    """

    measure_edges: np.ndarray
    event_edges: np.ndarray
    shape_measure: stats.Corr
    shape_events: stats.Corr
    ks_measure: tuple[float, float]
    ks_events: tuple[float, float]

    def summary(self) -> str:
        """Two lines: the histogram correlations with their intervals, then the KS distances."""
        m, e = self.shape_measure, self.shape_events
        return (f"Pearson of the normalized histograms: CBTL vs CBGL {m.r:.4f} [{m.low:.4f}, {m.high:.4f}], "
                f"forgetting vs mal-generalizing {e.r:.4f} [{e.low:.4f}, {e.high:.4f}]\n"
                f"Kolmogorov-Smirnov distance: CBTL vs CBGL {self.ks_measure[0]:.4f} (p = {self.ks_measure[1]:.3g}), "
                f"events {self.ks_events[0]:.4f} (p = {self.ks_events[1]:.3g})")


def compare_histograms(both: dict[str, Plane], seed=0) -> Histograms:
    """Histogram correlations (bootstrap over the samples, ``seed``) and KS tests, training vs test plane."""
    train, test = both["train"], both["test"]
    runs, epochs = train.runs, train.epochs
    measure_edges = np.arange(np.floor(min(train.x.min(), test.x.min())) - 0.5, epochs + 1.5)
    top_events = round(max(train.y.max(), test.y.max()) * runs)
    event_edges = (np.arange(max(3, top_events + 1) + 1) - 0.5) / runs
    ks_measure, ks_events = scipy.stats.ks_2samp(train.x, test.x), scipy.stats.ks_2samp(train.y, test.y)
    return Histograms(measure_edges, event_edges,
                      stats.histogram_pearson(train.x, test.x, bins=measure_edges, seed=seed),
                      stats.histogram_pearson(train.y, test.y, bins=event_edges, seed=seed),
                      (float(ks_measure.statistic), float(ks_measure.pvalue)),
                      (float(ks_events.statistic), float(ks_events.pvalue)))


def plot_histograms(both: dict[str, Plane], hist: Histograms) -> plt.Figure:
    """Normalized histograms on log scales, training against test: CBTL / CBGL (left), events (right)."""
    plots.use_style()
    train, test = both["train"], both["test"]
    fig, axes = plt.subplots(1, 2, figsize=(plots.PAGE_WIDTH_IN, 3.4))
    plots.histogram_1d(axes[0], train.x, test.x, labels=("CBTL (train)", "CBGL (test)"), bins=hist.measure_edges)
    axes[0].set_xlabel("CBTL / CBGL")
    plots.histogram_1d(axes[1], train.y, test.y, labels=("forgetting (train)", "mal-generalizing (test)"),
                       bins=hist.event_edges)
    axes[1].set_xlabel("events")
    for ax in axes:
        ax.set_yscale("log")  # the tails, next to a tall bin of samples learned at once
        ax.set_ylabel("density")
        ax.legend()
    fig.tight_layout()
    return fig


def plot_events_peak(both: dict[str, Plane]) -> plt.Figure:
    """Mean events (line) and their range (band) per rounded CBTL / CBGL, the peak dotted."""
    plots.use_style()
    fig, axes = plt.subplots(1, len(both), figsize=(plots.PAGE_WIDTH_IN, 3.4), sharey=True, squeeze=False)
    for ax, p, color in zip(axes[0], both.values(), (plots.COLORS["train"], plots.COLORS["test"])):
        plots.events_vs_measure(ax, p.rounded, p.y, label=p.name, color=color)
        ax.axvline(p.peak.at, color="0.5", lw=0.8, ls=":")
        ax.set_xlabel(f"{p.xlabel} (rounded)")
        ax.set_ylabel(p.ylabel)
        ax.set_title(f"{p.name}: mean events peak at {p.peak.at:g} of {p.epochs}")
    fig.tight_layout()
    return fig


def widest_event_range(p: Plane) -> float:
    """The largest max - min of the events among the samples of one rounded measure value."""
    _, _, low, high = plots.mean_and_range_by_value(p.rounded, p.y)
    return float((high - low).max())


def scorecard(both: dict[str, Plane], hist: Histograms, s) -> Scorecard:
    """The paper's claims of §2.1 and §3.2 as tested verdicts on the planes of settings ``s``.

    The claims carry no numbers: each is a sign (skewness), an ordering or a place in the plane.
    "Very similar" histograms: Pearson ≥ 0.88, the paper's "very strong" of §3.3.3. The radius
    counts epochs: comparable only at the paper's 200. KS distances and never-forgotten fractions
    are context.
    """
    train, test = both["train"], both["test"]
    T = train.epochs
    cbtl, forgetting, cbgl, malgen = train.x, train.y, test.x, test.y
    skew = {name: float(scipy.stats.skew(v)) for name, v in
            (("CBTL", cbtl), ("CBGL", cbgl), ("forgetting", forgetting), ("mal-generalizing", malgen))}
    radius_reason = True if T == 200 else f"the paper's axis ranges come from 200 epochs, this profile trains {T}"
    card = Scorecard("representation", setting=s.describe())
    card.add("widest range of forgetting events among samples of one (rounded) CBTL (Fig 1, 4)", paper="> 0",
             value=widest_event_range(train), test=above(0))
    card.add("mean forgetting events peak at an intermediate CBTL (Fig 4)", paper="yes", value=train.peak.interior,
             test=holds("peak strictly inside the well-populated CBTL values"))
    card.add("mean mal-generalizing events peak at an intermediate CBGL (Fig 4)", paper="yes",
             value=test.peak.interior, test=holds("peak strictly inside the well-populated CBGL values"))
    card.add("training peak right of the test peak, fraction of T (§3.2.2)", paper="yes", value=train.peak.at / T,
             test=greater_than(test.peak.at / T, "the test peak"))
    for p, fig in ((train, "2a"), (test, "2b")):
        card.add(f"densest quadrant of the {p.name.split()[0]} plane is the lower right (Fig {fig})",
                 paper="lower right", value=p.corner == "lower right",
                 test=holds("lower right has the highest mean density"))
    card.add("skewness of CBTL: long tail towards low values (Fig 3)", paper="< 0", value=skew["CBTL"], test=below(0))
    card.add("skewness of CBGL: long tail towards low values (Fig 3)", paper="< 0", value=skew["CBGL"], test=below(0))
    card.add("skewness of forgetting events: long tail towards many (Fig 3)", paper="> 0", value=skew["forgetting"],
             test=above(0))
    card.add("skewness of mal-generalizing events: long tail towards many (Fig 3)", paper="> 0",
             value=skew["mal-generalizing"], test=above(0))
    card.add("mean CBGL (test), fraction of T: the test samples' longer tail (§3.2.1)", paper="< mean CBTL",
             value=float(cbgl.mean() / T), test=less_than(float(cbtl.mean() / T), "mean CBTL"))
    card.add("range of forgetting events (§3.2.1)", paper="< range of CBTL", value=float(np.ptp(forgetting)),
             test=less_than(float(np.ptp(cbtl)), "range of CBTL"))
    card.add("range of mal-generalizing events (§3.2.1)", paper="< range of CBGL", value=float(np.ptp(malgen)),
             test=less_than(float(np.ptp(cbgl)), "range of CBGL"))
    card.add("Pearson of normalized histograms, CBTL (train) vs CBGL (test) (Fig 3)", paper="very similar",
             value=hist.shape_measure, test=at_least(VERY_STRONG))
    card.add("Pearson of normalized histograms, forgetting vs mal-generalizing events (Fig 3)", paper="very similar",
             value=hist.shape_events, test=at_least(VERY_STRONG))
    for p in (train, test):
        card.add(f"default density radius, {p.name.split()[0]} plane (Fig 2 caption)", paper=PAPER_RADIUS,
                 value=p.radius, test=within(PAPER_RADIUS, 0.05), comparable=radius_reason)
    card.add("Kolmogorov-Smirnov distance, CBTL (train) vs CBGL (test) (this book's addition)", paper="n/a",
             value=hist.ks_measure[0])
    card.add("Kolmogorov-Smirnov distance, forgetting vs mal-generalizing events (this book's addition)", paper="n/a",
             value=hist.ks_events[0])
    card.add("range of run-averaged CBTL, fraction of T", paper="not reported",
             value=f"{cbtl.min() / T:.2f} - {cbtl.max() / T:.2f}")
    card.add("fraction of training samples never forgotten in any run", paper="not reported",
             value=float(np.mean(forgetting == 0)))
    card.add("fraction of test samples never mal-generalized in any run", paper="not reported",
             value=float(np.mean(malgen == 0)))
    return card


def findings(both: dict[str, Plane], s) -> str:
    """Markdown: where the events peak, the densest quadrants and the CBTL span, in the build's numbers."""
    train, test = both["train"], both["test"]
    T = train.epochs

    def peak_words(p, label):
        return (f"{label} = {p.peak.at:g} of {T} ({p.peak.at / T:.2f} T; well-populated values {p.peak.low:g} to "
                f"{p.peak.high:g})")

    return (f"Mean events peak at {peak_words(train, 'CBTL')} on the training set and at "
            f"{peak_words(test, 'CBGL')} on the test set. The densest quadrant is the {train.corner} one of the "
            f"training plane and the {test.corner} one of the test plane. Run-averaged CBTL spans "
            f"{train.x.min() / T:.2f} T to {train.x.max() / T:.2f} T here; where no sample is learned late, only "
            f"the falling right half of the paper's curve can show. The paper shows all this on CIFAR-10 with 200 "
            f"epochs; here {s.describe()}.")
