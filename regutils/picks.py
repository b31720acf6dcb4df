"""Picking a handful of samples to show: contrasts, spreads and quantiles of the measures.

The chapters show images of a few samples chosen by their measures. Every
picker here is deterministic (where it breaks ties at random, under a seed)
and returns int64 indices into the N samples::

    from regutils import picks
    # samples of (about) the same CBTL, with the fewest and the most events
    values = picks.widest_contrast_values(cbtl, events, n=3, min_gap=5)   # where events vary most
    few, many = picks.pick_same_measure_contrast(cbtl, events, values, k=2, seed=0)
    # a few samples spread over the (CBTL, events) plane
    shown = picks.spread_over_plane(cbtl, events, k=8)
    # the sample at given quantiles of a score, optionally among a subset
    regular, middle, irregular = picks.pick_by_quantile(density, [1.0, 0.5, 0.0], among=events > 0)
    # the test samples of the paper's Fig. 9 and Table 1, or three by regularity
    shown, rule = picks.pick_sync_examples(density, eligible, index_test, wanted=(521, 5695, 889))
"""
import numpy as np

from .validation import Int, Real, validate_params


def _as_scores(**arrays):
    arrays = {name: np.asarray(a, dtype=np.float64) for name, a in arrays.items()}
    shapes = {name: a.shape for name, a in arrays.items()}
    if any(a.ndim != 1 for a in arrays.values()) or len(set(shapes.values())) != 1:
        raise ValueError(f"expected 1-D arrays of one length, got shapes {shapes}")
    if any(not np.isfinite(a).all() for a in arrays.values()):
        raise ValueError(f"{', '.join(arrays)} must be finite")
    return arrays.values()


def _order(score, seed):
    """Indices sorting `score` ascending, equal scores in the order of a seeded permutation."""
    perm = np.random.default_rng(seed).permutation(score.size)
    return perm[np.argsort(score[perm], kind="stable")]


@validate_params(k=Int(1), tol=Real(0))
def pick_same_measure_contrast(measure, events, values, k=1, tol=0.5, seed=0):
    """For each target value, the k samples with the fewest and the k with the most events.

    The candidates for a value v are the samples with |measure - v| <= tol
    (run-averaged measures are rarely equal; tol=0.5 takes those that round
    to an integer v). Returns ``(fewest, most)``, two int64 arrays of shape
    (len(values), k): row j holds the candidates of values[j] ordered from
    fewest events up (``fewest``) and from most events down (``most``); the
    two never share a sample. Equal event counts are ordered by a seeded
    permutation. A value with fewer than 2 k candidates raises ValueError.
    """
    measure, events = _as_scores(measure=measure, events=events)
    values = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if values.ndim != 1:
        raise ValueError(f"values must be a scalar or 1-D, got shape {values.shape}")
    k = int(k)
    order = _order(events, seed)  # all samples, fewest events first
    fewest = np.empty((values.size, k), dtype=np.int64)
    most = np.empty((values.size, k), dtype=np.int64)
    for j, v in enumerate(values):  # a few target values
        candidates = order[np.abs(measure[order] - v) <= tol]
        if candidates.size < 2 * k:
            raise ValueError(f"value {v:g} has {candidates.size} samples within tol={tol:g}, "
                             f"needs at least 2 k = {2 * k}")
        fewest[j] = candidates[:k]
        most[j] = candidates[::-1][:k]
    return fewest, most


@validate_params(n=Int(1))
def widest_contrast_values(measure, events, n, tol=0.5, min_count=2, min_gap=1):
    """n integer values of `measure` whose candidates (|measure - v| <= tol) differ most in events.

    A value needs at least `min_count` candidates; its spread is max - min of
    the events of its candidates. Values are taken greedily by decreasing
    spread (equal spreads: more candidates first, then the smaller value),
    skipping any closer than `min_gap` to one already taken. Returns the
    chosen values sorted ascending, float64 (fewer than n when fewer qualify).
    """
    measure, events = _as_scores(measure=measure, events=events)
    if measure.size == 0:
        return np.empty(0)
    grid = np.arange(np.ceil(measure.min() - tol), np.floor(measure.max() + tol) + 1)
    near = np.abs(measure[None, :] - grid[:, None]) <= tol  # (values, N): a few dozen values
    count = near.sum(axis=1)
    spread = np.where(near, events, -np.inf).max(axis=1) - np.where(near, events, np.inf).min(axis=1)
    qualifies = count >= min_count
    chosen = []
    for i in np.lexsort((grid, -count, -spread)):  # best first; a few dozen values
        if qualifies[i] and all(abs(grid[i] - c) >= min_gap for c in chosen):
            chosen.append(grid[i])
            if len(chosen) == n:
                break
    return np.sort(np.asarray(chosen, dtype=np.float64))


@validate_params(k=Int(1))
def spread_over_plane(x, y, k, start=None):
    """k samples spread over the (x, y) plane by farthest-point sampling.

    Distances are measured after dividing each axis by its range (a flat axis
    is left as is), so both axes count alike. The first pick is `start`, or
    by default the sample nearest the centre of the bounding box; each next
    pick is the sample farthest from all picks so far (the lowest index on
    ties). Coinciding samples are picked at most once. Returns int64 (k,),
    or fewer when the plane has fewer than k distinct points.
    """
    x, y = _as_scores(x=x, y=y)
    if x.size == 0:
        raise ValueError("x and y must hold at least one point")
    points = np.column_stack([x, y])
    span = np.ptp(points, axis=0)
    points = (points - points.min(axis=0)) / np.where(span > 0, span, 1.0)
    if start is None:
        start = int(np.argmin(np.hypot(*(points - points.max(axis=0) / 2).T)))
    elif not 0 <= start < x.size:
        raise ValueError(f"start must index the {x.size} samples, got {start!r}")
    chosen = [int(start)]
    nearest = np.hypot(*(points - points[start]).T)  # distance to the nearest pick
    for _ in range(int(k) - 1):  # k picks, each a vectorized pass over the samples
        far = int(np.argmax(nearest))
        if nearest[far] == 0:
            break
        chosen.append(far)
        nearest = np.minimum(nearest, np.hypot(*(points - points[far]).T))
    return np.asarray(chosen, dtype=np.int64)


def pick_by_quantile(score, quantiles, among=None, seed=0):
    """The sample at each quantile q of `score`: position round(q (n - 1)) of the ascending order.

    among: optional bool mask (N,) restricting the candidates (n of them).
    q = 0 gives the lowest score, q = 1 the highest; equal scores are
    ordered by a seeded permutation. Returns int64 indices, one per quantile.
    """
    (score,) = _as_scores(score=score)
    quantiles = np.atleast_1d(np.asarray(quantiles, dtype=np.float64))
    if quantiles.ndim != 1 or np.any((quantiles < 0) | (quantiles > 1)):
        raise ValueError(f"quantiles must lie in [0, 1], got {quantiles}")
    candidates = np.arange(score.size)
    if among is not None:
        among = np.asarray(among)
        if among.dtype != bool or among.shape != score.shape:
            raise ValueError(f"among must be a bool mask of shape {score.shape}")
        candidates = candidates[among]
    if candidates.size == 0:
        raise ValueError("no candidate samples to pick from")
    order = candidates[_order(score[candidates], seed)]
    return order[np.round(quantiles * (order.size - 1)).astype(np.int64)]


def pick_sync_examples(regularity, eligible, source_index=None, wanted=None, seed=0):
    """Three test samples to show with their synchronized training samples (paper Fig. 9, Table 1).

    regularity: (M,) score of each test sample (higher: more regular, e.g. its density in the
    (CBGL, events) plane); eligible: (M,) bool, the samples that qualify (e.g. those with
    long-term synchronized training samples). When every index in `wanted` (the paper's samples,
    as indices of the source data set) is found in `source_index` (M,), those samples are taken,
    in the order of `wanted`. Otherwise the eligible samples at the top, middle and bottom of the
    regularity order (:func:`pick_by_quantile` at 1, 0.5, 0: high, middle, low regularity).
    Returns (indices into the M samples, int64, and a sentence stating which rule chose them);
    the indices are fewer than three when fewer samples are eligible.
    """
    (regularity,) = _as_scores(regularity=regularity)
    eligible = np.asarray(eligible)
    if eligible.dtype != bool or eligible.shape != regularity.shape:
        raise ValueError(f"eligible must be a bool mask of shape {regularity.shape}")
    if wanted is not None and source_index is not None:
        source_index = np.asarray(source_index)
        if source_index.shape != regularity.shape:
            raise ValueError(f"source_index must have shape {regularity.shape}, got {source_index.shape}")
        wanted = np.asarray(wanted, dtype=np.int64)
        position = {int(i): p for p, i in enumerate(source_index)}
        if all(int(w) in position for w in wanted):
            return (np.array([position[int(w)] for w in wanted], dtype=np.int64),
                    f"the paper's test samples {', '.join(str(int(w)) for w in wanted)}")
    n = int(np.count_nonzero(eligible))
    if n == 0:
        return np.empty(0, dtype=np.int64), "no test sample qualifies"
    quantiles = [1.0, 0.5, 0.0] if n >= 3 else [1.0, 0.0][:n]
    chosen = pick_by_quantile(regularity, quantiles, among=eligible, seed=seed)
    return (chosen, "the qualifying test samples of highest, middle and lowest regularity"
            if n >= 3 else f"all {n} qualifying test samples, highest regularity first")
