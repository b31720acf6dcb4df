"""Primer: the book's measures on a hand-made record, on one real run, and under label noise.

    from regutils.chapters import primer
    primer.toy_table(toy_correct, toy_prob, radius=1.0)   # (samples, epochs) record -> one row per sample
    primer.plot_toy(toy_correct, radius=1.0)
    m = primer.run_measures(run)                          # run: a stacked Trace, its first run is used
    primer.plot_real_records(m); primer.plot_one_run(m)
    noise = primer.label_noise(noisy_runs, m)             # noisy_runs: runs trained with label noise
    primer.plot_label_noise(noise)
    card = primer.scorecard(noise, s, label_noise=0.4)    # s: the chapter's Settings

The measures are the definitions of Zhang et al.: CBTL (epochs a sample is classified correctly),
forgetting events (correct at t - 1, wrong at t) and the density of the (CBTL, events) plane.
Learnability (Lee et al.) is the mean probability of the label. The scorecard tests no claim of
Zhang et al.: it tests the expectations of Arpit et al. (a network fits patterns before noise) and
Toneva et al. (the most forgotten samples have noisy labels) on a run with noisy labels.
"""
from __future__ import annotations

import string
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Circle
from sklearn.metrics import roc_auc_score

from .. import density, measures, picks, plots, stats
from ..claims import above, below, greater_than, less_than
from ..report import Scorecard, table


def sample_names(n: int) -> list[str]:
    """Names of the hand-made record's samples: A to F, then s6, s7, ..."""
    return list(string.ascii_uppercase[:6])[:n] + [f"s{i}" for i in range(6, n)]


def toy_table(correct, prob, names=None, radius: float = 1.0, never_learned: str = "zero"):
    """Every measure of a hand-made record, one row per sample (a Styler).

    correct : array_like, shape (samples, epochs)
        1 where the sample is classified correctly at the end of the epoch (rows are samples, as
        one writes a record by hand; the package's measures take the transpose).
    prob : array_like, shape (samples, epochs)
        The probability of the sample's label at the end of each epoch.
    names : list of str, optional
        Row names (None: :func:`sample_names`).
    radius : float
        Density radius in the (CBTL, events) plane.
    never_learned : {"zero", "max"}
        Convention of the "events" column (and so of the density) for never-learned samples;
        the "events (max)" column always shows the "max" convention.

    Returns columns t1..tT (the record), CBTL, events, events (max), first learned,
    learnability and density.
    """
    record, prob = np.asarray(correct).T, np.asarray(prob).T  # measures take (epochs, samples)
    if record.shape != prob.shape:
        raise ValueError(f"correct and prob must have one shape, got {record.T.shape} and {prob.T.shape}")
    names = sample_names(record.shape[1]) if names is None else names
    frame = pd.DataFrame(record.T, index=names, columns=[f"t{t}" for t in range(1, record.shape[0] + 1)])
    frame["CBTL"] = measures.cbtl(record)
    frame["events"] = measures.forgetting_events(record, never_learned=never_learned)
    frame["events (max)"] = measures.forgetting_events(record, never_learned="max")
    frame["first learned"] = measures.first_learned_epoch(record)
    frame["learnability"] = measures.learnability(prob)
    frame["density"] = density.density(frame["CBTL"], frame["events"], r=radius)
    return table(frame, formats={"learnability": "{:.2f}", "density": "{:.3f}"}, units={"first learned": "epoch"})


def draw_record(ax, correct, names=None):
    """Draw a record on ``ax``: one row per sample, one cell per epoch (dark = correct), events as red crosses.

    correct : array_like, shape (epochs, samples)
    names : row labels (None: sample numbers).
    """
    correct = measures.as_correct_record(correct)
    ax.imshow(correct.T, cmap="Greys", vmin=-0.15, vmax=1.3, aspect="auto", interpolation="nearest")
    sample, epoch = np.nonzero(measures.event_mask(correct).T)
    ax.scatter(epoch, sample, marker="x", color="#D55E00", s=25, linewidths=1.2)
    n_epochs, n_samples = correct.shape
    step = max(1, n_epochs // 10)
    ax.set_xticks(np.arange(0, n_epochs, step), labels=np.arange(1, n_epochs + 1, step))
    ax.set_yticks(np.arange(n_samples), labels=names if names is not None else np.arange(n_samples))
    ax.set_xlabel("epoch t")
    return ax


def plot_toy(correct, radius: float = 1.0, names=None) -> plt.Figure:
    """The hand-made record (left) and its samples in the (CBTL, events) plane with density circles (right).

    correct : array_like, shape (samples, epochs), as in :func:`toy_table`.
    """
    plots.use_style()
    record = np.asarray(correct).T
    names = sample_names(record.shape[1]) if names is None else names
    x, y = measures.cbtl(record), measures.forgetting_events(record)
    fig, (left, right) = plt.subplots(1, 2, figsize=(plots.PAGE_WIDTH_IN, 3.4), gridspec_kw={"width_ratios": [1.3, 1]})
    draw_record(left, record, names)
    left.set_title("the record:\ndark = correct, x = forgetting event")
    right.scatter(x, y, s=40, zorder=3)
    for name, xi, yi in zip(names, x, y):  # one label and circle per hand-made sample
        right.annotate(name, (xi, yi), textcoords="offset points", xytext=(5, 5))
        right.add_patch(Circle((xi, yi), radius, fill=False, color="0.6", lw=0.8))
    right.set_xlim(-1.5, record.shape[0] + 1.5)
    right.set_ylim(-1.5, max(y.max(), 1) + 1.5)
    right.set_aspect("equal")
    right.set_xlabel("CBTL")
    right.set_ylabel("forgetting events")
    right.set_title(f"the (CBTL, events) plane,\ncircles of radius {radius:g}")
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class RunMeasures:
    """The measures of one run, per sample.

    record : ndarray, shape (epochs, N)
        The training record.
    cbtl, events, events_max, learn, density : ndarray, shape (N,)
        CBTL, forgetting events (paper's convention; never learned = T), learnability, and the
        density at the paper's default ``radius``, of the N training samples.
    cbgl, mal, mal_max : ndarray, shape (M,)
        The same counts on the M test samples (mal-generalizing events).
    train_acc, test_acc : float
        Final accuracies of the run.
    """

    record: np.ndarray
    cbtl: np.ndarray
    events: np.ndarray
    events_max: np.ndarray
    learn: np.ndarray
    density: np.ndarray
    radius: float
    cbgl: np.ndarray
    mal: np.ndarray
    mal_max: np.ndarray
    train_acc: float
    test_acc: float

    @property
    def epochs(self) -> int:
        return self.record.shape[0]


def run_measures(run) -> RunMeasures:
    """The measures of the first run of ``run``.

    ``run.train_correct`` and ``run.train_prob`` have shape (runs, epochs, N), ``run.test_correct``
    (runs, epochs, M), ``run.history["train_acc"]`` and ``["test_acc"]`` (runs, epochs).
    """
    train, test = run.train_correct[0], run.test_correct[0]
    cbtl, events = measures.cbtl(train), measures.forgetting_events(train)
    return RunMeasures(
        record=train, cbtl=cbtl, events=events, events_max=measures.forgetting_events(train, never_learned="max"),
        learn=measures.learnability(run.train_prob[0]), density=density.density(cbtl, events),
        radius=density.default_radius(cbtl, events), cbgl=measures.cbtl(test),
        mal=measures.forgetting_events(test), mal_max=measures.forgetting_events(test, never_learned="max"),
        train_acc=float(run.history["train_acc"][0, -1]), test_acc=float(run.history["test_acc"][0, -1]))


def run_summary(s, m: RunMeasures) -> str:
    """Three lines on the run: its settings ``s``, its size and accuracies, the density radius."""
    return "\n".join([
        s.describe().replace(f"{s.runs} runs", "1 run"),
        f"{m.cbtl.size} training and {m.cbgl.size} test samples, T = {m.epochs} epochs; "
        f"final accuracy {m.train_acc:.3f} (train), {m.test_acc:.3f} (test)",
        f"density radius (paper default) r = {m.radius:.3f}"])


def plot_real_records(m: RunMeasures, k: int = 24) -> plt.Figure:
    """The records of up to ``k`` training samples spread over the (CBTL, events) plane, highest CBTL on top."""
    plots.use_style()
    shown = picks.spread_over_plane(m.cbtl, m.events, k=k)
    shown = shown[np.lexsort((m.events[shown], m.cbtl[shown]))[::-1]]
    fig, ax = plt.subplots(figsize=(plots.PAGE_WIDTH_IN, 5))
    draw_record(ax, m.record[:, shown], [f"#{i}  CBTL {m.cbtl[i]}, F {m.events[i]}" for i in shown])
    ax.set_title(f"{len(shown)} training samples spread over the (CBTL, events) plane\n(dark = correct, x = event)")
    fig.tight_layout()
    return fig


def jitter(n: int, seed: int) -> np.ndarray:
    """Uniform offsets in [-0.3, 0.3), shape (2, n): integer coordinates pile up, jitter shows the crowd."""
    return np.random.default_rng(seed).uniform(-0.3, 0.3, (2, n))


def plot_one_run(m: RunMeasures) -> plt.Figure:
    """CBTL and CBGL histograms, the training plane coloured by density, and learnability along CBTL."""
    plots.use_style()
    fig = plt.figure(figsize=(plots.PAGE_WIDTH_IN, 3.4))
    axes = plots.panel_grid(fig, 3, ncols=2, panel_height=3.4)
    plots.histogram_1d(axes[0], m.cbtl, m.cbgl, labels=("train: CBTL", "test: CBGL"))
    axes[0].set_xlabel("epochs correct")
    axes[0].set_ylabel("fraction of samples")
    axes[0].legend()
    dx, dy = jitter(m.cbtl.size, seed=0)
    points = plots.density_scatter(axes[1], m.cbtl + dx, m.events + dy, m.density)
    plots.add_colorbar(axes[1], points, label="density")
    axes[1].set_xlabel("CBTL (jittered)")
    axes[1].set_ylabel("forgetting events (jittered)")
    axes[2].scatter(m.cbtl + dx, m.learn, s=4, alpha=0.5)
    axes[2].set_xlabel("CBTL (jittered)")
    axes[2].set_ylabel("learnability")
    fig.tight_layout()
    return fig


def one_run_facts(m: RunMeasures, seed: int = 0) -> str:
    """Pearson of CBTL and learnability (bootstrap interval), the medians, and the shares without events."""
    r = stats.pearson(m.cbtl, m.learn, seed=seed)
    return (f"Pearson(CBTL, learnability) = {r.r:.3f} [{r.low:.3f}, {r.high:.3f}]\n"
            f"median CBTL {np.median(m.cbtl):g}, median CBGL {np.median(m.cbgl):g} of T = {m.epochs}; "
            f"{(m.events == 0).mean():.0%} of the training and {(m.mal == 0).mean():.0%} of the test samples "
            "have 0 events")


def conventions_table(m: RunMeasures):
    """Never-learned samples, samples with events, and the most events under both conventions, per split
    (a Styler)."""
    def column(counts, events, events_max):
        return [int((counts == 0).sum()), int((events > 0).sum()), events.max(), events_max.max()]

    return table(pd.DataFrame({"training set": column(m.cbtl, m.events, m.events_max),
                               "test set": column(m.cbgl, m.mal, m.mal_max)},
                              index=["never learned (CBTL/CBGL = 0), samples", "at least one event, samples",
                                     "most events, paper convention", "most events, never learned = max"]))


@dataclass(frozen=True)
class NoisyLabels:
    """Runs trained with a share of wrong training labels, their measures averaged over runs.

    noisy : ndarray of bool, shape (N,)
        Whether the training label was replaced.
    cbtl, events, events_max, density : ndarray, shape (N,)
        Run-averaged CBTL, forgetting events (paper's convention; never learned = T) and the
        density of the (CBTL, events) plane at the paper's default radius.
    auc : float
        ROC AUC of low CBTL as a detector of noisy labels (nan when every label, or none, is noisy).
    test_acc, cbgl_mean : float
        Mean final test accuracy and mean CBGL of the (clean) test samples.
    clean_test_acc, clean_cbgl_mean : float
        The same for the run trained on clean labels.
    """

    noisy: np.ndarray
    cbtl: np.ndarray
    events: np.ndarray
    events_max: np.ndarray
    density: np.ndarray
    auc: float
    test_acc: float
    cbgl_mean: float
    clean_test_acc: float
    clean_cbgl_mean: float
    epochs: int
    runs: int

    @property
    def learned(self) -> np.ndarray:
        """Samples classified correctly in at least one epoch of some run: there the two conventions agree."""
        return self.cbtl > 0


def label_noise(noisy_runs, clean: RunMeasures) -> NoisyLabels:
    """The measures of ``noisy_runs`` (a stacked Trace trained with label noise), next to the clean run's.

    ``noisy_runs.train_correct`` has shape (runs, epochs, N), ``noisy_runs.noisy_train`` (N,).
    """
    noisy = np.asarray(noisy_runs.noisy_train, dtype=bool)
    cbtl = measures.average_over_runs(measures.cbtl(noisy_runs.train_correct))
    events = measures.average_over_runs(measures.forgetting_events(noisy_runs.train_correct))
    events_max = measures.average_over_runs(measures.forgetting_events(noisy_runs.train_correct, never_learned="max"))
    # low CBTL flags a noisy label; the AUC needs both kinds of label
    auc = float(roc_auc_score(noisy, -cbtl)) if 0 < noisy.sum() < noisy.size else float("nan")
    return NoisyLabels(
        noisy=noisy, cbtl=cbtl, events=events, events_max=events_max, density=density.density(cbtl, events), auc=auc,
        test_acc=float(noisy_runs.history["test_acc"][:, -1].mean()),
        cbgl_mean=float(measures.average_over_runs(measures.cbtl(noisy_runs.test_correct)).mean()),
        clean_test_acc=clean.test_acc, clean_cbgl_mean=float(clean.cbgl.mean()),
        epochs=noisy_runs.train_correct.shape[-2], runs=noisy_runs.train_correct.shape[0])


def noise_summary(nl: NoisyLabels) -> str:
    """Two lines: how many labels were replaced, and the test accuracy and mean CBGL with and without noise."""
    return (f"{nl.noisy.sum()} of {nl.noisy.size} training labels replaced ({nl.noisy.mean():.0%}); "
            f"final test accuracy {nl.test_acc:.3f} (clean run: {nl.clean_test_acc:.3f})\n"
            f"mean CBGL of the test samples: {nl.cbgl_mean:.2f} with noisy training labels, "
            f"{nl.clean_cbgl_mean:.2f} without (the test-set exercise)")


def plot_label_noise(nl: NoisyLabels) -> plt.Figure:
    """The noisy run's training samples in the (CBTL, events) plane by kind of label (left), their CBTL (right)."""
    plots.use_style()
    fig, axes = plt.subplots(1, 2, figsize=(plots.PAGE_WIDTH_IN, 3.6))
    dx, dy = jitter(nl.cbtl.size, seed=1)
    for mask, name, color in ((~nl.noisy, "clean label", plots.COLORS["train"]),
                              (nl.noisy, "noisy label", plots.COLORS["test"])):
        axes[0].scatter(nl.cbtl[mask] + dx[mask], nl.events[mask] + dy[mask], s=5, alpha=0.5, color=color,
                        label=f"{name} ({mask.sum()})")
    axes[0].set_xlabel("CBTL (jittered)")
    axes[0].set_ylabel("forgetting events (jittered)")
    axes[0].legend(markerscale=3)
    plots.histogram_1d(axes[1], nl.cbtl[~nl.noisy], nl.cbtl[nl.noisy], labels=("clean label", "noisy label"))
    axes[1].set_xlabel("CBTL")
    axes[1].set_ylabel("fraction of samples")
    axes[1].legend()
    fig.tight_layout()
    return fig


def _mean(values: np.ndarray) -> float:
    """The mean, nan for no values (no warning)."""
    return float(values.mean()) if values.size else float("nan")


def scorecard(nl: NoisyLabels, s, label_noise: float) -> Scorecard:
    """The literature's expectations on label noise as tested verdicts, for runs trained with settings ``s``.

    Noisy samples should have lower CBTL (fitted after the patterns, Arpit et al.), low CBTL
    should find them (ROC AUC above chance), they should be forgotten more (Toneva et al.; judged
    on the samples learned at least once, where the two conventions agree, and not comparable
    when no noisy sample is ever learned) and sit in sparser places of the plane. The mean events
    under both conventions are context.
    """
    noisy, learned = nl.noisy, nl.learned
    setting = f"{s.describe().replace(f'{s.runs} runs', f'{nl.runs} run(s)')}, {label_noise:.0%} label noise"
    card = Scorecard("primer", setting=setting)
    card.add("mean CBTL, clean training samples", paper="context", value=float(nl.cbtl[~noisy].mean()))
    card.add("mean CBTL, noisy training samples", paper="lower than clean: noise is fitted after the patterns",
             value=float(nl.cbtl[noisy].mean()), test=less_than(nl.cbtl[~noisy].mean(), "clean samples"))
    card.add("ROC AUC of low CBTL for finding noisy labels", paper="above chance: noise is fitted late",
             value=nl.auc, test=above(0.5))
    for convention, values in (("paper's convention, never learned = 0", nl.events),
                               ("never learned = max", nl.events_max)):
        card.add(f"mean forgetting events, noisy / clean samples, {convention}", paper="context",
                 value=f"{values[noisy].mean():.2f} / {values[~noisy].mean():.2f}")
    fitted = (noisy & learned).any()
    card.add("mean forgetting events, noisy samples learned at least once",
             paper="more than clean: the most forgotten samples have noisy labels",
             value=_mean(nl.events[noisy & learned]),
             test=greater_than(_mean(nl.events[~noisy & learned]), "clean samples learned at least once"),
             comparable=True if fitted else f"no noisy sample is fitted in {nl.epochs} epochs")
    card.add("mean density, noisy / clean samples",
             paper="below 1: noisy samples are irregular (this book's expectation)",
             value=float(nl.density[noisy].mean() / nl.density[~noisy].mean()), test=below(1))
    return card


def never_fitted_note(nl: NoisyLabels) -> str:
    """One sentence: the shares of noisy and clean samples never fitted, and their events under both conventions."""
    learned = nl.learned
    return (f"{1 - learned[nl.noisy].mean():.0%} of the noisy samples and {1 - learned[~nl.noisy].mean():.0%} of the "
            f"clean ones are never fitted in {nl.epochs} epochs; each of them has 0 events by the paper's definition "
            f"and {nl.epochs} under the convention of Toneva et al.")
