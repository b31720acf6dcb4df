"""Correlations with bootstrap intervals, correlation matrices and ranking agreement.

Usage:
    c = pearson(cbtl, events)              # Corr(r=..., low=..., high=..., n=...)
    c = spearman(cbtl, learnability, n_boot=2000, ci=0.9)
    m = correlation_matrix(cbtl_runs)      # (R, R) between-run correlations of a (R, N) stack
    mean_off_diagonal(m)                   # average agreement between different runs
    pairwise_measure_correlations({"mlp": {"cbtl": a, ...}, "lenet": {"cbtl": b, ...}})  # pairs x measures
    ranking_agreement(acc_full, acc_subset)  # {"spearman": rho, "map": mean average precision}
    histogram_correlation(train_events, test_events)  # Pearson of the two normalized histograms

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
import pandas as pd
import scipy.stats

from .validation import Int, Real, check

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


def rowwise_pearson(a, b):
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


def _check_interval(n_boot, ci) -> int:
    check("ci", ci, Real(0, 1, low_open=True, high_open=True))
    return int(check("n_boot", n_boot, Int(0)))


def _percentile_interval(replicates, n_boot: int, elements: int, ci: float, seed: int) -> tuple[float, float]:
    """Percentile interval of a bootstrap statistic: ``replicates(rng, size)`` gives ``size`` replicates.

    Replicates are drawn in chunks of at most ``_BOOT_ELEMENTS // elements`` (``elements``: the
    array size one replicate needs), so memory stays bounded for large n. Non-finite replicates
    (a constant resample: tiny n, heavy ties) are dropped; none left gives (nan, nan).
    """
    rng = np.random.default_rng(seed)
    rows = max(1, _BOOT_ELEMENTS // elements)
    boot = np.concatenate([replicates(rng, min(rows, n_boot - start)) for start in range(0, n_boot, rows)])
    boot = boot[np.isfinite(boot)]
    if boot.size == 0:
        return np.nan, np.nan
    low, high = np.percentile(boot, [50 * (1 - ci), 50 * (1 + ci)])
    return float(low), float(high)


def _bootstrap(x, y, rank, n_boot, ci, seed):
    if rank:
        x_unique, x_codes = np.unique(x, return_inverse=True)
        y_unique, y_codes = np.unique(y, return_inverse=True)

    def replicates(rng, size):
        idx = rng.integers(0, x.size, size=(size, x.size))
        if rank:
            return rowwise_pearson(_ranks_in_resamples(x_codes[idx], x_unique.size),
                                   _ranks_in_resamples(y_codes[idx], y_unique.size))
        return rowwise_pearson(x[idx], y[idx])

    return _percentile_interval(replicates, n_boot, x.size, ci, seed)


def _correlate(x, y, rank, n_boot, ci, seed):
    x, y = _check_pair(x, y)
    n_boot = _check_interval(n_boot, ci)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        warnings.warn("constant input: the correlation is undefined, returning nan",
                      RuntimeWarning, stacklevel=3)
        return Corr(np.nan, np.nan, np.nan, x.size)
    if rank:
        r = scipy.stats.spearmanr(x, y).statistic
    else:
        r = scipy.stats.pearsonr(x, y).statistic
    low, high = (np.nan, np.nan) if n_boot == 0 else _bootstrap(x, y, rank, n_boot, ci, seed)
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
        matrix = np.corrcoef(vectors)
    # np.corrcoef can leave rounding noise instead of nan for a constant row
    constant = np.ptp(vectors, axis=1) == 0
    matrix[constant, :] = matrix[:, constant] = np.nan
    return matrix


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


def event_histogram(counts, n_bins=None):
    """Normalized histogram of non-negative integer counts: entry k = fraction of samples with k.

    counts: any array of non-negative integers (e.g. forgetting events per sample). n_bins: the
    number of bins 0..n_bins-1 (default max(counts) + 1; must exceed max(counts)).
    """
    counts = np.asarray(counts).ravel()
    if counts.size == 0:
        raise ValueError("counts must not be empty")
    if not np.all(counts == np.round(counts)) or counts.min() < 0:
        raise ValueError("counts must be non-negative integers")
    counts = counts.astype(np.int64)
    n_bins = int(counts.max()) + 1 if n_bins is None else int(n_bins)
    if n_bins <= counts.max():
        raise ValueError(f"n_bins must exceed the largest count {counts.max()}, got {n_bins}")
    return np.bincount(counts, minlength=n_bins) / counts.size


def histogram_correlation(counts_a, counts_b, n_boot=1000, ci=0.95, seed=0):
    """Pearson correlation of the normalized histograms of two samples of event counts.

    With K = the largest count in either sample, p_k and q_k (k = 0..K) are the fractions of
    samples of a and of b with exactly k events (:func:`event_histogram`); the result is Pearson's
    r between the vectors (p_0..p_K) and (q_0..q_K), on n = K + 1 bins. This is how the paper
    compares the histogram of forgetting events (training set) with that of mal-generalizing
    events (test set) of one run. The bin of 0 events usually holds most samples, so r is
    dominated by it; it is near 1 when both sets share that shape.

    It is :func:`histogram_pearson` on unit bins centred on 0..K (interval: a and b resampled
    separately). Fewer than three bins (K < 2) or a constant histogram: r is undefined and nan
    is returned with a RuntimeWarning.
    """
    top = max(event_histogram(counts_a).size, event_histogram(counts_b).size)  # validates counts
    if top < 3:  # two points always give r = +-1
        warnings.warn(f"{top} bins: the correlation is undefined, returning nan",
                      RuntimeWarning, stacklevel=2)
        return Corr(np.nan, np.nan, np.nan, top)
    return histogram_pearson(np.ravel(counts_a), np.ravel(counts_b), bins=np.arange(top + 1) - 0.5,
                             n_boot=n_boot, ci=ci, seed=seed)


# --- agreement of many runs, and of two distributions


def _rowwise_corr_mean(x):
    """Mean off-diagonal Pearson correlation between the K rows of each (K, N) slice of x (K, B, N)."""
    x = (x - x.mean(axis=-1, keepdims=True)).transpose(1, 0, 2)  # (B, K, N)
    cov = x @ x.transpose(0, 2, 1)  # batched BLAS: (B, K, K)
    scale = np.sqrt(np.einsum("bkk->bk", cov))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / (scale[:, :, None] * scale[:, None, :])
    k = x.shape[1]
    return (corr.sum(axis=(1, 2)) - np.einsum("bkk->b", corr)) / (k * (k - 1))


def mean_off_diagonal_interval(vectors, method="pearson", n_boot=1000, ci=0.95, seed=0):
    """Mean off-diagonal of correlation_matrix(vectors), with a bootstrap interval over samples.

    vectors: (K, N), e.g. one per-sample measure per run. Each replicate
    resamples the N columns (samples) with replacement, the same columns for
    every row, and recomputes the mean off-diagonal correlation (spearman:
    re-ranked). Returns a Corr whose r is the point estimate and n is N;
    n_boot=0 gives nan bounds. Replicates with a constant row are dropped.
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    r = mean_off_diagonal(correlation_matrix(vectors, method=method))
    n_boot = _check_interval(n_boot, ci)
    k, n = vectors.shape
    if n_boot == 0:
        return Corr(r, np.nan, np.nan, n)
    if method == "spearman":
        coded = [np.unique(row, return_inverse=True) for row in vectors]

    def replicates(rng, size):
        idx = rng.integers(0, n, size=(size, n))  # the same columns for every row
        if method == "spearman":
            return _rowwise_corr_mean(np.stack([_ranks_in_resamples(codes[idx], unique.size)
                                                for unique, codes in coded]))
        return _rowwise_corr_mean(vectors[:, idx])

    return Corr(r, *_percentile_interval(replicates, n_boot, k * n, ci, seed), n)


def _bin_codes(values, edges):
    """Bin index of each value as np.histogram assigns it (last bin closed); -1 outside the edges."""
    codes = np.searchsorted(edges, values, side="right") - 1
    codes[values == edges[-1]] = edges.size - 2
    codes[(values < edges[0]) | (values > edges[-1])] = -1
    return codes


def _densities(codes, widths):
    """Histogram densities (area 1) of every row of bin codes (B, n) -> (B, bins)."""
    n_rows, n_bins = codes.shape[0], widths.size
    inside = codes >= 0
    flat = (np.arange(n_rows)[:, None] * n_bins + codes)[inside]
    counts = np.bincount(flat, minlength=n_rows * n_bins).reshape(n_rows, n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return counts / (counts.sum(axis=1, keepdims=True) * widths)


def histogram_pearson(a, b, bins="auto", n_boot=1000, ci=0.95, seed=0):
    """Pearson correlation of the normalized histograms of two samples on shared bins.

    How alike two distributions are in shape (e.g. CBTL on training samples
    and CBGL on test samples). bins: edges, a count or a numpy rule, applied
    to the pooled samples; histograms are densities (area 1), as
    ``np.histogram(density=True)``. Each bootstrap replicate resamples a and
    b separately, with replacement. Returns a Corr with n = number of bins.
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.size == 0 or b.size == 0 or not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("a and b must be non-empty and finite")
    n_boot = _check_interval(n_boot, ci)
    edges = np.histogram_bin_edges(np.concatenate([a, b]), bins=bins)
    if edges.size < 4:
        raise ValueError(f"need at least 3 bins, got {edges.size - 1}")
    widths = np.diff(edges)
    codes_a, codes_b = _bin_codes(a, edges), _bin_codes(b, edges)
    r = float(rowwise_pearson(_densities(codes_a[None], widths), _densities(codes_b[None], widths))[0])
    if not np.isfinite(r):
        warnings.warn("a constant histogram: the correlation is undefined, returning nan",
                      RuntimeWarning, stacklevel=2)
        return Corr(np.nan, np.nan, np.nan, widths.size)
    if n_boot == 0:
        return Corr(r, np.nan, np.nan, widths.size)

    def replicates(rng, size):  # a and b resampled separately
        da = _densities(codes_a[rng.integers(0, a.size, size=(size, a.size))], widths)
        db = _densities(codes_b[rng.integers(0, b.size, size=(size, b.size))], widths)
        return rowwise_pearson(da, db)

    return Corr(r, *_percentile_interval(replicates, n_boot, max(a.size, b.size), ci, seed), widths.size)


def pairwise_measure_correlations(measures_by_group, method="pearson"):
    """Correlation of every measure between every pair of groups (architectures, optimizers, ...).

    measures_by_group: {group: {measure: (N,) array}}; every group holds the same measures, each
    measure the same N samples in every group. Returns a DataFrame with one row per pair (a, b),
    a listed before b in the dict's order (index levels "a" and "b"), and one column per measure
    in the order of the first group. method: "pearson" or "spearman"; a constant measure gives nan.
    """
    groups = list(measures_by_group)
    if len(groups) < 2:
        raise ValueError(f"measures_by_group needs at least 2 groups, got {len(groups)}")
    names = list(measures_by_group[groups[0]])
    for g in groups[1:]:
        if set(measures_by_group[g]) != set(names):
            raise ValueError(f"group {g!r} has measures {sorted(measures_by_group[g])}, "
                             f"group {groups[0]!r} has {sorted(names)}; they must match")
    rows, cols = np.triu_indices(len(groups), k=1)
    columns = {}
    for name in names:
        values = [np.asarray(measures_by_group[g][name], dtype=np.float64) for g in groups]
        if any(v.ndim != 1 or v.shape != values[0].shape for v in values):
            raise ValueError(f"measure {name!r} must be 1-D of one length in every group, "
                             f"got shapes {[v.shape for v in values]}")
        stacked = np.stack(values)
        matrix = correlation_matrix(stacked, method=method)
        columns[name] = matrix[rows, cols]
    index = pd.MultiIndex.from_arrays([[groups[i] for i in rows], [groups[j] for j in cols]],
                                      names=["a", "b"])
    return pd.DataFrame(columns, index=index)
