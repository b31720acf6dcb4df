"""Correlations with bootstrap intervals, correlation matrices and ranking agreement.

Usage:
    c = pearson(cbtl, events)              # Corr(r=..., low=..., high=..., n=...)
    c = spearman(cbtl, learnability, n_boot=2000, ci=0.9)
    m = correlation_matrix(cbtl_runs)      # (R, R) between-run correlations of a (R, N) stack
    mean_off_diagonal(m)                   # average agreement between different runs
    ranking_agreement(acc_full, acc_subset)  # {"spearman": rho, "map": mean average precision}

Intervals are percentile bootstrap intervals: sample pairs (x_i, y_i) are resampled with
replacement, the correlation is recomputed on every resample (all at once, as a matrix), and the
(1 - ci)/2 and (1 + ci)/2 percentiles are reported. Spearman's rho is the Pearson correlation of
average ranks, so each resample is re-ranked (by counting, not sorting). Replicates are drawn
in chunks, so memory stays bounded for n = 50,000 samples.

Constant input: the correlation is undefined; `pearson` and `spearman` then emit a
RuntimeWarning and return nan for r, low and high.
"""

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.stats

# resampled values held in memory at once: bounds the bootstrap to ~64 MB per array
_BOOT_ELEMENTS = 8_000_000


@dataclass(frozen=True)
class Corr:
    """A correlation coefficient with its bootstrap interval [low, high] on n pairs."""
    r: float
    low: float
    high: float
    n: int


def _check_pair(x, y):
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 1 or y.ndim != 1:
        raise ValueError(f"x and y must be 1-D, got shapes {x.shape} and {y.shape}")
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length, got {x.size} and {y.size}")
    if x.size < 3:
        raise ValueError(f"need at least 3 pairs, got {x.size}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("x and y must be finite (no nan or inf)")
    return x, y


def _rowwise_pearson(a, b):
    """Pearson correlation of every row of a with the same row of b; nan for constant rows."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * b).sum(axis=1) / np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))


def _ranks_in_resamples(codes, n_unique):
    """Average ranks (ties averaged) of every row of `codes`, without sorting.

    codes: (B, n) indices into the sorted distinct values of the original sample. Counting how
    often each distinct value occurs in a row gives the ranks by a cumulative sum: O(B * n).
    """
    n_rows = codes.shape[0]
    flat = (np.arange(n_rows)[:, None] * n_unique + codes).ravel()
    counts = np.bincount(flat, minlength=n_rows * n_unique).reshape(n_rows, n_unique)
    below = np.cumsum(counts, axis=1) - counts
    average_rank = below + (counts + 1) / 2
    return np.take_along_axis(average_rank, codes, axis=1)


def _bootstrap(x, y, rank, n_boot, ci, seed):
    rng = np.random.default_rng(seed)
    if rank:
        x_unique, x_codes = np.unique(x, return_inverse=True)
        y_unique, y_codes = np.unique(y, return_inverse=True)
    rows = max(1, _BOOT_ELEMENTS // x.size)
    boot = np.empty(n_boot)
    for start in range(0, n_boot, rows):  # chunks of replicates bound memory for large n
        idx = rng.integers(0, x.size, size=(min(rows, n_boot - start), x.size))
        if rank:
            xb = _ranks_in_resamples(x_codes[idx], x_unique.size)
            yb = _ranks_in_resamples(y_codes[idx], y_unique.size)
        else:
            xb, yb = x[idx], y[idx]
        boot[start:start + idx.shape[0]] = _rowwise_pearson(xb, yb)
    # a resample can be constant (tiny n, heavy ties): drop those replicates
    boot = boot[np.isfinite(boot)]
    if boot.size == 0:
        return np.nan, np.nan
    low, high = np.percentile(boot, [50 * (1 - ci), 50 * (1 + ci)])
    return float(low), float(high)


def _correlate(x, y, rank, n_boot, ci, seed):
    x, y = _check_pair(x, y)
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci}")
    if int(n_boot) != n_boot or n_boot < 0:
        raise ValueError(f"n_boot must be a non-negative integer, got {n_boot}")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        warnings.warn("constant input: the correlation is undefined, returning nan",
                      RuntimeWarning, stacklevel=3)
        return Corr(np.nan, np.nan, np.nan, x.size)
    if rank:
        r = scipy.stats.spearmanr(x, y).statistic
    else:
        r = scipy.stats.pearsonr(x, y).statistic
    low, high = (np.nan, np.nan) if n_boot == 0 else _bootstrap(x, y, rank, int(n_boot), ci, seed)
    return Corr(float(r), low, high, x.size)


def pearson(x, y, n_boot=1000, ci=0.95, seed=0):
    """Pearson's r with a percentile bootstrap interval (n_boot=0: no interval, nan bounds)."""
    return _correlate(x, y, False, n_boot, ci, seed)


def spearman(x, y, n_boot=1000, ci=0.95, seed=0):
    """Spearman's rho with a percentile bootstrap interval (n_boot=0: no interval, nan bounds)."""
    return _correlate(x, y, True, n_boot, ci, seed)


def correlation_matrix(vectors, method="pearson"):
    """(K, K) correlations between the rows of a (K, N) stack (runs, architectures, optimizers).

    method: "pearson" or "spearman". A constant row gives nan in its row and column.
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 2 or vectors.shape[0] < 2:
        raise ValueError(f"vectors must have shape (K, N) with K >= 2, got {vectors.shape}")
    if method == "spearman":
        vectors = scipy.stats.rankdata(vectors, axis=1)
    elif method != "pearson":
        raise ValueError(f"method must be 'pearson' or 'spearman', got {method!r}")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.corrcoef(vectors)


def mean_off_diagonal(matrix):
    """Mean of the entries of a square matrix outside its diagonal (nan entries propagate)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 2:
        raise ValueError(f"matrix must be square with at least 2 rows, got shape {matrix.shape}")
    return float(matrix[~np.eye(matrix.shape[0], dtype=bool)].mean())


def ranking_agreement(scores_full, scores_subset, higher_is_better=True):
    """Agreement of two rankings of K algorithms (paper §4.2): full training set vs a subset.

    Returns {"spearman": rho, "map": mAP}.
    - spearman: Spearman's rho between the two score vectors.
    - map: mean average precision. Rank the algorithms by each score vector (best first; ties
      keep index order). For k = 1..K, the relevant set is the top-k algorithms of the full
      ranking, and the average precision of the subset ranking is
          AP_k = (1/k) * sum_{i=1..K} rel_k(i) * P_k(i),
      where rel_k(i) = 1 when the algorithm at subset position i is relevant and P_k(i) is the
      fraction of relevant algorithms among subset positions 1..i. mAP = mean of AP_k over
      k = 1..K. It is 1 exactly when the two rankings agree (AP_K is always 1).
    """
    full = np.asarray(scores_full, dtype=np.float64)
    subset = np.asarray(scores_subset, dtype=np.float64)
    if full.ndim != 1 or full.shape != subset.shape or full.size < 2:
        raise ValueError("scores_full and scores_subset must be 1-D of the same length >= 2, "
                         f"got shapes {full.shape} and {subset.shape}")
    sign = -1.0 if higher_is_better else 1.0
    full_order = np.argsort(sign * full, kind="stable")
    subset_order = np.argsort(sign * subset, kind="stable")
    full_rank = np.empty(full.size, dtype=np.int64)
    full_rank[full_order] = np.arange(full.size)

    k = np.arange(1, full.size + 1)
    relevant = full_rank[subset_order][None, :] < k[:, None]     # (K k-values, K positions)
    precision = np.cumsum(relevant, axis=1) / k[None, :]
    average_precision = (precision * relevant).sum(axis=1) / k
    return {"spearman": float(scipy.stats.spearmanr(full, subset).statistic),
            "map": float(average_precision.mean())}
