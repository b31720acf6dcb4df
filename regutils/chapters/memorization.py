"""Chapter 3.3.2, memorization and generalization: forgetting and mal-generalizing events in step.

    from regutils.chapters import memorization as mem
    hist = mem.event_histograms(runs, seed=s.seed)             # Fig. 7: one histogram pair per shown run
    mem.plot_event_histograms(hist)
    syn = mem.synchronization(long_runs)                       # Fig. 8: both readings, over s.sync_runs runs
    mem.plot_sync_counts(syn, seed=s.seed)
    fig8 = mem.fig8_examples(syn, data.index_test, paper_data=s.dataset == "cifar10")
    ex = mem.pick_examples(syn, runs, data.index_test, paper_data=s.dataset == "cifar10")
    mem.plot_sync_examples(syn, ex, data)                      # Fig. 9
    mem.plot_sync_classes(syn)
    feats = mem.probe_features(p.probe_features, data, s)     # Table 1: SVM features
    t1 = mem.table1(feats, syn, ex, data.index_test, p.probe_sizes, p.table1_repeats, seed=s.seed)
    wide = mem.multiclass_probe(feats, syn, p.probe_sizes, p.probe_max_test, p.probe_mode, p.probe_repeats)
    card = mem.scorecard(s, hist, syn, fig8, t1, wide)

A test sample's *mal-generalizing* event at epoch t is the transition from correct at t - 1 to
wrong at t, like a training sample's forgetting event. The paper (§3.3.2) finds the histograms of
both counts alike (Pearson 0.9985 and 0.9984 for runs #1 and #4, Fig. 7); counts the training
samples whose forgetting events fall on a test sample's event epochs, "higher in the case of a high
number of mal-generalizing events" (Fig. 8), and far fewer when all of 10 or 20 runs must agree
(Fig. 8, 9); and finds that such synchronized samples help a binary SVM on its low-regularity test
sample (Table 1). Synchronization is read as "at least one shared event epoch" (:mod:`regutils.sync`,
``rule="any"``), the reading that fits the paper's rise; the strict reading ("all") is shown too.
"""
from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from .. import density, features, measures, picks, plots, stats, sync
from ..claims import above, at_least, at_most, between
from ..probe import (
    TABLE1_OTHER,
    TABLE1_SAME,
    NotEnoughSynchronized,
    binary_probe,
    sync_svm_experiment,
)
from ..report import Scorecard, table
from ..train import trained_model

PAPER_FIG7 = (("#1", 0.9985), ("#4", 0.9984))  # the paper's runs and their histogram correlations
PAPER_FIG8 = (90, 5695)  # the paper's test samples with 2 and 15 mal-generalizing events
PAPER_FIG8_COUNT = 13266 / 50000  # synchronized training samples of its 2-event sample, of 50,000
PAPER_FIG9 = (521, 5695, 889)  # the paper's test samples of Fig. 9 and Table 1: high, middle, low regularity
ROLES = ("high", "middle", "low")
# role: (the paper's sample, {N: (accuracy w/ synchronized, w/o synchronized)})
PAPER_TABLE1 = {"high": (521, {100: (0.9585, 0.9737), 460: (0.9950, 0.9768)}),
                "middle": (5695, {100: (0.7448, 0.7496), 460: (0.6470, 0.5107)}),
                "low": (889, {100: (0.3528, 0.2147), 460: (0.1561, 0.1238)})}
READINGS = {"any": "any: at least one shared epoch (scored)", "all": "all: every event epoch shared"}
FEATURE_CHOICES = ("auto", "imagenet", "trained")
MAX_SHOWN = 31  # training samples shown per test sample in Fig. 9


# --- Fig. 7


@dataclass(frozen=True)
class EventHistograms:
    """Forgetting and mal-generalizing counts of every run, and their histogram correlation in the shown runs.

    train_events : ndarray, shape (runs, N)
    test_events : ndarray, shape (runs, M)
    paper : dict
        {shown run index: (the paper's run name, its correlation)}, in the order shown.
    r : dict
        {shown run index: stats.Corr}, Pearson of the two normalized histograms of that run.
    """

    train_events: np.ndarray
    test_events: np.ndarray
    paper: dict
    r: dict

    @property
    def n_runs(self) -> int:
        return self.train_events.shape[0]


def shown_runs(n_runs: int) -> dict:
    """{run index: (paper run name, paper r)}: the paper's runs #1 and #4, or #1 and the last run standing in.

    With one run, that run stands in for #4 (the later entry of the same key wins).
    """
    (first, r1), (fourth, r4) = PAPER_FIG7
    return {0: (first, r1), 3 if n_runs >= 4 else n_runs - 1: (fourth, r4)}


def event_histograms(runs, seed: int = 0) -> EventHistograms:
    """Fig. 7 of ``runs`` (``train_correct`` (runs, T, N), ``test_correct`` (runs, T, M))."""
    train_events = measures.forgetting_events(runs.train_correct)
    test_events = measures.forgetting_events(runs.test_correct)
    paper = shown_runs(train_events.shape[0])
    r = {k: stats.histogram_correlation(train_events[k], test_events[k], seed=seed) for k in paper}
    return EventHistograms(train_events, test_events, paper, r)


def plot_event_histograms(hist: EventHistograms) -> plt.Figure:
    """One panel per shown run: the two normalized histograms of events per sample, log scale."""
    plots.use_style()
    fig = plt.figure(figsize=(plots.PAGE_WIDTH_IN, 3.4))
    axes = plots.panel_grid(fig, len(hist.r), ncols=2, panel_height=3.4)
    for (k, corr), ax in zip(hist.r.items(), axes):
        plots.histogram_1d(ax, hist.train_events[k], hist.test_events[k],
                           labels=("forgetting events (train)", "mal-generalizing events (test)"))
        ax.set_yscale("log")
        ax.set_xlabel("events per sample")
        ax.set_ylabel("fraction of samples")
        ax.set_title(f"run #{k + 1}: histograms' Pearson r = {corr.r:.5f}")
    axes[0].legend()
    fig.tight_layout()
    return fig


# --- Fig. 8 and the long-term curves


@dataclass(frozen=True)
class Synchronization:
    """Synchronization of test with training samples in R runs, under both readings.

    train_ev, test_ev : ndarray, bool, shape (R, T, N) and (R, T, M)
        Forgetting and mal-generalizing event masks.
    y_train, y_test : ndarray, shape (N,) and (M,)
    events_run1 : ndarray, shape (M,)
        Mal-generalizing events of each test sample in run 1.
    with_event : ndarray, shape (K,)
        The test samples with an event in run 1.
    counts : dict
        {reading: (M,) synchronized training samples per test sample, run 1}.
    pooled : dict
        {reading: (events (P,), counts (P,))}: every run taken on its own, test samples with an event.
    rise : dict
        {reading: Spearman of count against events over run 1's test samples with an event}.
    first_k : tuple of ndarray, each shape (K, R)
        (same class, other classes): [j, k-1] synchronized in every one of the first k runs (any).
    at_least : tuple of ndarray, each shape (K, R)
        (same class, other classes): [j, m-1] synchronized in at least m of the R runs (any).
    """

    train_ev: np.ndarray
    test_ev: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    events_run1: np.ndarray
    with_event: np.ndarray
    counts: dict
    pooled: dict
    rise: dict
    first_k: tuple
    at_least: tuple

    @property
    def n_runs(self) -> int:
        return self.train_ev.shape[0]

    @property
    def n_train(self) -> int:
        return self.train_ev.shape[2]


def synchronization(long_runs) -> Synchronization:
    """Every synchronization count of the chapter, from ``long_runs`` (``train_correct`` (R, T, N),
    ``test_correct`` (R, T, M), ``y_train``, ``y_test``); run 1 is the one-run case."""
    train_ev = measures.event_mask(long_runs.train_correct)
    test_ev = measures.event_mask(long_runs.test_correct)
    y_train, y_test = np.asarray(long_runs.y_train), np.asarray(long_runs.y_test)
    events = test_ev.sum(axis=1)  # (R, M)
    with_event = np.flatnonzero(events[0] > 0)
    counts, pooled = {}, {}
    for reading in READINGS:
        per_run = np.stack([sync.sync_counts(tr, te, rule=reading) for tr, te in zip(train_ev, test_ev)])
        counts[reading] = per_run[0]
        pooled[reading] = (events[events > 0], per_run[events > 0])
    rise = {reading: sync.rise_with_events(events[0], counts[reading]) for reading in READINGS}
    first_k = sync.long_term_curves_by_class(train_ev, test_ev, y_train, y_test, with_event)
    at_least_m = sync.at_least_runs_by_class(train_ev, test_ev, y_train, y_test, with_event)
    return Synchronization(train_ev, test_ev, y_train, y_test, events[0], with_event, counts, pooled, rise,
                           first_k, at_least_m)


def plot_sync_counts(syn: Synchronization, seed: int = 0) -> plt.Figure:
    """Synchronized counts against events: both readings in one run (left), the first k runs (right)."""
    plots.use_style()
    rng = np.random.default_rng(seed)  # the sideways jitter of the dots
    events, shown = syn.events_run1, syn.with_event
    fig, axes = plt.subplots(1, 2, figsize=(plots.PAGE_WIDTH_IN, 3.9), sharey=True)
    if shown.size:
        for (reading, label), color in zip(READINGS.items(), (plots.COLORS["test"], plots.COLORS["train"])):
            axes[0].scatter(events[shown] + rng.uniform(-0.15, 0.15, shown.size), syn.counts[reading][shown],
                            s=6, alpha=0.3, color=color)
            plots.events_vs_measure(axes[0], *syn.pooled[reading], color=color,
                                    label=f"{label}; Spearman (run 1) {syn.rise[reading]:+.2f}")
        first_k = syn.first_k[0] + syn.first_k[1]
        run_sets = {1: "in run 1", 2: "in runs 1 and 2", syn.n_runs: f"in all {syn.n_runs} runs"}
        for (k, label), color in zip(sorted(run_sets.items()), plots.OKABE_ITO[2:]):
            plots.events_vs_measure(axes[1], events[shown], first_k[:, k - 1], color=color, label=label)
    axes[0].set_title(f"one run, both readings\n({shown.size} test samples with an event in run 1)")
    axes[1].set_title("reading any: synchronized in\nevery one of the first k runs")
    axes[0].set_xlabel("mal-generalizing events of the test sample")
    axes[1].set_xlabel("its mal-generalizing events in run 1")
    for ax in axes:
        ax.set_yscale("symlog", linthresh=1)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend()
    axes[0].set_ylabel("synchronized training samples")
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class Fig8Examples:
    """The paper's two examples of Fig. 8 (its samples 90 and 5695), or their analogues, in run 1.

    The counts and events are means over the test samples taken (one each for the paper's samples;
    every test sample with 2 events, and every one with the most events, otherwise).
    """

    example: str
    low_events: float
    low_count: float
    high_events: float
    high_count: float
    max_events: int
    n_train: int
    paper_data: bool

    @property
    def ratio(self) -> float:
        return self.high_count / self.low_count if self.low_count > 0 else float("nan")

    def sentence(self) -> str:
        return (f"{self.example}: {self.low_events:.0f} events -> {self.low_count:.1f} synchronized training samples "
                f"({self.low_count / self.n_train:.2%} of {self.n_train}); {self.high_events:.0f} events -> "
                f"{self.high_count:.1f}; ratio {self.ratio:.2f}")


def fig8_examples(syn: Synchronization, index_test, paper_data: bool) -> Fig8Examples:
    """The paper's test samples 90 and 5695 when ``paper_data`` and both are in ``index_test`` (M,),
    else the test samples with 2 events and those with the most events in run 1."""
    index_test = np.asarray(index_test)
    events = syn.events_run1
    max_events = int(events.max()) if events.size else 0
    found = [np.flatnonzero(index_test == i) for i in PAPER_FIG8]
    if paper_data and all(f.size for f in found):
        (low, high), example = found, f"the paper's test samples {PAPER_FIG8[0]} and {PAPER_FIG8[1]}"
    else:
        low, high = np.flatnonzero(events == 2), np.flatnonzero(events == max_events)
        example = f"the test samples with 2 events and those with the most, {max_events} (run 1, mean counts)"

    def mean(values, at):
        return float(values[at].mean()) if at.size else float("nan")

    counts = syn.counts["any"]
    return Fig8Examples(example, mean(events, low), mean(counts, low), mean(events, high), mean(counts, high),
                        max_events, syn.n_train, paper_data)


# --- Fig. 9


@dataclass(frozen=True)
class SyncExamples:
    """The test samples of Fig. 9 and Table 1, and their training samples synchronized in several runs.

    shown : ndarray, int64, shape (<= 3,)
        Test sample positions, high, middle and low regularity (fewer when fewer qualify).
    rule : str
        Which rule chose them, in words.
    runs_needed : int
        Runs in which a training sample must be synchronized to be shown.
    regularity : ndarray, shape (M,)
        Density of each test sample in the run-averaged (CBGL, mal-generalizing events) plane.
    synced_runs : ndarray, int, shape (len(shown), N)
        Runs in which each training sample is synchronized with each shown test sample (reading any).
    """

    shown: np.ndarray
    rule: str
    runs_needed: int
    n_runs: int
    regularity: np.ndarray
    synced_runs: np.ndarray

    def sentence(self) -> str:
        return (f"test samples shown: {self.rule}; training samples synchronized in at least {self.runs_needed} of "
                f"{self.n_runs} runs (reading any)")


def pick_examples(syn: Synchronization, runs, index_test, paper_data: bool) -> SyncExamples:
    """Three test samples to show: the paper's 521, 5695 and 889 on its data, else by regularity.

    Candidates are the test samples with at least 23 + 23 training samples synchronized in every run
    (enough for Table 1); when fewer than three have that many, those with any training sample
    synchronized in the most runs m for which three test samples keep one. Regularity is the density
    of the test samples of ``runs`` (the main runs) in their run-averaged (CBGL, events) plane.
    """
    same_m, other_m = syn.at_least
    m_grid = sync.most_runs_with_sync(same_m + other_m, k=3)
    table1_ok = np.zeros(syn.y_test.size, dtype=bool)
    table1_ok[syn.with_event] = (same_m[:, -1] >= TABLE1_SAME) & (other_m[:, -1] >= TABLE1_OTHER)
    any_sync = np.zeros(syn.y_test.size, dtype=bool)
    if m_grid:
        any_sync[syn.with_event] = same_m[:, m_grid - 1] + other_m[:, m_grid - 1] > 0
    enough = table1_ok.sum() >= 3
    regularity = density.density(measures.average_over_runs(measures.cbtl(runs.test_correct)),
                                 measures.average_over_runs(measures.forgetting_events(runs.test_correct)))
    shown, rule = picks.pick_sync_examples(regularity, table1_ok if enough else any_sync, index_test,
                                           wanted=PAPER_FIG9 if paper_data else None)
    synced_runs = np.array([sync.long_term_sync(syn.train_ev, syn.test_ev, j) for j in shown]).reshape(
        len(shown), syn.n_train)
    return SyncExamples(shown, rule, syn.n_runs if enough else m_grid, syn.n_runs, regularity, synced_runs)


def plot_sync_examples(syn: Synchronization, ex: SyncExamples, data) -> plt.Figure:
    """One row per shown test sample: its image, then its most persistent synchronized training samples.

    ``data``: ``images_train`` (N, H, W[, C]), ``images_test`` (M, ...), ``index_test`` (M,), ``classes``.
    """
    plots.use_style()
    rows = max(len(ex.shown), 1)
    fig, axes = plt.subplots(rows, 1, figsize=(plots.PAGE_WIDTH_IN, 1.9 * rows), squeeze=False)
    needed = max(ex.runs_needed, 1)
    for ax, j, runs_j in zip(axes[:, 0], ex.shown, ex.synced_runs):
        order = np.argsort(-runs_j, kind="stable")
        kept = order[runs_j[order] >= needed][:MAX_SHOWN]
        synced = runs_j >= needed
        n_kept, n_same = int(synced.sum()), int(np.count_nonzero(syn.y_train[synced] == syn.y_test[j]))
        plots.sync_grid(ax, data.images_test[j], data.images_train[kept], syn.y_train[kept], syn.y_test[j], ncols=16)
        ax.set_title(f"test sample {data.index_test[j]} (class {data.classes[syn.y_test[j]]}, regularity "
                     f"{ex.regularity[j]:.3g}):\n{n_kept} training sample(s) synchronized in ≥ {ex.runs_needed} runs, "
                     f"{n_same} of its class" + (f", first {kept.size} shown" if n_kept > kept.size else ""),
                     fontsize=plots.SMALL_PT)
    if not len(ex.shown):
        axes[0, 0].set_axis_off()
        axes[0, 0].set_title("no test sample has a training sample synchronized with it in every run")
    fig.tight_layout()
    return fig


def plot_sync_classes(syn: Synchronization) -> plt.Figure:
    """Mean synchronized counts by class, in every one of the first k runs (left) and in any m runs (right)."""
    plots.use_style()
    k_runs = np.arange(1, syn.n_runs + 1)
    fig, axes = plt.subplots(1, 2, figsize=(plots.PAGE_WIDTH_IN, 3.8), sharey=True)
    for ax, (same, other), xlabel, title in (
            (axes[0], syn.first_k, "k: synchronized in every one\nof the first k runs", "all of the first k runs"),
            (axes[1], syn.at_least, "m: synchronized in at least m\nof the runs (any m)", "at least m runs")):
        if syn.with_event.size:
            ax.plot(k_runs, same.mean(axis=0), marker="o", ms=3, label="same class")
            ax.plot(k_runs, other.mean(axis=0), ls="--", marker="x", ms=3, label="other classes")
            ax.legend()
        ax.set_xlabel(xlabel)
        ax.set_title(f"{title}:\nmean over {syn.with_event.size} test samples")
        ax.set_yscale("symlog", linthresh=1)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].set_ylabel("synchronized training samples\n(reading any)")
    fig.tight_layout()
    return fig


# --- Table 1 and the multi-class probe


@dataclass(frozen=True)
class ProbeFeatures:
    """Features the SVMs see: train (N, D), test (M, D); ``source`` in words; ``note``: why ImageNet's are not used."""

    train: np.ndarray
    test: np.ndarray
    source: str
    note: str | None = None

    def sentence(self) -> str:
        return f"features: {self.source}; {self.train.shape[1]} values per image"


def probe_features(choice: str, data, s) -> ProbeFeatures:
    """The SVM features: ImageNet VGG-19 (the paper's) when ``choice`` is "auto" and its weights load, or
    "imagenet" (an error when they do not); otherwise those of the trained network of run 1 of ``s``."""
    if choice not in FEATURE_CHOICES:
        raise ValueError(f"probe_features={choice!r} is unknown; allowed: {', '.join(FEATURE_CHOICES)}")
    note = None
    if choice != "trained":
        try:
            both = features.imagenet_vgg19_features(np.concatenate([data.images_train, data.images_test]))
            n = len(data.images_train)
            return ProbeFeatures(both[:n], both[n:], "ImageNet VGG-19, input of the last fully connected layer")
        except features.FeatureError as err:
            if choice == "imagenet":
                raise
            note = str(err)
    model = trained_model(s.run_config(), device=s.device)
    return ProbeFeatures(features.penultimate_features(model, data.x_train),
                         features.penultimate_features(model, data.x_test),
                         f"the trained {s.arch} of run 1, input of its last linear layer", note)


@dataclass(frozen=True)
class Table1:
    """The paper's binary SVM probe on the shown test samples.

    frame : DataFrame
        One row per (test sample, N): accuracies w/, w/o, control, and the paper's w/ and w/o.
    entries : list of dict
        Per (role, N), in row order: role, n, accuracy {"with_synced", "without_synced", "control"},
        comparable (True or the reason the protocol could not run).
    """

    frame: pd.DataFrame
    entries: list
    repeats: int

    def table(self):
        """The frame for the page (a Styler): accuracies in %, a dash where the protocol could not run."""
        return table(self.frame, formats=dict.fromkeys(self.frame.columns, "{:.1%}"))

    def sentence(self) -> str:
        reasons = dict.fromkeys(e["comparable"] for e in self.entries if e["comparable"] is not True)
        return "\n".join([f"{self.repeats} random draws of the training sets per test sample and N",
                          *(f"not comparable: {reason}" for reason in reasons)])


def table1(feats: ProbeFeatures, syn: Synchronization, ex: SyncExamples, index_test, sizes, repeats: int,
           seed: int = 0) -> Table1:
    """Table 1 for the shown test samples (high, middle, low regularity; high and low when two are shown).

    The synchronized samples are those of every one of the R runs; a test sample with too few of them
    gets NaN accuracies and its rows a reason they are not comparable.
    """
    rows, entries = {}, []
    for role, j, runs_j in zip(ROLES if len(ex.shown) == 3 else ROLES[::2], ex.shown, ex.synced_runs):
        paper_id, paper = PAPER_TABLE1[role]
        comparable = True
        for n in sizes:
            try:
                acc = binary_probe(feats.train, syn.y_train, feats.test, syn.y_test, runs_j == syn.n_runs, j, n,
                                   repeats=repeats, seed=seed)
            except NotEnoughSynchronized as err:
                comparable = f"test sample {index_test[j]}: {err} (synchronized in all {syn.n_runs} runs)"
                acc = {"with_synced": np.nan, "without_synced": np.nan, "control": np.nan}
            paper_w, paper_wo = paper.get(n, (np.nan, np.nan))
            rows[(f"{index_test[j]} ({role} regularity; paper: {paper_id})", f"N = {n}")] = {
                "w/ synchronized": acc["with_synced"], "w/o synchronized": acc["without_synced"],
                "control: 23 + 23 others": acc["control"], "paper w/": paper_w, "paper w/o": paper_wo}
            entries.append({"role": role, "n": n, "accuracy": acc, "comparable": comparable})
    return Table1(pd.DataFrame(rows).T, entries, int(repeats))


@dataclass(frozen=True)
class MulticlassProbe:
    """This book's wider probe: a multi-class SVM per test sample with a synchronized sample in run 1.

    test_indices : ndarray, shape (K,)
    results : dict
        {N: DataFrame, one row per test sample (:func:`regutils.probe.sync_svm_experiment`)}.
    frame : DataFrame
        One row per N: mean accuracies, the mean paired gain with its standard error.
    """

    test_indices: np.ndarray
    results: dict
    frame: pd.DataFrame

    def gain(self, n) -> pd.Series:
        r = self.results[n]
        return r["with_synced"] - r["without_synced"]

    def table(self):
        """The frame for the page (a Styler): accuracies and their differences in %."""
        return table(self.frame, formats=dict.fromkeys(self.frame.columns.drop("test samples"), "{:.1%}"))


def multiclass_probe(feats: ProbeFeatures, syn: Synchronization, sizes, max_test: int, mode: str = "replace",
                     repeats: int = 3, seed: int = 0) -> MulticlassProbe:
    """At most ``max_test`` test samples synchronized (run 1) with a training sample and leaving room for N
    others; the control swaps in as many training samples forgotten in run 1."""
    counts = syn.counts["any"]
    room = syn.n_train - counts >= max(sizes)
    eligible = np.flatnonzero((counts >= 1) & room)[:max_test]
    synced = sync.sync_matrix(syn.train_ev[0], syn.test_ev[0], eligible)
    forgotten = syn.train_ev[0].any(axis=0)
    results = {n: sync_svm_experiment(feats.train, syn.y_train, feats.test, syn.y_test, synced, eligible,
                                      n_random=n, mode=mode, repeats=repeats, seed=seed, control_pool=forgotten)
               for n in sizes}
    gains = {n: r["with_synced"] - r["without_synced"] for n, r in results.items()}  # paired, per test sample
    frame = pd.DataFrame({f"N = {n}": {"with synchronized samples": r["with_synced"].mean(),
                                       "without synchronized samples": r["without_synced"].mean(),
                                       "control: as many forgotten samples": r["control"].mean(),
                                       "with - without": gains[n].mean(),
                                       "its standard error": gains[n].std() / np.sqrt(max(len(r), 1))}
                          for n, r in results.items()}).T
    frame["test samples"] = len(eligible)
    return MulticlassProbe(eligible, results, frame)


# --- scorecard


def table1_row(role: str, n) -> str:
    """The scorecard's name of a Table 1 cell (its rows add ": accuracy w/ ...", ": gain w/ - w/o")."""
    return f"Table 1, {role}-regularity sample ({PAPER_TABLE1[role][0]} in the paper), N = {n}"


def scorecard(s, hist: EventHistograms, syn: Synchronization, fig8: Fig8Examples, t1: Table1,
              wide: MulticlassProbe) -> Scorecard:
    """The paper's claims of §3.3.2 as tested verdicts, for runs trained with settings ``s``.

    Fig. 7: histogram correlation ≥ 0.95 in each shown run. Fig. 8: the count rises with the events
    (Spearman > 0, reading any); the 2-event sample's share of the training set within a factor of two
    of the paper's (on its data only); the many- over the 2-event count in [1.5, 2.5] (when a sample
    has more than 2 events). Table 1: a positive gain for the low-regularity sample, none for the
    high-regularity one at N = 100; the rest, the strict reading and the wider probe are context.
    """
    card = Scorecard("memorization", setting=s.describe())
    for k, (name, paper) in hist.paper.items():
        stand_in = "" if f"#{k + 1}" == name else f" (run #{k + 1}: the profile has {hist.n_runs} runs)"
        card.add(f"Pearson of forgetting vs mal-generalizing histograms, run {name}{stand_in}", paper=paper,
                 value=hist.r[k], test=at_least(0.95))

    card.add("sync count rises with events (rule any): Spearman of count vs events, run 1",
             paper="higher with more events", value=syn.rise["any"], test=above(0))
    card.add("sync count vs events under rule all (the strict reading), Spearman, run 1",
             paper="not in the paper", value=syn.rise["all"])
    card.add("fraction of training samples synchronized with a 2-event test sample (rule any)",
             paper=f"{PAPER_FIG8_COUNT:.4f} (13,266 of 50,000)", value=fig8.low_count / fig8.n_train,
             test=between(PAPER_FIG8_COUNT / 2, 2 * PAPER_FIG8_COUNT),
             comparable=True if fig8.paper_data else
             "the share forgotten at an epoch depends on the training set and the epochs; "
             "the paper's count is for one sample of its data set")
    card.add(f"count at the many-event sample over the 2-event one (rule any; {fig8.high_events:.0f} vs "
             f"{fig8.low_events:.0f} events)", paper="about twice (15 vs 2 events)", value=fig8.ratio,
             test=between(1.5, 2.5), comparable=True if fig8.max_events > 2 else
             f"no test sample has more than {fig8.max_events} events in run 1")
    first_k = syn.first_k[0] + syn.first_k[1]
    card.add(f"mean synchronized training samples per test sample with an event: one run, then all {s.sync_runs} runs",
             paper="decreases significantly, or even drops to 0",
             value=(f"{first_k[:, 0].mean():.1f} -> {first_k[:, -1].mean():.1f}" if syn.with_event.size
                    else "no test sample has an event"))

    for e in t1.entries:
        role, n, acc = e["role"], e["n"], e["accuracy"]
        paper_w, paper_wo = PAPER_TABLE1[role][1].get(n, (np.nan, np.nan))
        name, gain = table1_row(role, n), acc["with_synced"] - acc["without_synced"]
        card.add(f"{name}: accuracy w/ synchronized samples", paper=paper_w, value=acc["with_synced"])
        card.add(f"{name}: accuracy w/o synchronized samples", paper=paper_wo, value=acc["without_synced"])
        # the paper: the synchronized samples help the low-regularity sample; not the regular one at N = 100
        test = above(0) if role == "low" else at_most(0) if (role, n) == ("high", 100) else None
        card.add(f"{name}: gain w/ - w/o", paper=round(paper_w - paper_wo, 4), value=gain, test=test,
                 comparable=e["comparable"] if test else True)

    for n in wide.results:
        card.add(f"multi-class SVM over {len(wide.test_indices)} test samples, N = {n}: with - without "
                 "(this book's addition)", paper="not in the paper", value=float(wide.gain(n).mean()))
    return card


def summary(card: Scorecard, syn: Synchronization, t1: Table1, feats: ProbeFeatures) -> str:
    """Markdown closing the chapter: the scorecard's summary, which reading is scored, Table 1's verdicts."""
    lines = [card.summary(),
             "**Which reading is scored.** The paper's definition of synchronization admits two readings for a "
             "test sample with several events; both are computed above, and the scored one is *any* (a shared "
             "epoch), the one that fits the paper's report that the count rises with the events. Under it the count's "
             f"rise is *{card.verdict('sync count rises with events (rule any): Spearman of count vs events, run 1')}*"
             f" (Spearman {syn.rise['any']:+.2f}); under the strict reading the Spearman is {syn.rise['all']:+.2f}."]
    low = [e["n"] for e in t1.entries if e["role"] == "low"]
    if low:
        lines.append("**Table 1.** For the low-regularity sample the paper's gain is "
                     + "; ".join(f"*{card.verdict(table1_row('low', n) + ': gain w/ - w/o')}* at N = {n}" for n in low)
                     + f". Features of the SVM: {feats.source}.")
    return "\n\n".join(lines)
