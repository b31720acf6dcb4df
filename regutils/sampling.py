"""Sample selection: training-set pruning and difficulty-balanced test subsets.

Pruning removes a fraction of the training set ranked by a regularity score::

    from regutils import sampling
    kept = sampling.prune(0.3, "density", density=d, labels=labels, seed=0)
    kept = sampling.prune(0.3, "lowest", score=el2n, labels=labels)     # any score: its lowest values first

Difficulty-balanced test subsets (paper section 4.2) split the (CBGL,
mal-generalizing events) plane into angular sectors around the centre of the
CBGL range and draw the same number of samples from each. Table 3 of the paper
draws 400 samples from 4 sectors of 45 degrees or 10 of 18 degrees; Fig. 13
adds the two half-axes of zero events as bins of their own (11 n + 3)::

    sectors = sampling.sector_bins(cbgl_mean, mg_events_mean, step_deg=45.0)   # labels 0..3
    table3 = sampling.equal_share_subset(sectors, size=400, seed=0)            # 100 per sector
    bins = sampling.angular_bins(cbgl_mean, mg_events_mean)       # 18 degree sectors and half-axes
    subset = sampling.balanced_subset(bins, n=30, seed=0)         # 11 n + |left axis|
    sampling.export_subset(subset, test_indices, "subsets/cifar10_333")
"""
import math
from pathlib import Path

import numpy as np
import pandas as pd

from .validation import Int, check

PRUNING_STRATEGIES = ("density", "cbtl", "forgetting", "random")  # the paper's Fig. 12
# any other per-sample score (EL2N, AUM, ...): its lowest or its highest values removed first
SCORE_ORDERS = ("lowest", "highest")

# Bin labels of angular_bins: the two half-axes of zero events, then sectors.
LEFT_AXIS = 0
RIGHT_AXIS = 1
FIRST_SECTOR = 2


def removed_count(fraction, n):
    """Samples removed from a group of n: floor(fraction * n + 0.5), i.e. round half up."""
    return int(math.floor(fraction * n + 0.5))


def _as_score(values, name):
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"{name} must be 1-D (N,), got shape {values.shape}")
    return values


def prune(fraction, strategy, *, density=None, cbtl=None, events=None, labels=None, seed=0, score=None):
    """Indices of the training samples kept after removing `fraction` of them.

    fraction: share REMOVED, in [0, 1]. Exactly removed_count(fraction, N)
        samples are removed; with `labels`, removed_count(fraction, n_c) from
        each class c of size n_c (round half up per class), so the total is
        the sum of the per-class counts.
    strategy: "density" removes the densest first; "cbtl" the highest CBTL
        first (Jiang et al.); "forgetting" the least forgotten (fewest events)
        first (Toneva et al.); "random" a seeded random choice. The matching
        score (density, cbtl or events) must be given; "random" takes N from
        whichever array is given. "lowest" and "highest" (:data:`SCORE_ORDERS`)
        remove the lowest, or the highest, values of ``score`` first: any
        other score, e.g. EL2N (its lowest: the easiest samples, Paul et al.)
        or AUM (its highest).
    Ties in the score are broken by a random permutation drawn from
    ``numpy.random.default_rng(seed)``, so the result is deterministic under
    the seed. Returns sorted int64 indices.
    """
    allowed = PRUNING_STRATEGIES + SCORE_ORDERS
    if strategy not in allowed:
        raise ValueError(f"strategy must be one of {allowed}, got {strategy!r}")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction!r}")
    scores = {"density": density, "cbtl": cbtl, "forgetting": events, "lowest": score, "highest": score}
    given = [a for a in (density, cbtl, events, score, labels) if a is not None]
    if strategy != "random" and scores[strategy] is None:
        name = {"forgetting": "events", "lowest": "score", "highest": "score"}.get(strategy, strategy)
        raise ValueError(f"strategy {strategy!r} needs the {name} score")
    if not given:
        raise ValueError("strategy 'random' needs labels or a score array to know N")
    n = len(given[0])
    for a in given:
        if _as_score(a, "scores and labels").shape != (n,):
            raise ValueError("density, cbtl, events, score and labels must all have the same length")
    if strategy in SCORE_ORDERS and np.isnan(np.asarray(score, dtype=np.float64)).any():
        raise ValueError("score holds nan: a sample without a score cannot be ranked")

    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    if strategy == "random":
        order = perm
    else:
        ranked = np.asarray(scores[strategy], dtype=np.float64)[perm]
        # Stable sort over a shuffled order: equal scores keep the random order.
        key = ranked if strategy in ("forgetting", "lowest") else -ranked
        order = perm[np.argsort(key, kind="stable")]

    if labels is None:
        removed = order[: removed_count(fraction, n)]
    else:
        order_labels = np.asarray(labels)[order]
        removed = np.concatenate(
            [
                order[order_labels == c][: removed_count(fraction, np.count_nonzero(order_labels == c))]
                for c in np.unique(order_labels)
            ]
        )
    keep = np.ones(n, dtype=bool)
    keep[removed] = False
    return np.flatnonzero(keep).astype(np.int64)


def _range_or_one(values):
    """Range of an axis, or 1 when it is 0 (a flat axis needs no scaling)."""
    span = float(values.max() - values.min()) if values.size else 0.0
    return span if span > 0 else 1.0


def angular_bins(x, y, step_deg=18.0, scale="range"):
    """Bin labels for difficulty-balanced subsets, int64 (N,).

    x: CBGL (or CBTL) per sample; y: events per sample, y >= 0.
    The centre is (midpoint of the x range, 0). Labels:
        0 (LEFT_AXIS)  y == 0 and x < centre,
        1 (RIGHT_AXIS) y == 0 and x >= centre,
        2 + k          y > 0 with angle in [k step, (k + 1) step), k = 0 .. 180/step - 1,
    where the angle, in (0, 180] degrees, is measured from the positive x
    direction around the centre; an angle of exactly 180 joins the last sector.
    scale: "range" (default) divides x and y by their own ranges first, so
        the plane is a unit box and angles do not depend on the units (a flat
        axis, range 0, is left unscaled); None uses raw units; a tuple
        (sx, sy) gives the divisors.
    180 / step_deg must be an integer. At 18 degrees there are 10 sectors and
    the labels run 0..11.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"x and y must be 1-D of equal length, got shapes {x.shape} and {y.shape}")
    n_sectors = _sector_count(step_deg)
    if (y < 0).any():
        raise ValueError("y (events) must be >= 0")
    if scale is None:
        sx = sy = 1.0
    elif isinstance(scale, str):
        if scale != "range":
            raise ValueError(f"scale must be 'range', None or a tuple (sx, sy), got {scale!r}")
        sx, sy = _range_or_one(x), _range_or_one(y)
    else:
        try:
            sx, sy = (float(s) for s in scale)
        except (TypeError, ValueError):
            raise ValueError(f"scale must be 'range', None or a tuple (sx, sy), got {scale!r}") from None
        if not (sx > 0 and sy > 0):
            raise ValueError(f"scale divisors must be > 0, got {scale!r}")

    centre = (x.max() + x.min()) / 2 if x.size else 0.0
    angle = np.degrees(np.arctan2(y / sy, (x - centre) / sx))
    sector = np.minimum(np.floor(angle / step_deg), n_sectors - 1).astype(np.int64)
    bins = FIRST_SECTOR + sector
    on_axis = y == 0
    bins[on_axis] = np.where(x[on_axis] < centre, LEFT_AXIS, RIGHT_AXIS)
    return bins


def _sector_count(step_deg):
    count = 180.0 / step_deg if step_deg > 0 else math.nan
    if not (math.isfinite(count) and count >= 1 and count == round(count)):
        raise ValueError(f"step_deg must divide 180 into a whole number of sectors, got {step_deg!r}")
    return int(round(count))


def bin_names(step_deg=18.0):
    """Names of the labels of :func:`angular_bins`, indexed by label."""
    n_sectors = _sector_count(step_deg)
    sectors = [f"{k * step_deg:g}-{(k + 1) * step_deg:g} deg" for k in range(n_sectors)]
    return ["left axis", "right axis"] + sectors


SECTOR_AXES = ("merge", "exclude")


def sector_bins(x, y, step_deg=18.0, scale="range", axes="merge"):
    """Sector labels 0 .. 180/step_deg - 1, int64 (N,): the bins of the paper's Table 3.

    The sectors of :func:`angular_bins` (same centre, scale and angles) with no
    separate bins for the half-axes of zero events. axes: "merge" (default)
    puts the right half-axis (angle 0) into the first sector and the left
    half-axis (angle 180) into the last one, which is what binning the angle
    in [0, 180] into equal intervals gives; "exclude" labels the half-axes
    -1, so that no draw takes them.
    """
    if axes not in SECTOR_AXES:
        raise ValueError(f"axes must be one of {SECTOR_AXES}, got {axes!r}")
    bins = angular_bins(x, y, step_deg=step_deg, scale=scale)
    sectors = bins - FIRST_SECTOR
    if axes == "merge":
        sectors[bins == RIGHT_AXIS] = 0
        sectors[bins == LEFT_AXIS] = _sector_count(step_deg) - 1
    else:
        sectors[bins < FIRST_SECTOR] = -1
    return sectors


def equal_share_subset(bins, size, n_bins, seed=0):
    """Sorted int64 indices: size / n_bins drawn without replacement from each of the labels 0 .. n_bins - 1.

    bins: (N,) integer labels; negative labels are never drawn (see :func:`sector_bins`).
    size: the subset size if every bin is large enough (400 in the paper's Table 3); it must be a
    multiple of n_bins. A bin that holds fewer than size / n_bins samples gives all of them and the
    shortfall is not made up from the other bins, so the subset is then smaller than `size`; an
    empty bin gives nothing. The draw is :func:`balanced_subset` over the non-negative labels.
    """
    bins = np.asarray(bins)
    if bins.ndim != 1:
        raise ValueError(f"bins must be 1-D (N,), got shape {bins.shape}")
    check("size", size, Int(1))
    check("n_bins", n_bins, Int(1))
    if size % n_bins:
        raise ValueError(f"size={size} must be a multiple of n_bins={n_bins}")
    if bins.size and bins.max() >= n_bins:
        raise ValueError(f"bins holds label {bins.max()}, beyond n_bins={n_bins}")
    drawn = np.flatnonzero(bins >= 0)
    return drawn[balanced_subset(bins[drawn], size // n_bins, seed=seed, take_all=())]


def balanced_subset(bins, n, seed=0, take_all=(LEFT_AXIS,)):
    """Sorted int64 indices: n drawn without replacement from each bin, all of the `take_all` bins.

    A bin with fewer than n samples contributes all of them. Bins are visited
    in increasing label order with one ``numpy.random.default_rng(seed)``, so
    the subset is deterministic under the seed.
    """
    bins = np.asarray(bins)
    if bins.ndim != 1:
        raise ValueError(f"bins must be 1-D (N,), got shape {bins.shape}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n!r}")
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(bins):
        members = np.flatnonzero(bins == label)
        if label in take_all or members.size <= n:
            chosen.append(members)
        else:
            chosen.append(rng.choice(members, size=n, replace=False))
    if not chosen:
        return np.empty(0, dtype=np.int64)
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def export_subset(indices, dataset_index, path_stem):
    """Write a subset as ``<stem>.npy`` and ``<stem>.csv``.

    indices: positions into the analysed arrays; dataset_index: (N,) map from
    position to the index in the original dataset (None: the identity).
    The .npy holds the dataset indices (int64); the .csv has the columns
    position, dataset_index. Returns the two paths.
    """
    indices = np.asarray(indices, dtype=np.int64)
    dataset_ids = indices if dataset_index is None else np.asarray(dataset_index, dtype=np.int64)[indices]
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    npy_path = stem.with_name(stem.name + ".npy")
    csv_path = stem.with_name(stem.name + ".csv")
    np.save(npy_path, dataset_ids)
    pd.DataFrame({"position": indices, "dataset_index": dataset_ids}).to_csv(csv_path, index=False)
    return npy_path, csv_path


def sector_rays(x, y, step_deg=18.0, scale="range", length=1.5):
    """The rays that bound the sectors of :func:`angular_bins`, in data coordinates, for drawing.

    Same centre (midpoint of the x range, 0), scale and angles as
    angular_bins(x, y, step_deg, scale): rays at 0, step, ..., 180 degrees in
    the scaled plane, each `length` long there (1.5 leaves a range-scaled
    box). Returns ``(centre, ends)``: the (2,) centre and the
    (180 / step_deg + 1, 2) ray ends; draw ray k from centre to ends[k].
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape or x.size == 0:
        raise ValueError(f"x and y must be 1-D of equal, non-zero length, got shapes {x.shape} and {y.shape}")
    n_sectors = _sector_count(step_deg)
    if scale is None:
        sx = sy = 1.0
    elif isinstance(scale, str) and scale == "range":
        sx, sy = _range_or_one(x), _range_or_one(y)
    elif not isinstance(scale, str) and len(scale) == 2 and all(float(s) > 0 for s in scale):
        sx, sy = (float(s) for s in scale)
    else:
        raise ValueError(f"scale must be 'range', None or a tuple (sx, sy) of positive divisors, got {scale!r}")
    centre = np.array([(x.max() + x.min()) / 2, 0.0])
    angle = np.deg2rad(np.arange(n_sectors + 1) * step_deg)
    ends = centre + length * np.column_stack([sx * np.cos(angle), sy * np.sin(angle)])
    return centre, ends
