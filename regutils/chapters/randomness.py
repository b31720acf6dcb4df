"""Chapter 3.3.1, training randomness: how much of a sample's regularity survives a change of seed.

    from regutils.chapters import randomness
    records = randomness.per_run(runs)                     # runs: a stacked Trace of R >= 2 runs
    randomness.plot_over_runs(records["test"], data.images_test, runs.y_test, data.classes)   # Fig. 5
    variation = randomness.variation(records)              # shares of samples whose record changes
    agreement = randomness.density_agreement(records)      # Fig. 6: between-run density correlations
    randomness.plot_density_agreement(agreement)
    measure_agreement = randomness.measure_agreement(records)
    checks = randomness.recipe_checks(records, runs)       # split-half and record agreement
    card = randomness.scorecard(agreement, variation, measure_agreement, checks, s)

The paper (§3.3.1) finds that the epochs and number of a sample's events and its CBTL / CBGL vary
between repeated runs (Fig. 5), yet the normalized density of the samples in each run's own
(CBTL, forgetting) plane agrees across runs: mean Pearson 0.8634 on the training set and 0.8733
on the test set over 10 runs of ResNet-110 on CIFAR-10 (Fig. 6).
"""
from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np

from .. import density, measures, picks, plots, stability, stats
from ..claims import above, at_least, within
from ..report import Scorecard

PAPER = {"train": 0.8634, "test": 0.8733}
# split -> (name of the count of correct epochs, name of the events)
NAMES = {"train": ("CBTL", "forgetting events"), "test": ("CBGL", "mal-generalizing events")}


@dataclass(frozen=True)
class SplitRecords:
    """One split's records over repeated runs.

    correct : ndarray of bool, shape (runs, epochs, samples)
        Whether each sample is classified correctly at the end of each epoch of each run.
    measure, events : ndarray of int, shape (runs, samples)
        CBTL (CBGL on the test split) and forgetting (mal-generalizing) events of each run.
    """

    split: str
    correct: np.ndarray
    measure: np.ndarray
    events: np.ndarray

    @property
    def measure_name(self) -> str:
        return NAMES[self.split][0]

    @property
    def event_name(self) -> str:
        return NAMES[self.split][1]

    @property
    def runs(self) -> int:
        return self.correct.shape[0]


def per_run(runs) -> dict[str, SplitRecords]:
    """Each split's per-run measures: {"train": ..., "test": ...}, each run in its own plane.

    ``runs.train_correct`` and ``runs.test_correct`` have shape (runs, epochs, samples), runs >= 2.
    """
    if runs.train_correct.shape[0] < 2:
        raise ValueError(f"runs={runs.train_correct.shape[0]}: comparing runs needs at least 2")
    records = {}
    for split in ("train", "test"):
        correct = np.asarray(getattr(runs, f"{split}_correct"))
        records[split] = SplitRecords(split, correct, measures.cbtl(correct), measures.forgetting_events(correct))
    return records


def pick_three(x, y, seed: int = 0) -> tuple[dict[str, int], np.ndarray]:
    """Regular, in-between and irregular samples of the plane (x, y), by their density.

    x, y : ndarray, shape (samples,)
        Run-averaged measure and events.

    Regular is the densest sample never forgotten; in between and irregular are the samples of
    median and lowest density among those forgotten at least once (among all samples where a
    group is empty, or holds a single sample for the two picks). Returns ({name: index}, the
    density of every sample at the paper's default radius, shape (samples,)).
    """
    d = density.density(x, y)
    forgotten = np.asarray(y) > 0
    regular = picks.pick_by_quantile(d, [1.0], among=~forgotten if (~forgotten).any() else None, seed=seed)[0]
    middle, irregular = picks.pick_by_quantile(d, [0.5, 0.0], among=forgotten if forgotten.sum() >= 2 else None,
                                               seed=seed)
    return {"regular": int(regular), "in between": int(middle), "irregular": int(irregular)}, d


def plot_over_runs(records: SplitRecords, images, labels, classes, seed: int = 0) -> plt.Figure:
    """Fig. 5 for one split: three samples' images, their records over the runs, their cumulative events.

    images : ndarray, shape (samples, H, W[, C]); labels : ndarray, shape (samples,); classes : class names.
    """
    plots.use_style()
    x, y = measures.average_over_runs(records.measure), measures.average_over_runs(records.events)
    chosen, d = pick_three(x, y, seed=seed)
    epochs = records.correct.shape[1]
    fig, axes = plt.subplots(3, 3, figsize=(plots.PAGE_WIDTH_IN, 7.5), gridspec_kw={"height_ratios": [1.4, 1.4, 1.4]})
    for col, (name, i) in enumerate(chosen.items()):
        record = records.correct[:, :, i]  # (runs, epochs)
        m_runs, e_runs = records.measure[:, i], records.events[:, i]
        plots.image_grid(axes[0, col], images[[i]])
        axes[0, col].set_title(f"{name}: '{classes[labels[i]]}'\ndensity {d[i]:.3g}\n"
                               f"{records.measure_name} {m_runs.min()}-{m_runs.max()} over runs\n"
                               f"{records.event_name} {e_runs.min()}-{e_runs.max()}", fontsize=plots.SMALL_PT)
        plots.run_raster(axes[1, col], record)
        cumulative = np.cumsum(measures.event_mask(record[:, :, None])[:, :, 0], axis=1)  # (runs, epochs)
        plots.curve_with_band(axes[2, col], np.arange(1, epochs + 1), cumulative.mean(0), cumulative.min(0),
                              cumulative.max(0), color=plots.COLORS[records.split],
                              label="mean, min-max over runs")
        axes[2, col].set_xlabel("epoch")
        axes[2, col].set_xlim(0.5, epochs + 0.5)
    axes[2, 0].set_ylabel(f"cumulative\n{records.event_name}")
    axes[1, 0].legend(loc="lower right", frameon=True)
    axes[2, 0].legend(loc="upper left")
    fig.suptitle(f"{'test' if records.split == 'test' else 'training'} samples over {records.runs} runs")
    fig.tight_layout()
    return fig


def _share(differs, among) -> float:
    """Fraction of the samples in ``among`` for which ``differs`` holds; nan when ``among`` is empty."""
    return float(differs[among].mean()) if among.any() else np.nan


def variation(records: dict[str, SplitRecords]) -> dict[str, dict[str, float]]:
    """How often a sample's record changes with the seed, per split (test first, as in Fig. 5).

    Per split: "with events", the share of the samples with an event in some run; among those,
    "event epochs" and "event count", the shares whose events fall at different epochs in
    different runs or differ in number; "measure", the share of all samples whose CBTL / CBGL
    differs between runs. Shares are nan where no sample has an event.
    """
    out = {}
    for split in ("test", "train"):
        r = records[split]
        mask = measures.event_mask(r.correct)  # (runs, epochs, samples)
        with_events = mask.any(axis=(0, 1))
        out[split] = {"with events": float(with_events.mean()),
                      "event epochs": _share(measures.differs_between_runs(mask), with_events),
                      "event count": _share(measures.differs_between_runs(r.events), with_events),
                      "measure": float(measures.differs_between_runs(r.measure).mean())}
    return out


def describe_variation(shares: dict[str, dict[str, float]]) -> str:
    """One line per split for :func:`variation`'s shares."""
    return "\n".join(
        f"{split}: {v['with events']:.1%} of the samples have an event in some run; among them the epochs of the "
        f"events differ between runs for {v['event epochs']:.1%} and their number for {v['event count']:.1%}; "
        f"{NAMES[split][0]} differs between runs for {v['measure']:.1%} of all samples"
        for split, v in shares.items())


@dataclass(frozen=True)
class DensityAgreement:
    """Between-run agreement of one split's normalized density (Fig. 6).

    matrix : ndarray, shape (runs, runs)
        Pearson correlation between the normalized density vectors of every pair of runs.
    mean : stats.Corr
        Mean over the off-diagonal pairs, with a bootstrap interval over samples.
    low, high : float
        Smallest and largest off-diagonal correlation.
    """

    split: str
    matrix: np.ndarray
    mean: stats.Corr
    low: float
    high: float


def density_agreement(records: dict[str, SplitRecords], n_boot: int = 1000, seed: int = 0
                      ) -> dict[str, DensityAgreement]:
    """Fig. 6: per split, the correlations of the normalized density between runs.

    Each run's density is taken in its own (measure, events) plane at its own default radius,
    then divided by its sum, as the paper does.
    """
    out = {}
    for split, r in records.items():
        d_runs = density.density_per_run(r.measure, r.events)  # (runs, samples)
        normalized = np.stack([density.normalized_density(row) for row in d_runs])
        matrix = stats.correlation_matrix(normalized)
        off = matrix[~np.eye(len(matrix), dtype=bool)]
        out[split] = DensityAgreement(split, matrix, stats.mean_off_diagonal_interval(normalized, n_boot=n_boot,
                                                                                      seed=seed),
                                      float(off.min()), float(off.max()))
    return out


def plot_density_agreement(agreement: dict[str, DensityAgreement]) -> plt.Figure:
    """Heatmaps of the between-run correlation matrices, one panel per split (training left)."""
    plots.use_style()
    fig, axes = plt.subplots(1, len(agreement), figsize=(plots.PAGE_WIDTH_IN, 4.2), squeeze=False)
    for ax, a in zip(axes[0], agreement.values()):
        runs = len(a.matrix)
        image = plots.correlation_heatmap(ax, a.matrix, [f"run {r + 1}" for r in range(runs)], annotate=runs <= 10,
                                          vmin=min(0.0, a.low))
        plots.add_colorbar(ax, image, label="Pearson")
        ax.set_title(f"{a.split}: mean off-diagonal {a.mean.r:.4f}\n[{a.mean.low:.4f}, {a.mean.high:.4f}]")
    fig.tight_layout()
    return fig


def measure_agreement(records: dict[str, SplitRecords], n_boot: int = 1000, seed: int = 0
                      ) -> dict[tuple[str, str], stats.Corr]:
    """Mean between-run Pearson of the per-run measures: {(split, "measure" or "events"): Corr}."""
    return {(split, name): stats.mean_off_diagonal_interval(values, n_boot=n_boot, seed=seed)
            for split, r in records.items() for name, values in (("measure", r.measure), ("events", r.events))}


def first_epoch_accuracy(runs) -> float:
    """Training accuracy after the first epoch, mean over runs (``runs.history["train_acc"]``: (runs, epochs))."""
    return float(np.asarray(runs.history["train_acc"])[:, 0].mean())


def describe_measure_agreement(agreement: dict[tuple[str, str], stats.Corr], runs) -> str:
    """One line per split and measure of :func:`measure_agreement`, and the epoch-1 training accuracy."""
    lines = [f"{split}: mean between-run Pearson of per-run {NAMES[split][name == 'events']}: "
             f"{c.r:.4f} [{c.low:.4f}, {c.high:.4f}]" for (split, name), c in agreement.items()]
    return "\n".join(lines + [f"epoch-1 training accuracy, mean over runs: {first_epoch_accuracy(runs):.4f}"])


@dataclass(frozen=True)
class RecipeChecks:
    """The default recipe's stability statistics on the training set.

    split_half : {"cbtl": r, "events": r}
        Mean Pearson of the two half-averages of the per-run measure over random splits of the runs.
    record : {"cbtl": r, "events": r}
        Pearson of the measure from the per-minibatch record against the end-of-epoch record.
    per_half : int
        Runs in each half.
    """

    split_half: dict
    record: dict
    per_half: int


def recipe_checks(records: dict[str, SplitRecords], runs, seed: int = 0) -> RecipeChecks:
    """Split-half reliability of the run-averaged training measures and agreement of the two records.

    ``runs.batch_correct`` and ``runs.train_correct``: shape (runs, epochs, samples).
    """
    train = records["train"]
    return RecipeChecks({"cbtl": stability.split_half(train.measure, seed=seed),
                         "events": stability.split_half(train.events, seed=seed)},
                        stability.record_agreement(runs.batch_correct, runs.train_correct), train.runs // 2)


def describe_recipe_checks(checks: RecipeChecks) -> str:
    names = {"cbtl": "CBTL", "events": "forgetting events"}
    return "\n".join(
        [f"split-half Pearson of run-averaged {names[k]}, {checks.per_half} run(s) per half: {r:.4f}"
         for k, r in checks.split_half.items()]
        + [f"Pearson of {names[k]}, per-minibatch vs end-of-epoch record: {r:.4f}" for k, r in checks.record.items()])


def summary(agreement: dict[str, DensityAgreement], measure_agreement: dict, runs, s) -> str:
    """The chapter's closing paragraph: the measured agreement next to the paper's, under settings ``s``."""
    train, test = agreement["train"].mean, agreement["test"].mean
    return (f"Across {agreement['train'].matrix.shape[0]} seeds, the normalized densities correlate on average at "
            f"{train.r:.4f} [{train.low:.4f}, {train.high:.4f}] on the training set and at {test.r:.4f} "
            f"[{test.low:.4f}, {test.high:.4f}] on the test set; the paper reports {PAPER['train']} and "
            f"{PAPER['test']}. The per-run CBTL themselves correlate at {measure_agreement['train', 'measure'].r:.2f} "
            f"between runs and the forgetting counts at {measure_agreement['train', 'events'].r:.2f}, with "
            f"{first_epoch_accuracy(runs):.0%} of the training samples correct after the first epoch. "
            f"The paper measures this on CIFAR-10 with ResNet-110 and 200 epochs; here {s.describe()}.")


def scorecard(agreement: dict[str, DensityAgreement], shares: dict[str, dict[str, float]],
              measure_agreement: dict, checks: RecipeChecks, s) -> Scorecard:
    """The paper's claims of §3.3.1, and the default recipe's targets, as tested verdicts.

    The between-run density correlation must lie within ± 0.05 of the paper's; the claim that
    single samples' records vary is reproduced by any variation (a share above 0); the spread
    over pairs and the agreement of the measures themselves are context; the recipe targets are
    :data:`regutils.stability.TARGETS`.
    """
    train, test = agreement["train"], agreement["test"]
    card = Scorecard("randomness", setting=s.describe())
    card.add("mean between-run Pearson of normalized density, training set (Fig 6)", paper=PAPER["train"],
             value=train.mean, test=within(PAPER["train"], 0.05))
    card.add("mean between-run Pearson of normalized density, test set (Fig 6)", paper=PAPER["test"],
             value=test.mean, test=within(PAPER["test"], 0.05))
    for split in ("test", "train"):
        measure, events = NAMES[split]
        card.add(f"{split} samples with {events} whose event epochs differ between runs, fraction (Fig 5)",
                 paper="vary", value=shares[split]["event epochs"], test=above(0))
        card.add(f"{split} samples with {events} whose number of events differs between runs, fraction (Fig 5)",
                 paper="vary", value=shares[split]["event count"], test=above(0))
        card.add(f"{split} samples whose {measure} differs between runs, fraction (Fig 5)", paper="vary",
                 value=shares[split]["measure"], test=above(0))
    card.add("min - max between-run Pearson of normalized density, training set", paper="n/a",
             value=f"{train.low:.4f} - {train.high:.4f}")
    card.add("min - max between-run Pearson of normalized density, test set", paper="n/a",
             value=f"{test.low:.4f} - {test.high:.4f}")
    card.add("mean between-run Pearson of per-run CBTL", paper="not reported",
             value=measure_agreement["train", "measure"])
    card.add("mean between-run Pearson of per-run forgetting events", paper="not reported",
             value=measure_agreement["train", "events"])
    targets = stability.TARGETS
    rows = [("between-run Pearson of normalized density, training set", "density_train", train.mean),
            ("between-run Pearson of normalized density, test set", "density_test", test.mean),
            ("split-half Pearson of run-averaged CBTL", "split_half_cbtl", checks.split_half["cbtl"]),
            ("split-half Pearson of run-averaged forgetting events", "split_half_events", checks.split_half["events"]),
            ("Pearson of CBTL, per-minibatch vs end-of-epoch record", "record_cbtl", checks.record["cbtl"]),
            ("Pearson of forgetting events, per-minibatch vs end-of-epoch record", "record_events",
             checks.record["events"])]
    for quantity, key, value in rows:
        card.add(f"recipe target: {quantity}", paper=f"≥ {targets[key]}", value=value, test=at_least(targets[key]))
    return card
