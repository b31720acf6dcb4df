"""Per-sample regularity measures computed from a training trace.

All measures take arrays laid out as ``(..., T, N)``: optional leading run
axes, then T epochs, then N samples. They return ``(..., N)`` arrays, one
value per run and sample; :func:`average_over_runs` averages the per-run
values over the run axes, as the paper does.

Usage::

    from regutils import measures
    correct = trace["correct"]                     # (R, T, N) bool
    cbtl = measures.cbtl(correct)                  # (R, N) int
    events = measures.forgetting_events(correct)   # (R, N) int
    x, y = measures.average_over_runs(cbtl), measures.average_over_runs(events)
    frame = measures.table(trace)                  # every measure of a trace, one row per sample and split

Definitions (acc^t is the eval-mode correctness at the end of epoch t, and
acc^0 = 0):

* CBTL / CBGL: sum over t of acc^t (training / test samples).
* Forgetting / mal-generalizing events: number of epochs t with
  acc^{t-1} = 1 and acc^t = 0.
* Learnability (Lee et al.): mean over epochs of the true-class probability.
* Data maps (Swayamdipta et al., 2020): mean and standard deviation over
  epochs of the true-class probability.
"""
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from . import density
from .validation import Int, check

NEVER_LEARNED_CONVENTIONS = ("zero", "max")


def as_correct_record(correct, name="correct"):
    """Return `correct` as a bool array of ndim >= 2 (bool or 0/1 input)."""
    correct = np.asarray(correct)
    if correct.ndim < 2:
        raise ValueError(
            f"{name} must have shape (..., T, N) with ndim >= 2, got shape {correct.shape}"
        )
    if correct.dtype == bool:
        return correct
    if not np.issubdtype(correct.dtype, np.integer):
        raise ValueError(f"{name} must be bool or 0/1 integers, got dtype {correct.dtype}")
    if ((correct != 0) & (correct != 1)).any():
        raise ValueError(f"{name} must contain only 0 and 1")
    return correct.astype(bool)


def _as_prob(prob):
    prob = np.asarray(prob)
    if prob.ndim < 2:
        raise ValueError(f"prob must have shape (..., T, N) with ndim >= 2, got shape {prob.shape}")
    return prob


def cbtl(correct):
    """Cumulative binary training loss (CBTL): number of epochs at which each sample is correct.

    Returns an int64 ``(..., N)`` array. Given a test record, the same sum is the cumulative
    binary generalizing loss (CBGL): the package has one function for both.
    """
    return np.count_nonzero(as_correct_record(correct), axis=-2)


def event_mask(correct):
    """Bool ``(..., T, N)`` mask, True at epoch t when acc^{t-1} = 1 and acc^t = 0.

    Epoch 1 is never an event because acc^0 = 0.
    """
    correct = as_correct_record(correct)
    mask = np.zeros(correct.shape, dtype=bool)
    # For booleans, prev > cur is exactly prev & ~cur, in a single pass.
    np.greater(correct[..., :-1, :], correct[..., 1:, :], out=mask[..., 1:, :])
    return mask


def event_epochs_of(correct_1d):
    """1-based epochs at which events happen, for one run and one sample.

    >>> event_epochs_of([0, 1, 1, 0, 1, 0])
    array([4, 6])
    """
    correct_1d = np.asarray(correct_1d)
    if correct_1d.ndim != 1:
        raise ValueError(f"correct_1d must be 1-D (T,), got shape {correct_1d.shape}")
    return np.flatnonzero(event_mask(correct_1d[:, None])[:, 0]) + 1


def forgetting_events(correct, never_learned="zero"):
    """Number of events (acc^{t-1} = 1, acc^t = 0) per sample, int64 ``(..., N)``.

    never_learned:
        "zero" (default, the paper's formal definition): a sample never
        classified correctly has 0 events.
        "max" (the convention of Toneva et al.): a never-learned sample gets
        T, the number of epochs, more than any reachable count (at most
        floor(T / 2), since acc^0 = 0), so it ranks as the most forgotten.
    On test samples this count is the number of mal-generalizing events; on the per-minibatch
    record (``batch_correct``) it is the statistic of Toneva et al. (``never_learned="max"`` to
    rank as they do).
    """
    if never_learned not in NEVER_LEARNED_CONVENTIONS:
        raise ValueError(
            f"never_learned must be one of {NEVER_LEARNED_CONVENTIONS}, got {never_learned!r}"
        )
    correct = as_correct_record(correct)
    events = np.count_nonzero(np.greater(correct[..., :-1, :], correct[..., 1:, :]), axis=-2)
    if never_learned == "max":
        never = ~correct.any(axis=-2)
        events[never] = correct.shape[-2]
    return events


def first_learned_epoch(correct):
    """First epoch t (1-based) with acc^t = 1, int64 ``(..., N)``.

    A sample never classified correctly gets T + 1 (one past the last epoch),
    so that it sorts after every learned sample.
    """
    correct = as_correct_record(correct)
    n_epochs = correct.shape[-2]
    first = np.argmax(correct, axis=-2) + 1
    first[~correct.any(axis=-2)] = n_epochs + 1
    return first


def learnability(prob):
    """Mean over epochs of the true-class probability (Lee et al.), float64 ``(..., N)``."""
    return np.mean(_as_prob(prob), axis=-2, dtype=np.float64)


def learnability_rank(values):
    """Ranks along the last axis, 1 = most learnable (highest value); ties get their average rank.

    Uses ``scipy.stats.rankdata(method="average")`` on the negated values.
    """
    values = np.asarray(values)
    return rankdata(-values, method="average", axis=-1)


def data_maps(prob):
    """Dataset-cartography coordinates (Swayamdipta et al., 2020).

    Returns ``(confidence, variability)``: mean and population standard
    deviation (ddof=0) over epochs of the true-class probability, each float64
    ``(..., N)``.
    """
    prob = _as_prob(prob)
    confidence = np.mean(prob, axis=-2, dtype=np.float64)
    variability = np.std(prob, axis=-2, dtype=np.float64)
    return confidence, variability


def average_over_runs(per_run):
    """Average a per-run ``(..., N)`` measure over all leading run axes -> float64 ``(N,)``."""
    per_run = np.asarray(per_run)
    if per_run.ndim == 0:
        raise ValueError("per_run must have a sample axis, got a scalar")
    return per_run.reshape(-1, per_run.shape[-1]).mean(axis=0, dtype=np.float64)


def differs_between_runs(per_run):
    """Per sample, whether its record differs between runs: ``(R, ..., N)`` -> bool ``(N,)``.

    ``per_run`` holds one record per run along the first axis: a per-run measure ``(R, N)``
    (CBTL, event counts) or a per-run mask ``(R, T, N)`` (:func:`event_mask`, where a
    difference means events at different epochs). A sample differs when any of its entries
    differs from run 1's.
    """
    per_run = np.asarray(per_run)
    if per_run.ndim < 2 or per_run.shape[0] < 2:
        raise ValueError(f"per_run must have shape (R, ..., N) with R >= 2 runs, got shape {per_run.shape}")
    differs = per_run != per_run[:1]
    return differs.reshape(-1, per_run.shape[-1]).any(axis=0)


@dataclass(frozen=True)
class Peak:
    """Where the mean number of events peaks along a measure (paper Fig 4).

    ``at``: the measure value with the highest mean events among the well-populated values;
    ``low``, ``high``: the smallest and largest well-populated values.
    """

    at: float
    low: float
    high: float

    @property
    def interior(self) -> bool:
        """The peak lies strictly between the ends: fewer events on both sides (an intermediate peak)."""
        return bool(self.low < self.at < self.high)


def events_peak(measure, events, min_group=5):
    """The value of ``measure`` at which the mean of ``events`` over its samples is highest.

    measure, events: ``(N,)``, e.g. run-averaged CBTL rounded to integers and run-averaged
    forgetting events; samples are grouped by the distinct values of ``measure``. Only values
    held by at least ``min_group`` samples count (all values when none is); among equal means
    the smallest value wins. Returns a :class:`Peak`.
    """
    measure = np.asarray(measure, dtype=np.float64)
    events = np.asarray(events, dtype=np.float64)
    if measure.ndim != 1 or measure.shape != events.shape or measure.size == 0:
        raise ValueError(f"measure and events must be 1-D of one non-zero length, "
                         f"got shapes {measure.shape} and {events.shape}")
    check("min_group", min_group, Int(1))
    values, group, counts = np.unique(measure, return_inverse=True, return_counts=True)
    mean = np.bincount(group.ravel(), weights=events) / counts
    big = counts >= min_group
    if not big.any():
        big[:] = True
    values, mean = values[big], mean[big]
    return Peak(float(values[np.argmax(mean)]), float(values.min()), float(values.max()))


def table(trace, per_run: bool = False, never_learned: str = "zero", radius=None) -> pd.DataFrame:
    """Every per-sample measure of a trace (or a stack of runs): one row per sample and split.

    The one entry point from a trace to its measures (chapters, ``regutils measures``, robustness).
    Columns: ``split`` (train, test), ``position`` (row in the trace), ``dataset_index``, ``label``,
    ``runs`` (or ``run`` with ``per_run``: a row per run), ``cbtl`` (train rows: CBTL) or ``cbgl``
    (test rows: CBGL, the same count on test samples), ``events`` (forgetting events on train rows,
    mal-generalizing events on test rows; ``never_learned`` as in :func:`forgetting_events`),
    ``first_learned``, ``learnability`` and ``density`` (:func:`regutils.density.density` of the
    (count, events) plane at ``radius``, None: the paper's default). Without ``per_run`` each
    measure is averaged over the runs, as the paper does.
    """
    frames = []
    for split in ("train", "test"):
        correct = getattr(trace, f"{split}_correct")
        prob = getattr(trace, f"{split}_prob")
        if correct.ndim == 2:
            correct, prob = correct[None], prob[None]
        name = "cbtl" if split == "train" else "cbgl"
        counts = cbtl(correct).astype(float)  # (R, N)
        events = forgetting_events(correct, never_learned=never_learned).astype(float)
        first = first_learned_epoch(correct).astype(float)
        learn = learnability(prob)
        base = {"split": split, "position": np.arange(correct.shape[-1]),
                "dataset_index": getattr(trace, f"index_{split}"), "label": getattr(trace, f"y_{split}")}
        if per_run:
            for r in range(correct.shape[0]):
                frames.append(pd.DataFrame({**base, "run": r, name: counts[r], "events": events[r],
                                            "first_learned": first[r], "learnability": learn[r],
                                            "density": density.density(counts[r], events[r], radius)}))
        else:
            c, e = counts.mean(0), events.mean(0)
            frames.append(pd.DataFrame({**base, "runs": correct.shape[0], name: c, "events": e,
                                        "first_learned": first.mean(0), "learnability": learn.mean(0),
                                        "density": density.density(c, e, radius)}))
    return pd.concat(frames, ignore_index=True)
