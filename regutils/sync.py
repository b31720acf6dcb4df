"""Synchronization of events between test and training samples (paper §3.3.2).

An *event* of a sample at epoch t (t = 1..T) is a transition acc^{t-1} = 1 -> acc^t = 0
with acc^0 = 0: a forgetting event on a training sample, a mal-generalizing event on a test
sample. Event masks are bool arrays of shape (T, N) for one run, (R, T, N) for R runs.

Definition. In one run, with E_j, F_i the sets of epochs of the mal-generalizing events of test
sample j and of the forgetting events of training sample i, the paper's sentence ("the epoch when
its mal-generalizing event occurs ... corresponds exactly to the epoch when the forgetting event
of that training sample occurs") admits two readings, both computed (``rule=``):

* ``rule="any"`` (default): i is synchronized with j when they share at least one event epoch,
  |E_j ∩ F_i| >= 1. The count then grows as j's events accumulate, as the paper reports
  ("higher in the case of a high number of mal-generalizing events").
* ``rule="all"``: every event epoch of j is one of i's, E_j != {} and E_j ⊆ F_i. Each further
  event is a further condition, so the count can only fall as events accumulate.

Both are a matrix product of the event masks: the shared-epoch count |E_j ∩ F_i|, compared with 1
(any) or with |E_j| (all). Over R runs, i is *long-term synchronized* with j when it is
synchronized in every run; ``min_runs=m`` relaxes this to at least m runs.

Usage:
    from regutils.measures import event_mask
    train_ev = event_mask(train_correct)              # (R, T, N) bool
    test_ev = event_mask(test_correct)                # (R, T, M) bool
    counts = sync_counts(train_ev[0], test_ev[0])        # (M,) synced train samples per test
    mask = synchronized(train_ev[0], test_ev[0, :, j])   # (N,) bool, one run
    runs = long_term_sync(train_ev, test_ev, j)          # (N,) runs in which i is synced with j
    curve = long_term_counts(train_ev, test_ev, j)       # (R,) synced in all of the first k runs
    same, other = split_by_class(runs == train_ev.shape[0], train_labels, test_labels[j])
    m = sync_matrix(train_ev[0], test_ev[0], [3, 7])     # (2, N) bool, chosen test samples
    same, other = long_term_curves_by_class(train_ev, test_ev, train_labels, test_labels)
    # (M, R) each: [j, k-1] synced in all of the first k runs, j's class / other classes
    same, other = at_least_runs_by_class(train_ev, test_ev, train_labels, test_labels)
    # (M, R) each: [j, m-1] synced in at least m of the R runs
    strict = sync_counts(train_ev[0], test_ev[0], rule="all")   # every event epoch shared
"""

import numpy as np
from scipy.stats import spearmanr

from .validation import Int, check

RULES = ("any", "all")


def _check_events(name, events, ndim):
    events = np.asarray(events)
    if events.dtype != bool:
        raise ValueError(f"{name} must be a bool event mask, got dtype {events.dtype}")
    if events.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {events.shape}")
    return events


def _check_rule(rule):
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    return rule


def _synced_block(train_f32, test_block, rule):
    """(T, N) float32 train events, (T, Mc) bool test events -> (Mc, N) bool synchronization."""
    # float32 counts are exact: at most T shared epochs
    shared = test_block.T.astype(np.float32) @ train_f32
    if rule == "any":
        return shared >= 1
    n_events = test_block.sum(axis=0)
    return (shared == n_events[:, None]) & (n_events[:, None] > 0)


def _check_one_run(train_events, test_events, test_name: str, test_ndim: int, rule: str):
    """One run's (T, N) training and (T,) or (T, M) test event masks, checked to share their epochs."""
    _check_rule(rule)
    train_events = _check_events("train_events", train_events, 2)
    test_events = _check_events(test_name, test_events, test_ndim)
    if test_events.shape[0] != train_events.shape[0]:
        raise ValueError(f"{test_name} has {test_events.shape[0]} epochs, train_events has {train_events.shape[0]}")
    return train_events, test_events


def synchronized(train_events, test_events_j, rule="any"):
    """Training samples synchronized with one test sample in one run.

    train_events: (T, N) bool forgetting-event mask; test_events_j: (T,) bool
    mal-generalizing-event mask of test sample j; rule: "any" or "all" (module docstring).
    Returns an (N,) bool mask.
    """
    train_events, test_events_j = _check_one_run(train_events, test_events_j, "test_events_j", 1, rule)
    return _synced_block(train_events.astype(np.float32), test_events_j[:, None], rule)[0]


def sync_counts(train_events, test_events, chunk=256, rule="any"):
    """Number of synchronized training samples for every test sample, one run.

    train_events: (T, N) bool; test_events: (T, M) bool; rule: "any" or "all". Test samples are
    processed `chunk` at a time, so memory is O(chunk * N). Returns an (M,) int64 array.
    """
    train_events, test_events = _check_one_run(train_events, test_events, "test_events", 2, rule)
    check("chunk", chunk, Int(1))
    chunk = int(chunk)
    train_f32 = train_events.astype(np.float32)
    n_test = test_events.shape[1]
    counts = np.zeros(n_test, dtype=np.int64)
    for start in range(0, n_test, chunk):
        block = test_events[:, start:start + chunk]
        counts[start:start + chunk] = _synced_block(train_f32, block, rule).sum(axis=1)
    return counts


def _check_runs(train_events_runs, test_events_runs, j):
    train_events_runs = _check_events("train_events_runs", train_events_runs, 3)
    test_events_runs = _check_events("test_events_runs", test_events_runs, 3)
    if train_events_runs.shape[:2] != test_events_runs.shape[:2]:
        raise ValueError(f"runs and epochs differ: train_events_runs {train_events_runs.shape}, "
                         f"test_events_runs {test_events_runs.shape}")
    n_test = test_events_runs.shape[2]
    if not -n_test <= int(j) < n_test:
        raise ValueError(f"j must index one of the {n_test} test samples, got {j}")
    return train_events_runs, test_events_runs, int(j)


def _synced_runs(train_events_runs, test_events_runs, j, rule):
    """(R, N) bool: synchronization of every training sample with test sample j in each run."""
    return np.stack([synchronized(train, test[:, j], rule)
                     for train, test in zip(train_events_runs, test_events_runs)])


def long_term_sync(train_events_runs, test_events_runs, j, min_runs=None, rule="any"):
    """Runs in which each training sample is synchronized with test sample j.

    train_events_runs: (R, T, N) bool; test_events_runs: (R, T, M) bool; rule: "any" or "all".
    With min_runs=None returns the (N,) int number of runs (long-term synchronized: == R).
    With min_runs=m returns the (N,) bool mask "synchronized in at least m runs".
    """
    train_events_runs, test_events_runs, j = _check_runs(train_events_runs, test_events_runs, j)
    n_runs_synced = _synced_runs(train_events_runs, test_events_runs, j, _check_rule(rule)).sum(axis=0)
    if min_runs is None:
        return n_runs_synced
    n_runs = train_events_runs.shape[0]
    if not 1 <= int(min_runs) <= n_runs:
        raise ValueError(f"min_runs must be in 1..{n_runs} (the number of runs), got {min_runs}")
    return n_runs_synced >= int(min_runs)


def long_term_counts(train_events_runs, test_events_runs, j, rule="any"):
    """Curve of long-term synchronization against the number of runs (rule: "any" or "all").

    Returns an (R,) int array whose entry k-1 is the number of training samples synchronized
    with test sample j in every one of the first k runs; it is non-increasing in k.
    """
    train_events_runs, test_events_runs, j = _check_runs(train_events_runs, test_events_runs, j)
    synced = _synced_runs(train_events_runs, test_events_runs, j, _check_rule(rule))
    return np.logical_and.accumulate(synced, axis=0).sum(axis=1)


def split_by_class(sync_mask, train_labels, test_label):
    """Split synchronized training samples by class.

    sync_mask: (N,) bool; train_labels: (N,) int; test_label: the test sample's label.
    Returns (same_class_count, different_class_count); they sum to sync_mask.sum().
    """
    sync_mask = _check_events("sync_mask", sync_mask, 1)
    train_labels = np.asarray(train_labels)
    if train_labels.shape != sync_mask.shape:
        raise ValueError(f"train_labels has shape {train_labels.shape}, "
                         f"sync_mask has shape {sync_mask.shape}")
    same = int(np.count_nonzero(sync_mask & (train_labels == test_label)))
    return same, int(np.count_nonzero(sync_mask)) - same


def sync_matrix(train_events, test_events, test_indices=None, rule="any"):
    """Synchronization of chosen test samples with every training sample, one run.

    train_events: (T, N) bool; test_events: (T, M) bool; test_indices: the test samples (default
    all); rule: "any" or "all". Returns a (len(test_indices), N) bool matrix, row j =
    :func:`synchronized` of that test sample. Memory is O(len(test_indices) * N): pass a few hundred indices at a time.
    """
    train_events = _check_events("train_events", train_events, 2)
    test_events = _check_events("test_events", test_events, 2)
    if test_events.shape[0] != train_events.shape[0]:
        raise ValueError(f"test_events has {test_events.shape[0]} epochs, "
                         f"train_events has {train_events.shape[0]}")
    if test_indices is not None:
        test_events = test_events[:, np.asarray(test_indices, dtype=np.int64)]
    return _synced_block(train_events.astype(np.float32), test_events, _check_rule(rule))


def _check_by_class(train_events_runs, test_events_runs, train_labels, test_labels, test_indices,
                    chunk, rule):
    _check_rule(rule)
    train_events_runs = _check_events("train_events_runs", train_events_runs, 3)
    test_events_runs = _check_events("test_events_runs", test_events_runs, 3)
    if train_events_runs.shape[:2] != test_events_runs.shape[:2]:
        raise ValueError(f"runs and epochs differ: train_events_runs {train_events_runs.shape}, "
                         f"test_events_runs {test_events_runs.shape}")
    train_labels, test_labels = np.asarray(train_labels), np.asarray(test_labels)
    if train_labels.shape != train_events_runs.shape[2:]:
        raise ValueError(f"train_labels has shape {train_labels.shape}, expected "
                         f"({train_events_runs.shape[2]},)")
    if test_labels.shape != test_events_runs.shape[2:]:
        raise ValueError(f"test_labels has shape {test_labels.shape}, expected "
                         f"({test_events_runs.shape[2]},)")
    check("chunk", chunk, Int(1))
    indices = (np.arange(test_labels.size) if test_indices is None
               else np.asarray(test_indices, dtype=np.int64))
    return train_events_runs, test_events_runs, train_labels, test_labels, indices


def long_term_curves_by_class(train_events_runs, test_events_runs, train_labels, test_labels,
                              test_indices=None, chunk=256, rule="any"):
    """Long-term synchronization curves of many test samples, split by class.

    train_events_runs: (R, T, N) bool; test_events_runs: (R, T, M) bool; labels (N,) and (M,);
    test_indices: the test samples (default all); rule: "any" or "all". Returns (same, different),
    two int64 arrays of shape (len(test_indices), R): entry [j, k-1] counts the training samples of test sample j's
    class (of the other classes) synchronized with j in every one of the first k runs. Column 0
    is the one-run count of run 1, column R-1 the long-term count; rows are non-increasing.
    """
    train_events_runs, test_events_runs, train_labels, test_labels, indices = _check_by_class(
        train_events_runs, test_events_runs, train_labels, test_labels, test_indices, chunk, rule)
    n_runs = train_events_runs.shape[0]
    same = np.zeros((indices.size, n_runs), dtype=np.int64)
    different = np.zeros_like(same)
    # only training samples that forget in run 1 can be synchronized in the first k runs
    candidates = np.flatnonzero(train_events_runs[0].any(axis=0))
    train_runs = [train_events_runs[r][:, candidates].astype(np.float32) for r in range(n_runs)]
    candidate_labels = train_labels[candidates]
    for start in range(0, indices.size, int(chunk)):
        block = indices[start:start + int(chunk)]
        same_class = candidate_labels[None, :] == test_labels[block][:, None]
        synced = np.ones((block.size, candidates.size), dtype=bool)
        for r in range(n_runs):  # synchronized in runs 1..k: a running AND over the runs
            synced &= _synced_block(train_runs[r], test_events_runs[r][:, block], rule)
            n_same = np.count_nonzero(synced & same_class, axis=1)
            same[start:start + block.size, r] = n_same
            different[start:start + block.size, r] = np.count_nonzero(synced, axis=1) - n_same
    return same, different


def at_least_runs_by_class(train_events_runs, test_events_runs, train_labels, test_labels,
                           test_indices=None, chunk=256, rule="any"):
    """Synchronization in at least m of the R runs (any m of them), split by class.

    Same arguments as :func:`long_term_curves_by_class`. Returns (same, different), int64
    arrays of shape (len(test_indices), R): entry [j, m-1] counts the training samples of test
    sample j's class (of the other classes) synchronized with j in at least m runs, which is
    ``long_term_sync(..., j, min_runs=m)`` split by class. Column R-1 is the long-term count.
    """
    train_events_runs, test_events_runs, train_labels, test_labels, indices = _check_by_class(
        train_events_runs, test_events_runs, train_labels, test_labels, test_indices, chunk, rule)
    n_runs = train_events_runs.shape[0]
    same = np.zeros((indices.size, n_runs), dtype=np.int64)
    different = np.zeros_like(same)
    # a training sample never forgotten in any run is never synchronized
    candidates = np.flatnonzero(train_events_runs.any(axis=(0, 1)))
    train_runs = [train_events_runs[r][:, candidates].astype(np.float32) for r in range(n_runs)]
    candidate_labels = train_labels[candidates]
    for start in range(0, indices.size, int(chunk)):
        block = indices[start:start + int(chunk)]
        same_class = candidate_labels[None, :] == test_labels[block][:, None]
        n_synced_runs = np.zeros((block.size, candidates.size), dtype=np.int32)
        for r in range(n_runs):
            n_synced_runs += _synced_block(train_runs[r], test_events_runs[r][:, block], rule)
        for m in range(1, n_runs + 1):
            synced = n_synced_runs >= m
            n_same = np.count_nonzero(synced & same_class, axis=1)
            same[start:start + block.size, m - 1] = n_same
            different[start:start + block.size, m - 1] = np.count_nonzero(synced, axis=1) - n_same
    return same, different


def rise_with_events(events, counts):
    """Spearman correlation of synchronized counts with event counts, over test samples with events.

    events: (M,) int mal-generalizing events of each test sample in one run; counts: (M,) its
    synchronized training samples in that run (:func:`sync_counts`). Test samples without an
    event are left out (they have no synchronized sample by definition). Positive: the count rises
    with the events, as the paper reports. NaN when fewer than two distinct event counts remain.
    """
    events, counts = np.asarray(events), np.asarray(counts)
    if events.ndim != 1 or events.shape != counts.shape:
        raise ValueError(f"events and counts must be 1-D of one length, got {events.shape} and {counts.shape}")
    keep = events > 0
    if np.unique(events[keep]).size < 2 or np.unique(counts[keep]).size < 2:
        return float("nan")
    return float(spearmanr(events[keep], counts[keep]).statistic)


def most_runs_with_sync(n_synced_at_least, k=3):
    """The largest m such that at least k test samples have a training sample synchronized in >= m runs.

    n_synced_at_least: (M, R) int, entry [j, m-1] the training samples synchronized with test
    sample j in at least m runs (the sum of :func:`at_least_runs_by_class`'s two arrays).
    Returns m in 1..R, R being long-term synchronization proper, or 0 when fewer than k test
    samples have any synchronized sample.
    """
    n_synced_at_least = np.asarray(n_synced_at_least)
    if n_synced_at_least.ndim != 2:
        raise ValueError(f"n_synced_at_least must be (M, R), got shape {n_synced_at_least.shape}")
    check("k", k, Int(1))
    enough = np.count_nonzero(n_synced_at_least > 0, axis=0) >= k  # (R,), non-increasing in m
    return int(np.count_nonzero(enough))
