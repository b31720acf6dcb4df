"""How fast a network fits its training set, and models taken part-way through training.

    from regutils import fitting
    fitting.epochs_to_fit(trace.history["train_acc"], threshold=0.99)   # (R,) first epoch at >= 99 %
    fitting.peak_epoch(trace.history["test_acc"])     # (R,) epoch of the best validation accuracy
    fitting.drop_after_peak(trace.history["test_acc"])  # (R,) best minus final validation accuracy
    fitting.fit_time_grows(needed, epochs=60)      # True | False | None: more epochs to fit the larger sets
    fitting.fit_time_grows_faster(needed_random, needed_real, epochs=60)   # ... more than the other's
    fitting.peak_before_fit(peak, fitted, epochs=60)   # the validation peak comes before the fit
    fitting.difficulty_dispersion(trace.train_correct[:, 0, :])  # 1: samples equally hard after epoch 1
    early = fitting.config_at_epoch(config, 5)     # trains exactly the first 5 epochs of ``config``
    model = regutils.train.trained_model(early)    # the model after epoch 5

``config_at_epoch`` pins the learning-rate milestones of the full schedule, so
a run of the shorter config (same seed) repeats the first epochs of the full
run step for step: on the CPU, where training is deterministic, its final
model is the full run's model at that epoch. (The cosine schedule depends on
the number of epochs and cannot be truncated this way.)
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .validation import Int, check


def epochs_to_fit(train_acc, threshold: float = 1.0) -> np.ndarray:
    """First epoch (1-based) at which the training accuracy reaches ``threshold``, int64 ``(...)``.

    ``train_acc`` is ``(..., T)``: accuracy per epoch, optional leading run
    axes. A run that never reaches the threshold gets T + 1, one past the last
    epoch, as :func:`regutils.measures.first_learned_epoch` does for samples.
    """
    train_acc = _check_curve(train_acc, "train_acc")
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold={threshold} must lie in (0, 1]")
    reached = train_acc >= threshold - 1e-12  # accuracies are ratios of integers; allow rounding
    first = np.argmax(reached, axis=-1) + 1
    return np.where(reached.any(axis=-1), first, train_acc.shape[-1] + 1).astype(np.int64)


def _check_curve(acc, name: str) -> np.ndarray:
    acc = np.asarray(acc, dtype=np.float64)
    if acc.ndim < 1 or acc.shape[-1] == 0:
        raise ValueError(f"{name} must have shape (..., T) with T >= 1, got shape {acc.shape}")
    return acc


def peak_epoch(acc) -> np.ndarray:
    """First epoch (1-based) at which ``acc`` (``(..., T)``, per epoch) is highest, int64 ``(...)``.

    With validation accuracy: where early stopping would stop. Ties go to the
    earliest epoch.
    """
    return (np.argmax(_check_curve(acc, "acc"), axis=-1) + 1).astype(np.int64)


def drop_after_peak(acc) -> np.ndarray:
    """Best minus final value of ``acc`` (``(..., T)``, per epoch), float64 ``(...)``, never negative.

    With validation accuracy: what training past the peak costs.
    """
    acc = _check_curve(acc, "acc")
    return acc.max(axis=-1) - acc[..., -1]


def _check_times(times, epochs: int, name: str) -> np.ndarray:
    check("epochs", epochs, Int(1))
    times = np.asarray(times)
    if times.ndim != 1 or times.size < 2 or not np.issubdtype(times.dtype, np.integer):
        raise ValueError(f"{name} must be an integer array of shape (S,) with S >= 2 sizes, got {times!r}")
    if times.min() < 1 or times.max() > epochs + 1:
        raise ValueError(f"{name} must lie in 1..{epochs + 1} (epochs + 1: not reached), got {times.tolist()}")
    return times


def growth_bounds(times, epochs: int) -> tuple[float, float]:
    """Bounds on how many more epochs the largest training set needs to fit than the smallest.

    ``times`` is int ``(S,)``: :func:`epochs_to_fit` of one run per training-set
    size, sizes increasing; ``epochs + 1`` marks a run that never reached the
    threshold, whose time to fit is then only known to exceed ``epochs``.
    Returns ``(low, high)``: equal when both ends were reached, open (infinite)
    on the side a censored end leaves unknown.
    """
    times = _check_times(times, epochs, "times")
    first, last = int(times[0]), int(times[-1])
    never = epochs + 1
    if first < never and last < never:
        return float(last - first), float(last - first)
    if first < never:  # the largest set was not fitted: at least never - first more epochs
        return float(never - first), np.inf
    if last < never:  # the smallest was not fitted but the largest was: a negative growth
        return -np.inf, float(last - never)
    return -np.inf, np.inf


def fit_time_grows(times, epochs: int) -> bool | None:
    """Whether the largest training set takes more epochs to fit than the smallest.

    ``times`` as in :func:`growth_bounds`. True when even the lowest possible
    growth is positive, False when even the highest is not, None when a run
    that never reached the threshold leaves it open.
    """
    low, high = growth_bounds(times, epochs)
    return True if low > 0 else False if high <= 0 else None


def fit_time_grows_faster(times, reference, epochs: int) -> bool | None:
    """Whether the time to fit grows more with the training-set size than ``reference``'s does.

    Both int ``(S,)`` over the same increasing sizes, as in
    :func:`growth_bounds` (runs of ``epochs`` epochs). True when the lowest
    possible growth of ``times`` exceeds the highest of ``reference``, False
    when its highest does not exceed the lowest of ``reference``, None when
    runs that never reached the threshold leave it open.
    """
    if np.shape(times) != np.shape(reference):
        raise ValueError(f"times and reference must cover the same sizes, got shapes {np.shape(times)} "
                         f"and {np.shape(reference)}")
    low, high = growth_bounds(times, epochs)
    ref_low, ref_high = growth_bounds(reference, epochs)
    return True if low > ref_high else False if high <= ref_low else None


def peak_before_fit(peak: int, fitted: int, epochs: int) -> bool | None:
    """Whether the validation accuracy peaks strictly before the training set is fitted.

    ``peak`` from :func:`peak_epoch`, ``fitted`` from :func:`epochs_to_fit`
    (``epochs + 1``: never fitted), both of one run of ``epochs`` epochs. None
    when the training set was never fitted: the run never reached the fit the
    peak should precede.
    """
    _check_times(np.array([peak, fitted]), epochs, "(peak, fitted)")
    if peak > epochs:
        raise ValueError(f"peak={peak} must lie in 1..{epochs}")
    return None if fitted > epochs else bool(peak < fitted)


def difficulty_dispersion(correct) -> float:
    """How much more the samples' misclassification rates vary over runs than equally hard samples' would.

    ``correct`` is bool ``(R, N)``: whether sample n is right in run r (for
    example after the first epoch of R seeded runs). The rate of sample n is
    ``m_n = 1 - mean_r correct[r, n]``. Were every sample wrong with the same
    probability, independently across runs, the variance of the rates over
    the samples would be the binomial ``mbar (1 - mbar) / R``; the function
    returns the observed variance (``ddof=1``) over that: about 1 for
    equally hard samples, up to about R when each sample is right in all runs
    or in none. NaN for a single run (a rate is then 0 or 1 whatever the
    samples) or when every sample is right everywhere or wrong everywhere.
    """
    correct = np.asarray(correct)
    if correct.ndim != 2 or correct.shape[1] < 2 or correct.dtype != bool:
        raise ValueError(f"correct must be a bool array of shape (R, N) with N >= 2, got "
                         f"{correct.dtype} of shape {correct.shape}")
    runs = correct.shape[0]
    rates = 1 - correct.mean(axis=0)
    mean = rates.mean()
    if runs < 2 or mean in (0.0, 1.0):
        return float("nan")
    return float(rates.var(ddof=1) / (mean * (1 - mean) / runs))


def config_at_epoch(config, epoch: int):
    """The RunConfig whose run is the first ``epoch`` epochs of ``config``'s run (itself at the last epoch)."""
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 1 <= epoch <= config.epochs:
        raise ValueError(f"epoch={epoch!r} must be an integer in 1..{config.epochs}")
    if epoch == config.epochs:
        return config
    if config.schedule in ("cosine", "onecycle"):
        raise ValueError(f"schedule={config.schedule!r} depends on the number of epochs; "
                         "only multistep and constant truncate")
    return replace(config, epochs=epoch, milestones=tuple(config.lr_milestones))
