"""How stable a training recipe's per-sample measures are from run to run: what the default recipe is chosen by.

Usage::

    from regutils import stability
    runs = get_runs(config, runs=4)                       # one config, R runs stacked
    row = stability.summary(runs)                         # {"density_train": ..., "split_half_cbtl": ..., ...}
    stability.targets_met(row)                            # {"density_train": True, ...}
    stability.grows_with_runs(measures.cbtl(runs.train_correct))   # split-half against runs per half

The statistics of one config (R runs):

=================  ===========================================================================
density_train      mean over run pairs of the Pearson of the normalized density vectors, each
density_test       run in its own (CBTL, forgetting) / (CBGL, mal-generalizing) plane at its
                   default radius (the randomness chapter's Fig 6 computation)
split_half_*       the runs split into two disjoint halves of R // 2 runs (one run left out when
                   R is odd), Pearson of the two half-averages of a per-run measure, averaged over
                   ``n_splits`` seeded random splits: cbtl and events (train), cbgl and mg_events
record_*           Pearson of the epoch-level record (eval pass, ``train_correct``) against the
                   per-minibatch record (``batch_correct``), CBTL and forgetting events, every
                   run's samples pooled (the setup chapter's computation, §3.1)
test_acc           final-epoch test accuracy, mean over runs
seconds_per_run    training plus evaluation seconds of a run (trace meta), mean over runs
=================  ===========================================================================

The split-half statistic estimates the reliability of an average of R // 2 runs. The Spearman-Brown
formula predicts it for k runs per half from the single-run reliability r1 (the mean between-run
Pearson): ``k r1 / (1 + (k - 1) r1)``; :func:`grows_with_runs` shows it next to the observed values.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from . import density, measures, stats
from .validation import Int, check

# The targets of the default recipe (issue "Real images by default"): statistic -> smallest acceptable value.
TARGETS = {"density_train": 0.86, "density_test": 0.86, "split_half_cbtl": 0.95, "split_half_events": 0.85,
           "record_cbtl": 0.98, "record_events": 0.98}


def _as_runs(per_run, name="per_run"):
    per_run = np.asarray(per_run, dtype=np.float64)
    if per_run.ndim != 2 or per_run.shape[0] < 2:
        raise ValueError(f"{name} must have shape (R, N) with R >= 2 runs, got shape {per_run.shape}")
    return per_run


def between_run_density(x_runs, y_runs) -> float:
    """Mean over run pairs of the Pearson of the normalized densities, each run in its own plane.

    x_runs, y_runs: ``(R, N)`` per-run coordinates (CBTL and forgetting events, or CBGL and
    mal-generalizing events), R >= 2. Each run's density uses its own default radius.
    """
    x_runs, y_runs = _as_runs(x_runs, "x_runs"), _as_runs(y_runs, "y_runs")
    d_runs = density.density_per_run(x_runs, y_runs)
    normalized = np.stack([density.normalized_density(d) for d in d_runs])
    return stats.mean_off_diagonal(stats.correlation_matrix(normalized))


def half_splits(runs: int, per_half: int, n_splits: int = 20, seed: int = 0) -> np.ndarray:
    """``(n_splits, 2, per_half)`` run indices: seeded random pairs of disjoint halves of ``per_half`` runs."""
    if not isinstance(runs, int) or not isinstance(per_half, int) or not 1 <= per_half <= runs // 2:
        raise ValueError(f"per_half={per_half!r} must be an integer in 1..runs // 2 = {runs // 2}")
    check("n_splits", n_splits, Int(1))
    rng = np.random.default_rng(seed)
    orders = np.stack([rng.permutation(runs)[:2 * per_half] for _ in range(n_splits)])
    return orders.reshape(n_splits, 2, per_half)


def split_half(per_run, per_half: int | None = None, n_splits: int = 20, seed: int = 0) -> float:
    """Mean Pearson of the two half-averages of a per-run measure over random splits of the runs.

    per_run: ``(R, N)``, R >= 2. per_half: runs in each half (None: R // 2). A split whose
    half-average is constant has no correlation and is left out of the mean (nan when all are).
    """
    per_run = _as_runs(per_run)
    per_half = per_run.shape[0] // 2 if per_half is None else per_half
    splits = half_splits(per_run.shape[0], per_half, n_splits, seed)
    halves = per_run[splits].mean(axis=2)  # (S, 2, N)
    r = stats.rowwise_pearson(halves[:, 0], halves[:, 1])
    return float(np.nanmean(r)) if np.isfinite(r).any() else float("nan")


def spearman_brown(r1, k):
    """Reliability of an average of ``k`` runs from the single-run reliability ``r1``: k r1 / (1 + (k - 1) r1)."""
    r1, k = np.asarray(r1, dtype=np.float64), np.asarray(k, dtype=np.float64)
    return k * r1 / (1 + (k - 1) * r1)


def runs_needed(r1: float, target: float) -> int | float:
    """Total runs (two halves) whose split-half statistic Spearman-Brown predicts at ``target`` or above.

    Inverts :func:`spearman_brown` for the runs per half, k = target (1 - r1) / (r1 (1 - target)),
    and returns 2 ceil(k); inf when r1 <= 0 (no number of runs gets there).
    """
    if not 0 < target < 1:
        raise ValueError(f"target={target!r} must lie in (0, 1)")
    if not r1 > 0:
        return math.inf
    if r1 >= 1:
        return 2
    return 2 * max(1, math.ceil(target * (1 - r1) / (r1 * (1 - target)) - 1e-9))


def grows_with_runs(per_run, n_splits: int = 20, seed: int = 0) -> pd.DataFrame:
    """The split-half statistic as the halves grow: one row per runs-per-half k = 1 .. R // 2.

    Columns: ``per_half``, ``runs`` (2k), ``observed`` (:func:`split_half` with k runs per half),
    ``spearman_brown`` (predicted from the observed k = 1 value, the single-run reliability).
    """
    per_run = _as_runs(per_run)
    ks = np.arange(1, per_run.shape[0] // 2 + 1)
    observed = np.array([split_half(per_run, int(k), n_splits, seed) for k in ks])
    return pd.DataFrame({"per_half": ks, "runs": 2 * ks, "observed": observed,
                         "spearman_brown": spearman_brown(observed[0], ks)})


def record_agreement(batch_correct, train_correct) -> dict:
    """Pearson of the per-minibatch against the epoch-level record, every run's samples pooled.

    batch_correct, train_correct: bool ``(..., T, N)``. Returns ``{"cbtl": r, "events": r}``
    (CBTL and forgetting events of each record; on the per-minibatch one, the count of Toneva et al.).
    """
    batch_correct, train_correct = np.asarray(batch_correct), np.asarray(train_correct)
    if batch_correct.shape != train_correct.shape:
        raise ValueError(f"batch_correct and train_correct must have one shape, got {batch_correct.shape} "
                         f"and {train_correct.shape}")
    pairs = {"cbtl": (measures.cbtl(train_correct), measures.cbtl(batch_correct)),
             "events": (measures.forgetting_events(train_correct), measures.forgetting_events(batch_correct))}
    return {name: stats.pearson(a.ravel(), b.ravel(), n_boot=0).r for name, (a, b) in pairs.items()}


def seconds_per_run(trace) -> float:
    """Mean over runs of the training plus evaluation seconds recorded in each run's meta."""
    return float(np.mean([m["train_seconds"] + m["eval_seconds"] for m in trace.run_metas()]))


def summary(trace, n_splits: int = 20, seed: int = 0) -> dict:
    """The stability statistics of one config from its stacked trace of R >= 2 runs (module docstring).

    Also returns ``runs``, ``epochs``, ``single_run_cbtl`` / ``single_run_events`` (mean between-run
    Pearson of the per-run measures, the r1 of Spearman-Brown) and ``runs_for_cbtl`` /
    ``runs_for_events``: the runs Spearman-Brown predicts for their targets.
    """
    if trace.runs < 2:
        raise ValueError(f"summary needs a stacked trace of at least 2 runs, got {trace.runs}")
    per_run = {"cbtl": measures.cbtl(trace.train_correct), "events": measures.forgetting_events(trace.train_correct),
               "cbgl": measures.cbtl(trace.test_correct), "mg_events": measures.forgetting_events(trace.test_correct)}
    row = {"runs": trace.runs, "epochs": trace.epochs,
           "test_acc": float(trace.test_correct[:, -1].mean()),
           "density_train": between_run_density(per_run["cbtl"], per_run["events"]),
           "density_test": between_run_density(per_run["cbgl"], per_run["mg_events"])}
    for name, values in per_run.items():
        row[f"split_half_{name}"] = split_half(values, n_splits=n_splits, seed=seed)
    row.update({f"record_{k}": v for k, v in record_agreement(trace.batch_correct, trace.train_correct).items()})
    for name in ("cbtl", "events"):
        r1 = stats.mean_off_diagonal(stats.correlation_matrix(per_run[name]))
        row[f"single_run_{name}"] = r1
        row[f"runs_for_{name}"] = runs_needed(r1, TARGETS[f"split_half_{name}"])
    row["seconds_per_run"] = seconds_per_run(trace)
    return row


def targets_met(row: dict) -> dict:
    """Whether each statistic of :data:`TARGETS` in ``row`` reaches its target (nan: False)."""
    return {name: bool(row[name] >= target) for name, target in TARGETS.items()}


def smallest_between_configs(traces: dict) -> float:
    """Smallest Pearson, over pairs of configs (architectures: Table 2), of the normalized density
    of the run-averaged training measures, each config in its own plane at its default radius.

    traces: ``{name: trace}`` of at least two configs on the same training samples.
    """
    if len(traces) < 2:
        raise ValueError(f"traces must hold at least 2 configs, got {len(traces)}")
    rows = []
    for trace in traces.values():
        train = measures.table(trace).query("split == 'train'")
        rows.append(density.normalized_density(train.density.to_numpy()))
    matrix = stats.correlation_matrix(np.stack(rows))
    return float(matrix[~np.eye(len(rows), dtype=bool)].min())
