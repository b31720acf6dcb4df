"""How fast a network fits its training set, and models taken part-way through training.

    from regutils import fitting
    fitting.epochs_to_fit(trace.history["train_acc"], threshold=0.99)   # (R,) first epoch at >= 99 %
    fitting.peak_epoch(trace.history["test_acc"])     # (R,) epoch of the best validation accuracy
    fitting.drop_after_peak(trace.history["test_acc"])  # (R,) best minus final validation accuracy
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
