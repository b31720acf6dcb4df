"""Do a test sample's synchronized training samples carry its class? SVM probes (paper Table 1).

The paper's protocol (Table 1) is :func:`binary_probe`: a *binary* SVM, "does this test sample
belong to class c" (c its class), trained on N training samples that hold 46 long-term
synchronized samples, 23 of class c and 23 of other classes (*with*), or on N training samples
holding none of them (*without*)::

    from regutils.probe import binary_probe, table1_training_sets
    sets = table1_training_sets(synced_j, y_train, y_test[j], n=100, rng=rng)
    acc = binary_probe(train_features, y_train, test_features, y_test, synced_j, j, n=100,
                       repeats=20, seed=0)   # {"with_synced": .., "without_synced": .., "control": ..}

The multi-class probe below (:func:`sync_svm_experiment`) is this book's wider variant over many
test samples:

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

from .validation import Int, check

MODES = ("replace", "add")


def _check_features(train_features, train_labels, test_features, test_labels):
    """The four inputs as arrays: features (N, D) and (M, D) matching their labels (N,) and (M,)."""
    train_features, test_features = np.asarray(train_features), np.asarray(test_features)
    train_labels, test_labels = np.asarray(train_labels), np.asarray(test_labels)
    if train_features.ndim != 2 or len(train_features) != len(train_labels):
        raise ValueError(f"train_features must be (N, D) with N = len(train_labels), got "
                         f"{train_features.shape} and {train_labels.shape}")
    if test_features.ndim != 2 or len(test_features) != len(test_labels):
        raise ValueError(f"test_features must be (M, D) with M = len(test_labels), got "
                         f"{test_features.shape} and {test_labels.shape}")
    return train_features, train_labels, test_features, test_labels


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
    train_features, train_labels, test_features, test_labels = _check_features(
        train_features, train_labels, test_features, test_labels)
    synced = np.asarray(synced, dtype=bool)
    test_indices = np.asarray(test_indices, dtype=np.int64)
    if synced.shape != (test_indices.size, len(train_labels)):
        raise ValueError(f"synced must have shape (len(test_indices), N) = "
                         f"{(test_indices.size, len(train_labels))}, got {synced.shape}")
    check("repeats", repeats, Int(1))
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


#: synchronized samples of the test sample's class and of other classes in the paper's Table 1
TABLE1_SAME, TABLE1_OTHER = 23, 23


class NotEnoughSynchronized(ValueError):
    """Fewer long-term synchronized samples of a group than the protocol puts in the training set."""


def table1_training_sets(synced_j, train_labels, test_label, n, rng, n_same=TABLE1_SAME,
                         n_other=TABLE1_OTHER):
    """Training-sample indices of one draw of the paper's Table 1 protocol, for one test sample.

    synced_j: (N_train,) bool, the training samples long-term synchronized with the test sample;
    train_labels: (N_train,); test_label: its class c. Returns three int64 arrays of n indices:

    * "with_synced": n_same synchronized samples of class c and n_other of other classes, drawn at
      random among the synchronized ones, plus n - n_same - n_other samples drawn from the
      training samples not synchronized;
    * "without_synced": n samples drawn from the training samples not synchronized;
    * "control": as "with_synced", with the n_same + n_other synchronized samples replaced by as
      many not-synchronized samples of the same class mix (n_same of class c, n_other of others),
      so that it differs from "with" only in synchronization, not in the share of class c.

    Raises :class:`NotEnoughSynchronized` when fewer than n_same (n_other) synchronized samples
    of class c (of other classes) exist, ValueError when n is too small or too large.
    """
    synced_j = np.asarray(synced_j, dtype=bool)
    train_labels = np.asarray(train_labels)
    if synced_j.ndim != 1 or train_labels.shape != synced_j.shape:
        raise ValueError(f"synced_j and train_labels must be 1-D of one length, got {synced_j.shape} "
                         f"and {train_labels.shape}")
    n, n_fixed = int(n), int(n_same) + int(n_other)
    same_class = train_labels == test_label
    pools = {"synced same": np.flatnonzero(synced_j & same_class),
             "synced other": np.flatnonzero(synced_j & ~same_class),
             "free same": np.flatnonzero(~synced_j & same_class),
             "free other": np.flatnonzero(~synced_j & ~same_class)}
    for group, need in (("same", n_same), ("other", n_other)):
        if pools[f"synced {group}"].size < need:
            raise NotEnoughSynchronized(
                f"{pools[f'synced {group}'].size} synchronized samples of "
                f"{'its class' if group == 'same' else 'other classes'}, the protocol needs {need}")
    free = np.flatnonzero(~synced_j)
    if not n_fixed <= n <= free.size:
        raise ValueError(f"n must be in {n_fixed}..{free.size} (the synchronized samples put in, the "
                         f"samples not synchronized), got {n}")
    without = rng.choice(free, n, replace=False)
    rest = without[:n - n_fixed]  # the random part shared by with and control
    chosen = np.concatenate([rng.choice(pools["synced same"], n_same, replace=False),
                             rng.choice(pools["synced other"], n_other, replace=False)])
    # stand-ins of the control: same class mix, outside the shared random part
    outside = np.ones(synced_j.size, dtype=bool)
    outside[rest] = False
    stand_in_pools = [pools["free same"][outside[pools["free same"]]],
                      pools["free other"][outside[pools["free other"]]]]
    if stand_in_pools[0].size < n_same or stand_in_pools[1].size < n_other:
        raise ValueError(f"too few samples outside the draw to stand in for the synchronized ones in the "
                         f"control ({stand_in_pools[0].size} of the class, {stand_in_pools[1].size} of others): "
                         f"n={n} is too large for {synced_j.size} training samples")
    stand_ins = np.concatenate([rng.choice(pool, size, replace=False)
                                for pool, size in zip(stand_in_pools, (n_same, n_other))])
    return {"with_synced": np.concatenate([rest, chosen]), "without_synced": without,
            "control": np.concatenate([rest, stand_ins])}


def binary_probe(train_features, train_labels, test_features, test_labels, synced_j, j, n,
                 repeats=20, seed=0, svc_params=None, n_same=TABLE1_SAME, n_other=TABLE1_OTHER):
    """Accuracy of the paper's binary SVM on test sample j, with and without its synchronized samples.

    train_features (N_train, D), train_labels (N_train,), test_features (M, D), test_labels (M,);
    synced_j: (N_train,) bool, the training samples long-term synchronized with test sample j.
    Each repeat draws the sets of :func:`table1_training_sets`, fits an SVM (scikit-learn ``SVC``)
    per set on the targets "class == test_labels[j]", and asks it whether j is of that class (the
    right answer is yes). Returns {"with_synced", "without_synced", "control"}: the fraction of
    the repeats answered correctly. Raises :class:`NotEnoughSynchronized` like the sampler.
    """
    train_features, train_labels, test_features, test_labels = _check_features(
        train_features, train_labels, test_features, test_labels)
    if not 0 <= int(j) < len(test_labels):
        raise ValueError(f"j must index one of the {len(test_labels)} test samples, got {j}")
    check("repeats", repeats, Int(1))
    rng = np.random.default_rng(seed)
    target = train_labels == test_labels[j]  # binary targets: is the training sample of class c
    correct = {"with_synced": 0, "without_synced": 0, "control": 0}
    for _ in range(int(repeats)):  # a few dozen SVM fits on at most a few hundred samples
        sets = table1_training_sets(synced_j, train_labels, test_labels[j], n, rng, n_same, n_other)
        for name, rows in sets.items():
            correct[name] += bool(fit_predict(train_features[rows], target[rows],
                                              test_features[j:j + 1], svc_params)[0])
    return {name: hits / int(repeats) for name, hits in correct.items()}
