"""Training acceleration by pruning the training set (paper §4.1): which samples to keep, and the sweep.

    from regutils import pruning
    kept = pruning.kept_indices("density", 0.4, cbtl=cbtl, events=events, radius=1.0)
    config = pruning.pruned_config(s.run_config(), "density", 0.4, cbtl=cbtl, events=events)
    table = pruning.sweep(s.run_config(), cbtl, events, fractions=(0.0, 0.3, 0.6), radii=(0.5, 1.0))
    pruning.accuracy_at(table, max_fraction=0.6)      # per strategy: the last fraction <= 0.6
    pruning.removal_map(cbtl, events, kept)           # per distinct point of the plane: share removed
    pruning.radius_means(table)                       # per radius: density's mean accuracy over fractions > 0
    pruning.best_radius(table)                        # the radius of the highest mean (Fig. 12a's judgement)
    pruning.mean_difference(table, "density", "cbtl") # mean accuracy gap over the fractions > 0 (Fig. 12b)

``cbtl`` and ``events`` are the run-averaged CBTL and forgetting events of the
full training set, indexed by position in it; the kept positions become
``DataConfig.train_keep`` of a new run. Strategies (see
:func:`regutils.sampling.prune`): "density" removes the densest samples of the
(CBTL, events) plane first, the density counted within ``radius`` (the paper
prunes with r = 1); "cbtl" the highest CBTL first; "forgetting" the fewest
events first; "random" a seeded random choice. A fraction that removes
nothing gives ``train_keep=None``, the full set's own config, so its runs are
shared with the main runs through the cache.

The other tools' scores prune too, given as ``score=`` (:data:`SCORE_STRATEGIES`):
"el2n" removes the lowest EL2N first and "aum" the highest AUM first, the
easiest samples by each score; "lowest" and "highest" do the same for any score::

    kept = pruning.kept_indices("el2n", 0.4, cbtl=cbtl, events=events, score=el2n, labels=y)
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from . import density, sampling

STRATEGIES = sampling.PRUNING_STRATEGIES
# the other tools' scores as strategies, by the end of the score that goes first: the easiest samples
SCORE_STRATEGIES = {"el2n": "lowest", "aum": "highest"}
PAPER_RADIUS = 1.0
COLUMNS = ["strategy", "radius", "fraction", "kept", "test_acc", "test_acc_std", "train_seconds"]


def kept_indices(strategy, fraction, *, cbtl, events, radius=PAPER_RADIUS, forgetting=None, labels=None, seed=0,
                 score=None):
    """Sorted int64 positions kept after removing ``fraction`` of the training set by ``strategy``.

    strategy: one of :data:`STRATEGIES`, of :data:`SCORE_STRATEGIES` ("el2n", "aum") or
    :data:`regutils.sampling.SCORE_ORDERS` ("lowest", "highest"); the last two kinds rank ``score``.
    radius: of the density (used by "density" only). forgetting: the score of
    the "forgetting" strategy when it differs from ``events`` (e.g. counted
    with Toneva et al.'s never-learned convention); None uses ``events``.
    labels: remove the fraction from each class (see :func:`sampling.prune`).
    """
    cbtl, events = density.as_plane(cbtl, events)
    if strategy in SCORE_STRATEGIES and score is None:
        raise ValueError(f"strategy {strategy!r} needs its score: score= the {strategy} of every training sample")
    d = density.density(cbtl, events, radius) if strategy == "density" else None
    return sampling.prune(fraction, SCORE_STRATEGIES.get(strategy, strategy), density=d, cbtl=cbtl,
                          events=events if forgetting is None else forgetting, labels=labels, seed=seed, score=score)


def pruned_config(base, strategy, fraction, *, cbtl, events, radius=PAPER_RADIUS, forgetting=None, labels=None, seed=0,
                  score=None):
    """``base`` (a RunConfig of the full training set) training on the samples :func:`kept_indices` keeps."""
    if base.data.train_keep is not None:
        raise ValueError("base is already pruned (data.train_keep is set); pass the full set's config")
    kept = kept_indices(strategy, fraction, cbtl=cbtl, events=events, radius=radius, forgetting=forgetting,
                        labels=labels, seed=seed, score=score)
    train_keep = None if len(kept) == len(cbtl) else tuple(int(i) for i in kept)
    return replace(base, data=replace(base.data, train_keep=train_keep)).validate()


def settings_grid(strategies=STRATEGIES, fractions=(0.0, 0.2, 0.4, 0.6), radii=(PAPER_RADIUS,)):
    """(strategy, fraction, radius) triples: density at every radius, the others once with radius None."""
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise ValueError(f"strategies {unknown} are unknown; allowed: {', '.join(STRATEGIES)}")
    if not radii and "density" in strategies:
        raise ValueError("radii is empty: the density strategy needs at least one radius")
    grid = []
    for strategy in strategies:
        for radius in (radii if strategy == "density" else (None,)):
            grid += [(strategy, float(f), None if radius is None else float(radius)) for f in fractions]
    return grid


def sweep(base, cbtl, events, *, strategies=STRATEGIES, fractions=(0.0, 0.2, 0.4, 0.6), radii=(PAPER_RADIUS,),
          runs=1, forgetting=None, labels=None, seed=0, runner=None, **run_kwargs) -> pd.DataFrame:
    """Train ``runs`` seeds on every pruned training set and tabulate the final test accuracy.

    runner(config, runs) -> stacked Trace; None uses :func:`regutils.train.get_runs`
    (cached; ``run_kwargs`` such as ``device`` go to it). Returns one row per
    setting of :func:`settings_grid` with the columns of COLUMNS: radius is nan
    for strategies without one, kept the number of training samples, test_acc
    and test_acc_std the mean and standard deviation over runs of the last
    epoch's test accuracy, train_seconds the training time summed over runs.
    """
    if runner is None:
        from .train import get_runs

        def runner(config, n):
            return get_runs(config, n, **run_kwargs)

    rows = []
    for strategy, fraction, radius in settings_grid(strategies, fractions, radii):
        config = pruned_config(base, strategy, fraction, cbtl=cbtl, events=events,
                               radius=PAPER_RADIUS if radius is None else radius, forgetting=forgetting,
                               labels=labels, seed=seed)
        trace = runner(config, runs)
        final = np.asarray(trace.history["test_acc"]).reshape(runs, -1)[:, -1]
        rows.append({"strategy": strategy, "radius": np.nan if radius is None else radius, "fraction": fraction,
                     "kept": len(trace.y_train), "test_acc": float(final.mean()), "test_acc_std": float(final.std()),
                     "train_seconds": float(sum(m["train_seconds"] for m in trace.meta["runs"]))})
    return pd.DataFrame(rows, columns=COLUMNS)


def accuracy_at(table, max_fraction=0.6, radius=PAPER_RADIUS) -> pd.DataFrame:
    """Per strategy, the row of ``table`` (from :func:`sweep`) at the largest fraction <= max_fraction.

    The density strategy is read at ``radius``. Returns a DataFrame indexed by
    strategy with the columns fraction and test_acc.
    """
    at_radius = table["radius"].isna() | np.isclose(table["radius"].fillna(-1.0), radius)
    chosen = table[at_radius & (table["fraction"] <= max_fraction + 1e-12)]
    if chosen.empty:
        raise ValueError(f"no row of table has fraction <= {max_fraction} (radius {radius} for density)")
    last = chosen.sort_values("fraction", kind="stable").groupby("strategy").tail(1).set_index("strategy")
    return last.loc[pd.unique(chosen["strategy"]), ["fraction", "test_acc"]]  # the table's order of strategies


def removal_map(cbtl, events, kept) -> pd.DataFrame:
    """Per distinct point of the (CBTL, events) plane: its samples and the share of them not in ``kept``.

    Run-averaged measures take few distinct values, so many samples share a
    point; this is what a plot of "what was removed" can show. Columns: cbtl,
    events, samples, removed_share; rows sorted by (cbtl, events).
    """
    cbtl, events = density.as_plane(cbtl, events)
    kept = np.asarray(kept, dtype=np.int64)
    if kept.size and (kept.min() < 0 or kept.max() >= len(cbtl)):
        raise ValueError(f"kept must hold positions in 0..{len(cbtl) - 1}")
    removed = np.ones(len(cbtl), bool)
    removed[kept] = False
    points, group = np.unique(np.column_stack([cbtl, events]), axis=0, return_inverse=True)
    group = group.ravel()
    samples = np.bincount(group, minlength=len(points))
    share = np.bincount(group, weights=removed, minlength=len(points)) / samples
    return pd.DataFrame({"cbtl": points[:, 0], "events": points[:, 1], "samples": samples, "removed_share": share})


def _accuracy_by_fraction(table, strategy, radius=None) -> pd.Series:
    """test_acc of ``strategy`` (at ``radius`` when given) indexed by fraction, the fractions > 0 only."""
    rows = table[(table["strategy"] == strategy) & (table["fraction"] > 0)]
    if radius is not None:
        rows = rows[np.isclose(rows["radius"].fillna(-1.0), radius)]
    if rows.empty:
        where = f" at radius {radius}" if radius is not None else ""
        raise ValueError(f"table has no row of strategy {strategy!r}{where} with a fraction > 0")
    if rows["fraction"].duplicated().any():
        raise ValueError(f"table has several rows of strategy {strategy!r} at one fraction; pass radius=")
    return rows.set_index("fraction")["test_acc"]


def radius_means(table) -> pd.Series:
    """Per radius of the density strategy, its mean test accuracy over the fractions > 0 of ``table``.

    A fraction of 0 trains on the full set whatever the radius, so it does not tell radii apart.
    Returns a Series indexed by radius (ascending).
    """
    radii = np.unique(table.loc[table["strategy"] == "density", "radius"].dropna())
    if not radii.size:
        raise ValueError("table has no row of the density strategy")
    return pd.Series({float(r): _accuracy_by_fraction(table, "density", r).mean() for r in radii}, name="test_acc")


def best_radius(table) -> float:
    """The density radius of the highest mean test accuracy over the fractions > 0 (the smallest on a tie)."""
    means = radius_means(table)
    return float(means.index[np.argmax(means.to_numpy())])


def mean_difference(table, a, b, radius=PAPER_RADIUS) -> float:
    """Mean over the fractions > 0 that both strategies ran of test_acc(a) - test_acc(b).

    The density strategy is read at ``radius``; the others have none. Positive: ``a`` keeps the
    higher accuracy on average over the fractions removed.
    """
    acc_a, acc_b = (_accuracy_by_fraction(table, s, radius if s == "density" else None) for s in (a, b))
    common = acc_a.index.intersection(acc_b.index)
    if common.empty:
        raise ValueError(f"strategies {a!r} and {b!r} share no fraction > 0 in table")
    return float((acc_a[common] - acc_b[common]).mean())
