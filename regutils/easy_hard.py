"""Easy and hard training examples, how much sets of them overlap, and how alike their images are.

    from regutils import easy_hard
    w = easy_hard.early_window(runs.epochs)                     # the early stage: epochs 1..w
    easy = easy_hard.easy(runs.train_correct, w)                # right at every epoch 1..w of every run
    hard = easy_hard.hard(runs.train_correct, w)                # wrong at every epoch 1..w of every run
    hard = easy_hard.hard(runs.train_correct, stage="final")    # wrong after the last epoch of every run
    hardest = easy_hard.hardest(runs.train_correct, 0.1, labels=y)  # the 10 % with the lowest mean CBTL
    easy_hard.jaccard(easy_a, easy_b)                           # overlap of two index sets
    easy_hard.overlap_coefficient(easy_a, easy_b)               # share of the smaller set in the larger
    easy_hard.mean_pairwise_distance(features[easy], labels=y[easy])

Definitions (from the eval-mode record ``correct`` of shape ``(..., T, N)``),
after Kishida & Nakayama, who call easy the examples "consistently
well-classified at the early training stage" and hard the examples
"misclassified":

* easy (window w): ``acc^t = 1`` for every epoch t = 1..w, in every run;
* hard, ``stage="early"`` (window w): ``acc^t = 0`` for every t = 1..w, in
  every run; ``stage="final"``: ``acc^T = 0`` in every run (the source does
  not say at which stage "misclassified" applies);
* hardest fraction f: the samples with the lowest run-averaged CBTL that
  :func:`regutils.sampling.prune` keeps when it removes the other 1 - f
  (per class when labels are given; ties broken at random under a seed);
  the easiest fraction likewise with the highest.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.distance import pdist

from . import measures, sampling
from .validation import Int, Real, validate_params

EARLY_SHARE = 0.1  # default early stage: the first tenth of training


@validate_params(epochs=Int(1), share=Real(0, 1, low_open=True))
def early_window(epochs: int, share: float = EARLY_SHARE) -> int:
    """The default early stage: the first ``ceil(share * epochs)`` epochs, at least 1."""
    return max(1, int(np.ceil(share * epochs)))


def _window(correct, window) -> np.ndarray:
    """``correct`` as bool ``(R, w, N)``: the epochs 1..window of every run."""
    correct = measures.as_correct_record(correct)
    epochs = correct.shape[-2]
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or not 1 <= window <= epochs:
        raise ValueError(f"window={window!r} must be an integer in [1, {epochs}] (the record has {epochs} epochs)")
    return correct[..., :window, :].reshape(-1, correct.shape[-1])


def easy(correct, window: int) -> np.ndarray:
    """Sorted indices of the samples correct at every epoch 1..``window`` of every run.

    correct: bool ``(T, N)`` or ``(R, T, N)``; window: the early stage, 1 <= window <= T.
    """
    return np.flatnonzero(_window(correct, window).all(axis=0))


def hard(correct, window: int | None = None, stage: str = "early") -> np.ndarray:
    """Sorted indices of the misclassified samples, in every run.

    ``stage="early"``: wrong at every epoch 1..``window``; ``stage="final"``:
    wrong after the last epoch (``window`` must then be None).
    correct: bool ``(T, N)`` or ``(R, T, N)``.
    """
    if stage == "early":
        if window is None:
            raise ValueError("stage='early' needs window= the last epoch of the early stage")
        return np.flatnonzero(~_window(correct, window).any(axis=0))
    if stage == "final":
        if window is not None:
            raise ValueError(f"stage='final' takes no window, got window={window!r}")
        correct = measures.as_correct_record(correct)
        return np.flatnonzero(~correct[..., -1, :].reshape(-1, correct.shape[-1]).any(axis=0))
    raise ValueError(f"stage={stage!r} is unknown; allowed: 'early', 'final'")


def hardest(correct, fraction: float, labels=None, seed: int = 0) -> np.ndarray:
    """Sorted indices of the ``fraction`` of samples with the lowest run-averaged CBTL."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction={fraction} must lie in [0, 1]")
    mean_cbtl = measures.average_over_runs(measures.cbtl(correct))
    # prune(1 - f, "cbtl") removes the highest CBTL first and keeps the lowest: the hardest f
    return sampling.prune(1.0 - fraction, "cbtl", cbtl=mean_cbtl, labels=labels, seed=seed)


def easiest(correct, fraction: float, labels=None, seed: int = 0) -> np.ndarray:
    """Sorted indices of the ``fraction`` of samples with the highest run-averaged CBTL."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction={fraction} must lie in [0, 1]")
    mean_cbtl = measures.average_over_runs(measures.cbtl(correct))
    return sampling.prune(1.0 - fraction, "cbtl", cbtl=-mean_cbtl, labels=labels, seed=seed)


def complement(indices, n: int) -> np.ndarray:
    """Sorted indices of 0..n-1 not in ``indices`` (the training set left after removing them)."""
    keep = np.ones(n, bool)
    keep[np.asarray(indices, dtype=np.int64)] = False
    return np.flatnonzero(keep)


def jaccard(a, b) -> float:
    """|A ∩ B| / |A ∪ B| of two index sets (1.0 for two empty sets)."""
    a, b = np.unique(a), np.unique(b)
    union = len(np.union1d(a, b))
    return 1.0 if union == 0 else len(np.intersect1d(a, b, assume_unique=True)) / union


def overlap_coefficient(a, b) -> float:
    """|A ∩ B| / min(|A|, |B|): the share of the smaller index set inside the larger (1.0 if one is empty).

    Unlike the Jaccard index it is not capped by the ratio of the set sizes, so it
    shows whether a small set (an architecture that learns slowly has few easy
    samples) is nested in a large one.
    """
    a, b = np.unique(a), np.unique(b)
    smaller = min(len(a), len(b))
    return 1.0 if smaller == 0 else len(np.intersect1d(a, b, assume_unique=True)) / smaller


def _pairwise(sets, measure) -> np.ndarray:
    k = len(sets)
    out = np.ones((k, k))
    for i in range(k):
        for j in range(i + 1, k):
            out[i, j] = out[j, i] = measure(sets[i], sets[j])
    return out


def jaccard_matrix(sets) -> np.ndarray:
    """Symmetric ``(K, K)`` matrix of :func:`jaccard` between K index sets."""
    return _pairwise(sets, jaccard)


def overlap_matrix(sets) -> np.ndarray:
    """Symmetric ``(K, K)`` matrix of :func:`overlap_coefficient` between K index sets."""
    return _pairwise(sets, overlap_coefficient)


def _check_sizes(n_a: int, n_b: int, n: int) -> None:
    if not (0 <= n_a <= n and 0 <= n_b <= n and n > 0):
        raise ValueError(f"need 0 <= n_a, n_b <= n and n > 0, got n_a={n_a}, n_b={n_b}, n={n}")


def chance_jaccard(n_a: int, n_b: int, n: int) -> float:
    """Jaccard of two independent uniformly random sets of sizes n_a, n_b out of n, to first order.

    E|A ∩ B| = n_a n_b / n; the ratio E|A ∩ B| / E|A ∪ B| is returned.
    """
    _check_sizes(n_a, n_b, n)
    inter = n_a * n_b / n
    union = n_a + n_b - inter
    return 1.0 if union == 0 else inter / union


def chance_overlap(n_a: int, n_b: int, n: int) -> float:
    """Expected overlap coefficient of two independent uniformly random sets: max(n_a, n_b) / n."""
    _check_sizes(n_a, n_b, n)
    return 1.0 if min(n_a, n_b) == 0 else max(n_a, n_b) / n


def mean_pairwise_distance(features, labels=None) -> float:
    """Mean Euclidean distance over all pairs of distinct rows of ``features`` ``(K, D)``.

    With ``labels``: the mean over classes (with at least two members) of the
    within-class mean, so sets with different class mixes compare fairly.
    NaN when no pair exists.
    """
    features = np.asarray(features, dtype=np.float64)
    if len(features) < 2:  # also an empty set, which cannot be reshaped by -1
        return float("nan")
    features = features.reshape(len(features), -1)
    if labels is None:
        return float(pdist(features).mean()) if len(features) >= 2 else float("nan")
    labels = np.asarray(labels)
    if labels.shape != (len(features),):
        raise ValueError(f"labels must have shape ({len(features)},), got {labels.shape}")
    per_class = [pdist(features[labels == c]).mean() for c in np.unique(labels) if (labels == c).sum() >= 2]
    return float(np.mean(per_class)) if per_class else float("nan")
