"""Do a test sample's synchronized training samples carry its class? An SVM probe (paper Table 1).

    from regutils.probe import sync_svm_experiment
    result = sync_svm_experiment(train_features, y_train, test_features, y_test,
                                 synced, test_indices, n_random=100, seed=0)
    result[["with_synced", "without_synced"]].mean()       # accuracy with vs without

Protocol, for each test sample j (row of ``synced``: its synchronized training samples S_j) and
each repeat:

* *without*: n_random training samples drawn at random from those not synchronized with j;
* *with*, ``mode="replace"`` (default): the same draw with its last |S_j| samples replaced by
  S_j, so both sets hold n_random samples (when |S_j| > n_random, a random n_random of S_j and
  nothing else); ``mode="add"``: the draw plus S_j (n_random + |S_j| samples);
* optionally (``control_pool``), a *control*: the same construction with S_j replaced by as
  many training samples drawn from a pool (e.g. every sample forgotten at least once in the
  run), to tell synchronization from merely being a hard sample;
* an SVM (scikit-learn ``SVC``, RBF kernel by default) is fitted on each set and predicts j.

A training set of a single class predicts that class. The per-sample result is the fraction of
repeats in which j is classified correctly; its mean over test samples is the accuracy.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.svm import SVC

MODES = ("replace", "add")


def _mix(draw, extra, n_random, rng, mode):
    """The draw with `extra` added (mode add) or swapped in for its last samples (mode replace)."""
    if mode == "add":
        return np.concatenate([draw, extra])
    if extra.size >= n_random:
        return rng.choice(extra, n_random, replace=False)
    return np.concatenate([draw[:n_random - extra.size], extra])


def probe_training_sets(synced_j, n_random, rng, mode="replace", control_pool=None):
    """Training-sample indices of one draw of the protocol, for one test sample.

    synced_j: (N,) bool, the training samples synchronized with the test sample.
    Returns {"with_synced": ..., "without_synced": ...}, plus "control" when control_pool
    ((N,) bool) is given: the draw mixed, like S_j, with as many samples (or all there are)
    drawn from the pool's samples outside S_j and outside the draw, in place of S_j.
    """
    synced_j = np.asarray(synced_j, dtype=bool)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    synced_idx, others = np.flatnonzero(synced_j), np.flatnonzero(~synced_j)
    if not 1 <= int(n_random) <= others.size:
        raise ValueError(f"n_random must be in 1..{others.size} (the training samples not "
                         f"synchronized), got {n_random}")
    n_random = int(n_random)
    without = rng.choice(others, n_random, replace=False)
    sets = {"with_synced": _mix(without, synced_idx, n_random, rng, mode), "without_synced": without}
    if control_pool is not None:
        control_pool = np.asarray(control_pool, dtype=bool)
        if control_pool.shape != synced_j.shape:
            raise ValueError(f"control_pool must have shape {synced_j.shape}, got {control_pool.shape}")
        outside = control_pool & ~synced_j
        outside[without] = False  # stand-ins must not repeat samples of the draw
        pool = np.flatnonzero(outside)
        stand_ins = rng.choice(pool, min(synced_idx.size, pool.size), replace=False)
        sets["control"] = _mix(without, stand_ins, n_random, rng, mode)
    return sets


def fit_predict(features, labels, query, svc_params=None):
    """Label an SVM fitted on (features, labels) gives the query rows; one class: that class."""
    classes = np.unique(labels)
    if classes.size == 1:
        return np.full(len(query), classes[0])
    return SVC(**(svc_params or {})).fit(features, labels).predict(query)


def sync_svm_experiment(train_features, train_labels, test_features, test_labels, synced,
                        test_indices, n_random, mode="replace", repeats=1, seed=0,
                        svc_params=None, control_pool=None):
    """The SVM probe over test samples; one row per test sample.

    train_features (N, D), train_labels (N,), test_features (M, D), test_labels (M,);
    synced: (K, N) bool, row k the training samples synchronized with test sample
    test_indices[k] (e.g. :func:`regutils.sync.sync_matrix`). Returns a DataFrame with columns
    test_index, label, n_synced, with_synced, without_synced (fractions of the repeats in which
    the test sample is classified correctly), and control when control_pool is given (see
    :func:`probe_training_sets`).
    """
    train_features, test_features = np.asarray(train_features), np.asarray(test_features)
    train_labels, test_labels = np.asarray(train_labels), np.asarray(test_labels)
    synced = np.asarray(synced, dtype=bool)
    test_indices = np.asarray(test_indices, dtype=np.int64)
    if train_features.ndim != 2 or len(train_features) != len(train_labels):
        raise ValueError(f"train_features must be (N, D) with N = len(train_labels), got "
                         f"{train_features.shape} and {train_labels.shape}")
    if test_features.ndim != 2 or len(test_features) != len(test_labels):
        raise ValueError(f"test_features must be (M, D) with M = len(test_labels), got "
                         f"{test_features.shape} and {test_labels.shape}")
    if synced.shape != (test_indices.size, len(train_labels)):
        raise ValueError(f"synced must have shape (len(test_indices), N) = "
                         f"{(test_indices.size, len(train_labels))}, got {synced.shape}")
    if int(repeats) < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats}")
    rng = np.random.default_rng(seed)
    columns = ["with_synced", "without_synced"] + ([] if control_pool is None else ["control"])
    correct = {name: np.zeros(test_indices.size) for name in columns}
    for k, j in enumerate(test_indices):  # one SVM per test sample, set and repeat
        for _ in range(int(repeats)):
            sets = probe_training_sets(synced[k], n_random, rng, mode, control_pool)
            for name, rows in sets.items():
                predicted = fit_predict(train_features[rows], train_labels[rows],
                                        test_features[j:j + 1], svc_params)
                correct[name][k] += predicted[0] == test_labels[j]
    return pd.DataFrame({"test_index": test_indices, "label": test_labels[test_indices],
                         "n_synced": synced.sum(axis=1),
                         **{name: hits / int(repeats) for name, hits in correct.items()}})
