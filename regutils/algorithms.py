"""Algorithms compared on a test set, and how well a small test subset ranks them (paper section 4.2).

Every algorithm is reduced to one vector: its correctness on each test sample
(a float in [0, 1]; for a deep network, the final-epoch eval-mode correctness
averaged over runs). Accuracies on the full test set or on any subset, and the
rankings they induce, follow from these vectors::

    from regutils import algorithms, sampling
    correct = {name: algorithms.per_sample_correct(est, x_tr, y_tr, x_te, y_te)
               for name, est in algorithms.sklearn_zoo(seed=0).items()}
    correct["small_cnn"] = algorithms.final_correct(runs.test_correct)     # (R, T, N) -> (N,)
    subset = sampling.balanced_subset(bins, n=30, seed=0)
    algorithms.accuracy_table(correct, {"full": None, "subset": subset})   # accuracies and ranks
    draws = [sampling.equal_share_subset(sectors, 400, 10, seed=k) for k in range(20)]
    algorithms.subset_agreement(correct, draws)      # Spearman and mAP of each draw against the full set
    algorithms.subset_accuracies(correct, draws)     # (draws, algorithms) accuracies
    curve = algorithms.subset_agreement_curve(correct, bins, ns=(5, 10, 30), seeds=range(20))
    summary = algorithms.summarize_curve(curve)      # mean and band over seeds, balanced vs random subsets
    algorithms.best_n(summary)                       # the n whose subsets rank best on average
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from . import sampling, stats

SKLEARN_NAMES = ("SVM", "decision tree", "logistic regression", "KNN", "MLP", "random forest")
SUBSET_METHODS = ("balanced", "random")


def sklearn_zoo(seed=0) -> dict:
    """Unfitted scikit-learn classifiers (name -> estimator), seeded where they draw random numbers.

    Scale-sensitive models (SVM, logistic regression, MLP) standardize each feature first.
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    zoo = {
        "SVM": make_pipeline(StandardScaler(), SVC(kernel="rbf", gamma="scale", random_state=seed)),
        "decision tree": DecisionTreeClassifier(random_state=seed),
        "logistic regression": make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
        "KNN": KNeighborsClassifier(n_neighbors=5),
        # early stopping on a held-out 10 %: bounded time on large inputs
        "MLP": make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(128,), early_stopping=True,
                                                             max_iter=300, random_state=seed)),
        "random forest": RandomForestClassifier(n_estimators=100, random_state=seed),
    }
    return zoo


def flatten(x) -> np.ndarray:
    """(N, ...) images (numpy array or torch tensor) -> float32 (N, D) feature rows."""
    x = x.numpy() if hasattr(x, "numpy") else np.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"x must have a sample axis and features, got shape {x.shape}")
    return x.reshape(len(x), -1).astype(np.float32, copy=False)


def per_sample_correct(estimator, x_tr, y_tr, x_te, y_te, blas_threads=1) -> np.ndarray:
    """Bool (N_test,): whether a fresh clone of `estimator`, fitted on the training set, gets each test sample.

    x_tr, x_te: (N, ...) inputs, flattened to feature rows; y_tr, y_te: integer labels.
    `estimator` itself stays unfitted. blas_threads: BLAS threads while fitting (None: leave the
    setting alone). One is the default because the small matrices of these models gain little
    from more, and threads that compete for busy cores made the MLP ten times slower.
    """
    from sklearn.base import clone
    from threadpoolctl import threadpool_limits

    x_tr, x_te = flatten(x_tr), flatten(x_te)
    y_tr, y_te = np.asarray(y_tr), np.asarray(y_te)
    if y_tr.shape != (len(x_tr),) or y_te.shape != (len(x_te),):
        raise ValueError(f"labels must be (N,) matching the inputs: x_tr {x_tr.shape}, y_tr {y_tr.shape}, "
                         f"x_te {x_te.shape}, y_te {y_te.shape}")
    if x_tr.shape[1] != x_te.shape[1]:
        raise ValueError(f"x_tr and x_te have different feature counts: {x_tr.shape[1]} and {x_te.shape[1]}")
    with threadpool_limits(limits=blas_threads, user_api="blas"):
        fitted = clone(estimator).fit(x_tr, y_tr)
        return fitted.predict(x_te) == y_te


SKLEARN_MAX_TRAIN = 10_000  # kernel SVMs grow with the square of the training set: a share beyond this size


def sklearn_correct(names, data_config, arch: str, train_size: int | None = None, seed: int = 0):
    """Which test samples each scikit-learn model of :func:`sklearn_zoo` gets right.

    Each model is fitted on the flattened, normalized training images of ``data_config`` (as
    :func:`regutils.loop.load_for` gives them to ``arch``), or on a stratified share of
    ``train_size`` of them (None: all, at most :data:`SKLEARN_MAX_TRAIN`); the test set is the
    same whatever the share.

    Returns
    -------
    correct : dict name -> bool ndarray (N_test,)
    n_fit : int, the training samples the models were fitted on
    """
    from dataclasses import replace

    from .loop import load_for
    from .validation import is_int

    zoo = sklearn_zoo(seed=seed)
    unknown = set(names) - set(zoo)
    if unknown:
        raise ValueError(f"unknown scikit-learn models {sorted(unknown)}; allowed: {', '.join(zoo)}")
    if train_size is not None and not (is_int(train_size) and train_size >= 2):
        raise ValueError(f"train_size={train_size!r} must be an integer >= 2 or None")
    full = load_for(data_config, arch)
    n_fit = min(len(full.y_train), train_size or SKLEARN_MAX_TRAIN)
    share = full if n_fit == len(full.y_train) else load_for(replace(data_config, train_size=n_fit), arch)
    if not np.array_equal(share.index_test, full.index_test):
        raise RuntimeError("the training share changed the test set")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence notices of the MLP and logistic regression
        correct = {name: per_sample_correct(zoo[name], share.x_train, share.y_train, full.x_test, full.y_test)
                   for name in names}
    return correct, n_fit


def final_correct(test_correct) -> np.ndarray:
    """Float64 (N,): correctness at the last epoch of a (..., T, N) record, averaged over the run axes."""
    test_correct = np.asarray(test_correct)
    if test_correct.ndim < 2:
        raise ValueError(f"test_correct must have shape (..., T, N), got {test_correct.shape}")
    last = test_correct[..., -1, :]
    return last.reshape(-1, last.shape[-1]).mean(axis=0, dtype=np.float64)


def _as_matrix(correct_by_algorithm):
    """(names, (K, N) float64 matrix) from a mapping name -> (N,) or a (K, N) array."""
    if isinstance(correct_by_algorithm, dict):
        names = list(correct_by_algorithm)
        rows = [np.asarray(v, dtype=np.float64) for v in correct_by_algorithm.values()]
        if len({r.shape for r in rows}) > 1:
            raise ValueError("every algorithm's correctness must have the same shape (N,), got "
                             f"{ {n: r.shape for n, r in zip(names, rows)} }")
        matrix = np.stack(rows) if rows else np.empty((0, 0))
    else:
        matrix = np.asarray(correct_by_algorithm, dtype=np.float64)
        names = [str(k) for k in range(len(matrix))]
    if matrix.ndim != 2 or matrix.shape[0] < 2:
        raise ValueError(f"need at least 2 algorithms with (N,) correctness each, got shape {matrix.shape}")
    if ((matrix < 0) | (matrix > 1)).any() or not np.isfinite(matrix).all():
        raise ValueError("correctness must lie in [0, 1]")
    return names, matrix


def accuracy_table(correct_by_algorithm, subsets: dict) -> pd.DataFrame:
    """Accuracy and rank (1 = best, ties share the best rank) of every algorithm on every subset.

    subsets: name -> indices into the test set (None: the full set). Columns are
    ``accuracy (<name>)`` and ``rank (<name>)`` for each subset, in the given order; the index
    holds the algorithm names.
    """
    names, matrix = _as_matrix(correct_by_algorithm)
    columns = {}
    for label, idx in subsets.items():
        acc = matrix.mean(axis=1) if idx is None else matrix[:, np.asarray(idx, dtype=np.int64)].mean(axis=1)
        columns[f"accuracy ({label})"] = acc
        columns[f"rank ({label})"] = pd.Series(acc).rank(ascending=False, method="min").astype(int).to_numpy()
    return pd.DataFrame(columns, index=pd.Index(names, name="algorithm"))


def subset_accuracies(correct_by_algorithm, subsets) -> pd.DataFrame:
    """Accuracy of every algorithm (columns, in the given order) on each subset (rows, 0 .. D - 1).

    subsets: a sequence of D index arrays into the test set.
    """
    names, matrix = _as_matrix(correct_by_algorithm)
    rows = [matrix[:, np.asarray(idx, dtype=np.int64)].mean(axis=1) for idx in subsets]
    if not rows:
        raise ValueError("subsets must not be empty")
    return pd.DataFrame(rows, columns=pd.Index(names, name="algorithm"))


def subset_agreement(correct_by_algorithm, subsets) -> pd.DataFrame:
    """Agreement of the ranking by accuracy on each subset with the ranking on the full test set.

    subsets: a sequence of D index arrays. Returns D rows with columns size, spearman, map
    (:func:`regutils.stats.ranking_agreement`); spearman is nan where every algorithm has the same
    accuracy on the subset.
    """
    _, matrix = _as_matrix(correct_by_algorithm)
    full_acc = matrix.mean(axis=1)
    accuracies = subset_accuracies(matrix, subsets).to_numpy()
    rows = [{"size": np.asarray(idx).size, **_agreement(full_acc, acc)} for idx, acc in zip(subsets, accuracies)]
    return pd.DataFrame(rows, columns=["size", "spearman", "map"])


def best_n(summary: pd.DataFrame, metric="spearman", method="balanced") -> int:
    """The n of :func:`summarize_curve` with the highest mean `metric` for `method`; the smallest such n on a tie."""
    if metric not in ("spearman", "map"):
        raise ValueError(f"metric must be 'spearman' or 'map', got {metric!r}")
    rows = summary[summary.method == method].sort_values("n")
    if rows.empty:
        raise ValueError(f"summary has no rows for method {method!r}")
    means = rows[f"{metric}_mean"].to_numpy()
    if np.isnan(means).all():
        raise ValueError(f"every mean {metric} is nan")
    return int(rows.n.to_numpy()[np.nanargmax(means)])


def _agreement(full_acc, sub_acc):
    with warnings.catch_warnings():  # a subset on which all algorithms tie: rho undefined (nan)
        warnings.simplefilter("ignore")
        return stats.ranking_agreement(full_acc, sub_acc)


def subset_agreement_curve(correct_by_algorithm, bins, ns, seeds, take_all=(sampling.LEFT_AXIS,),
                           random_baseline=True) -> pd.DataFrame:
    """Agreement of the subset ranking of algorithms with the full-set ranking, per n and seed.

    correct_by_algorithm: name -> (N,) correctness (or a (K, N) array); bins: (N,) labels of
    :func:`regutils.sampling.angular_bins`. For each n in `ns` and each seed, the balanced subset
    ``sampling.balanced_subset(bins, n, seed, take_all)`` is drawn and, with `random_baseline`, a
    uniform random subset of the same size (without replacement, from
    ``numpy.random.default_rng([seed, n])``). Each ranks the algorithms by their accuracy on it,
    compared with the ranking by full-set accuracy through :func:`regutils.stats.ranking_agreement`.

    Returns a tidy DataFrame with columns method ("balanced" or "random"), n, seed, size,
    spearman, map. spearman is nan when every algorithm has the same accuracy on the subset.
    """
    _, matrix = _as_matrix(correct_by_algorithm)
    bins = np.asarray(bins)
    if bins.shape != (matrix.shape[1],):
        raise ValueError(f"bins must be (N,) = ({matrix.shape[1]},), got {bins.shape}")
    ns, seeds = list(ns), list(seeds)
    if not ns or not seeds:
        raise ValueError("ns and seeds must not be empty")
    full_acc = matrix.mean(axis=1)
    rows = []
    for n in ns:  # a few n times a few tens of seeds: each draw is vectorized
        for seed in seeds:
            subset = sampling.balanced_subset(bins, n, seed=seed, take_all=take_all)
            drawn = {"balanced": subset}
            if random_baseline:
                rng = np.random.default_rng([seed, n])
                drawn["random"] = rng.choice(bins.size, size=subset.size, replace=False)
            for method, idx in drawn.items():
                agreement = _agreement(full_acc, matrix[:, idx].mean(axis=1))
                rows.append({"method": method, "n": n, "seed": seed, "size": idx.size, **agreement})
    return pd.DataFrame(rows, columns=["method", "n", "seed", "size", "spearman", "map"])


def summarize_curve(curve: pd.DataFrame, band=(0.1, 0.9)) -> pd.DataFrame:
    """Mean and quantile band over seeds of :func:`subset_agreement_curve`, per method and n.

    band: the (low, high) quantiles. Columns: method, n, size (mean over seeds), spearman_mean,
    spearman_low, spearman_high, map_mean, map_low, map_high, undefined (seeds with nan Spearman,
    left out of the Spearman statistics).
    """
    low_q, high_q = band
    if not 0 <= low_q <= high_q <= 1:
        raise ValueError(f"band must be quantiles 0 <= low <= high <= 1, got {band!r}")
    grouped = curve.groupby(["method", "n"], sort=True)
    out = grouped["size"].mean().to_frame("size")
    for col in ("spearman", "map"):
        out[f"{col}_mean"] = grouped[col].mean()
        out[f"{col}_low"] = grouped[col].quantile(low_q)
        out[f"{col}_high"] = grouped[col].quantile(high_q)
    out["undefined"] = grouped["spearman"].apply(lambda s: int(s.isna().sum()))
    return out.reset_index()
