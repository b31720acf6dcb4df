"""Shallow vs deep: a fully trained shallow model against a deep model's correctness, epoch by epoch.

After Mangalam & Prabhu (2019): a shallow model M (e.g. logistic regression,
an SVM or a random forest from :func:`regutils.algorithms.sklearn_zoo`) is
fitted once on the flattened training images; its correctness on each test
sample is fixed. The deep model D's correctness changes with the epoch t. The
2x2 contingency of the two, per epoch, says whether D learns first what M can
learn.

Usage::

    from regutils import algorithms, contingency
    zoo = algorithms.sklearn_zoo(seed=0)
    m_ok = algorithms.per_sample_correct(zoo["logistic regression"], x_tr, y_tr, x_te, y_te)  # bool (N,)
    counts = contingency.contingency_counts(m_ok, trace.test_correct)  # one row per (run,) epoch
    table = contingency.ratios(counts)                                 # adds R_plus, R_minus, R_pm
    idx, wrong = contingency.shallow_only(m_ok, trace.test_correct[:, -1])
    contingency.first_learned_by_group(m_ok, trace.test_correct)  # {"M right": 1.4, "M wrong": 3.2}

Definitions, in the source's orientation (D in rows, M in columns; a = D
correct at the end of epoch t, b = M correct):

* ``T_ab(t) = #{i : D_i^t = a and M_i = b}``, so T01 counts the samples D
  gets wrong and M gets right, T10 those D gets right and M wrong;
  T00 + T01 + T10 + T11 = N at every epoch.
* ``R_plus(t) = T11 / (T11 + T01)``: D's accuracy on the samples M gets right
  ("shallow learnable").
* ``R_minus(t) = T10 / (T10 + T00)``: D's accuracy on the samples M gets wrong.
* ``R_pm(t) = R_plus(t) / R_minus(t)``: identically 1 when D's correctness is
  independent of M's; above 1 when D favours the shallow learnable samples.

R_plus or R_minus with an empty denominator (M right on every sample, or on
none) is nan; R_pm is inf when D gets none of the M-wrong samples right but some
M-right ones, nan when it gets none of either.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import measures

COUNTS = ("T00", "T01", "T10", "T11")


def _as_bool(a, name):
    a = np.asarray(a)
    if a.dtype != bool:
        if not np.issubdtype(a.dtype, np.integer) or ((a != 0) & (a != 1)).any():
            raise ValueError(f"{name} must be bool or 0/1 integers")
        a = a.astype(bool)
    return a


def _shallow_and_deep(shallow_correct, deep, deep_name, deep_ndims, deep_shape):
    """M's (N,) and D's correctness as bool arrays, D with one of ``deep_ndims`` and the same N."""
    m = _as_bool(shallow_correct, "shallow_correct")
    d = _as_bool(deep, deep_name)
    if m.ndim != 1:
        raise ValueError(f"shallow_correct must be 1-D (N,), got shape {m.shape}")
    if d.ndim not in deep_ndims or d.shape[-1] != m.shape[0]:
        raise ValueError(f"{deep_name} must have shape {deep_shape} with N = {m.shape[0]}, got {d.shape}")
    return m, d


def contingency_counts(shallow_correct, deep_correct) -> pd.DataFrame:
    """Contingency counts T00, T01, T10, T11 of D (first index) against M (second) at every epoch.

    shallow_correct: bool (N,). deep_correct: bool (T, N), or (R, T, N) for R
    runs of D. Returns one row per epoch (and run): columns ``run`` (only for
    3-D input), ``epoch`` (1..T) and T00, T01, T10, T11 (int64).
    """
    m, d = _shallow_and_deep(shallow_correct, deep_correct, "deep_correct", (2, 3), "(T, N) or (R, T, N)")
    t11 = np.count_nonzero(d & m, axis=-1)  # D right, M right
    t10 = np.count_nonzero(d & ~m, axis=-1)  # D right, M wrong
    t01 = np.count_nonzero(m) - t11  # D wrong, M right
    t00 = np.count_nonzero(~m) - t10  # D wrong, M wrong
    runs, epochs = (1, *d.shape[-2:-1]) if d.ndim == 2 else d.shape[:2]
    table = pd.DataFrame({"run": np.repeat(np.arange(runs), epochs), "epoch": np.tile(np.arange(1, epochs + 1), runs)})
    for name, counts in zip(COUNTS, (t00, t01, t10, t11)):
        table[name] = counts.ravel().astype(np.int64)
    return table if d.ndim == 3 else table.drop(columns="run")


def ratios(counts: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``counts`` with R_plus, R_minus and R_pm = R_plus / R_minus added.

    R_plus = T11 / (T11 + T01), R_minus = T10 / (T10 + T00) (nan for an empty
    denominator); R_pm is inf when R_minus = 0 < R_plus and nan when both are 0.
    """
    missing = set(COUNTS) - set(counts.columns)
    if missing:
        raise ValueError(f"counts lacks the columns {sorted(missing)}; pass the output of contingency_counts")
    out = counts.copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        out["R_plus"] = out["T11"] / (out["T11"] + out["T01"]).replace(0, np.nan)
        out["R_minus"] = out["T10"] / (out["T10"] + out["T00"]).replace(0, np.nan)
        out["R_pm"] = out["R_plus"] / out["R_minus"]
    return out


def shallow_only(shallow_correct, deep_final_correct):
    """Samples M gets right and D gets wrong at the end of training.

    deep_final_correct: bool (N,) for one run of D, or (R, N) for R runs.
    Returns ``(indices, wrong_fraction)``: the M-correct samples that D gets
    wrong in at least one run, and the fraction of runs in which it does,
    sorted by that fraction (highest first, ties by index).
    """
    m, d = _shallow_and_deep(shallow_correct, deep_final_correct, "deep_final_correct", (1, 2), "(N,) or (R, N)")
    wrong = (~d).reshape(-1, m.shape[0]).mean(axis=0)
    indices = np.flatnonzero(m & (wrong > 0))
    order = np.argsort(-wrong[indices], kind="stable")
    return indices[order], wrong[indices[order]]


def first_learned_by_group(shallow_correct, deep_correct) -> dict:
    """When D learns the samples M gets right, and when the others: mean first-learned epoch of each group.

    Only the samples D classifies correctly after its last epoch count (a sample D never learns has no
    learning epoch, and counting it would mix final difficulty into the order). deep_correct: bool (T, N)
    or (R, T, N); runs are pooled. Returns ``{"M right": mean, "M wrong": mean}`` (nan for an empty group).
    """
    m, d = _shallow_and_deep(shallow_correct, deep_correct, "deep_correct", (2, 3), "(T, N) or (R, T, N)")
    first = measures.first_learned_epoch(d).reshape(-1, m.shape[0])
    learned = d[..., -1, :].reshape(-1, m.shape[0])
    out = {}
    for name, group in (("M right", m), ("M wrong", ~m)):
        mask = learned & group
        out[name] = float(first[mask].mean()) if mask.any() else float("nan")
    return out
