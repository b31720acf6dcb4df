"""Synchronization of events between test and training samples (paper §3.3.2).

An *event* of a sample at epoch t (t = 1..T) is a transition acc^{t-1} = 1 -> acc^t = 0
with acc^0 = 0: a forgetting event on a training sample, a mal-generalizing event on a test
sample. Event masks are bool arrays of shape (T, N) for one run, (R, T, N) for R runs.

Definition. In one run, training sample i is *synchronized* with test sample j when j has at
least one mal-generalizing event and every epoch at which j has a mal-generalizing event is an
epoch at which i has a forgetting event:

    E_j != {}  and  E_j ⊆ F_i,

with E_j, F_i the sets of event epochs. The test is a matrix product of the event masks: the
number of epochs shared by i and j equals |E_j|. Over R runs, i is *long-term synchronized*
with j when it is synchronized in every run; ``min_runs=m`` relaxes this to at least m runs.

Usage:
    from regutils.measures import event_mask
    train_ev = event_mask(train_correct)              # (R, T, N) bool
    test_ev = event_mask(test_correct)                # (R, T, M) bool
    counts = sync_counts(train_ev[0], test_ev[0])        # (M,) synced train samples per test
    mask = synchronized(train_ev[0], test_ev[0, :, j])   # (N,) bool, one run
    runs = long_term_sync(train_ev, test_ev, j)          # (N,) runs in which i is synced with j
    curve = long_term_counts(train_ev, test_ev, j)       # (R,) synced in all of the first k runs
    same, other = split_by_class(runs == train_ev.shape[0], train_labels, test_labels[j])
"""

import numpy as np


def _check_events(name, events, ndim):
    events = np.asarray(events)
    if events.dtype != bool:
        raise ValueError(f"{name} must be a bool event mask, got dtype {events.dtype}")
    if events.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {events.shape}")
    return events


def _synced_block(train_f32, test_block):
    """(T, N) float32 train events, (T, Mc) bool test events -> (Mc, N) bool synchronization."""
    n_events = test_block.sum(axis=0)
    # float32 counts are exact: at most T shared epochs
    shared = test_block.T.astype(np.float32) @ train_f32
    return (shared == n_events[:, None]) & (n_events[:, None] > 0)


def synchronized(train_events, test_events_j):
    """Training samples synchronized with one test sample in one run.

    train_events: (T, N) bool forgetting-event mask; test_events_j: (T,) bool
    mal-generalizing-event mask of test sample j. Returns an (N,) bool mask.
    """
    train_events = _check_events("train_events", train_events, 2)
    test_events_j = _check_events("test_events_j", test_events_j, 1)
    if test_events_j.shape[0] != train_events.shape[0]:
        raise ValueError(f"test_events_j has {test_events_j.shape[0]} epochs, "
                         f"train_events has {train_events.shape[0]}")
    n_events = int(test_events_j.sum())
    shared = test_events_j.astype(np.int32) @ train_events.astype(np.int32)
    return (shared == n_events) & (n_events > 0)


def sync_counts(train_events, test_events, chunk=256):
    """Number of synchronized training samples for every test sample, one run.

    train_events: (T, N) bool; test_events: (T, M) bool. Test samples are processed `chunk`
    at a time, so memory is O(chunk * N). Returns an (M,) int64 array.
    """
    train_events = _check_events("train_events", train_events, 2)
    test_events = _check_events("test_events", test_events, 2)
    if test_events.shape[0] != train_events.shape[0]:
        raise ValueError(f"test_events has {test_events.shape[0]} epochs, "
                         f"train_events has {train_events.shape[0]}")
    if int(chunk) < 1:
        raise ValueError(f"chunk must be a positive integer, got {chunk}")
    chunk = int(chunk)
    train_f32 = train_events.astype(np.float32)
    n_test = test_events.shape[1]
    counts = np.zeros(n_test, dtype=np.int64)
    for start in range(0, n_test, chunk):
        block = test_events[:, start:start + chunk]
        counts[start:start + chunk] = _synced_block(train_f32, block).sum(axis=1)
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


def _synced_runs(train_events_runs, test_events_runs, j):
    """(R, N) bool: synchronization of every training sample with test sample j in each run."""
    return np.stack([synchronized(train, test[:, j])
                     for train, test in zip(train_events_runs, test_events_runs)])


def long_term_sync(train_events_runs, test_events_runs, j, min_runs=None):
    """Runs in which each training sample is synchronized with test sample j.

    train_events_runs: (R, T, N) bool; test_events_runs: (R, T, M) bool.
    With min_runs=None returns the (N,) int number of runs (long-term synchronized: == R).
    With min_runs=m returns the (N,) bool mask "synchronized in at least m runs".
    """
    train_events_runs, test_events_runs, j = _check_runs(train_events_runs, test_events_runs, j)
    n_runs_synced = _synced_runs(train_events_runs, test_events_runs, j).sum(axis=0)
    if min_runs is None:
        return n_runs_synced
    n_runs = train_events_runs.shape[0]
    if not 1 <= int(min_runs) <= n_runs:
        raise ValueError(f"min_runs must be in 1..{n_runs} (the number of runs), got {min_runs}")
    return n_runs_synced >= int(min_runs)


def long_term_counts(train_events_runs, test_events_runs, j):
    """Curve of long-term synchronization against the number of runs.

    Returns an (R,) int array whose entry k-1 is the number of training samples synchronized
    with test sample j in every one of the first k runs; it is non-increasing in k.
    """
    train_events_runs, test_events_runs, j = _check_runs(train_events_runs, test_events_runs, j)
    synced = _synced_runs(train_events_runs, test_events_runs, j)
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
