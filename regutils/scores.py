"""The other tools' per-sample scores, computed from one record: AUM, EL2N, GraNd, forgetting conventions, data maps.

    from regutils import scores
    from regutils.recorder import Recorder
    a = scores.aum(trace.train_margin)                          # (N,): area under the margin
    a = scores.aum(scores.margin(logits_by_epoch, y_train))     # the same from logits (T, N, C)
    e = scores.el2n(probs_at_epoch, y_train)                    # (N,): from full softmax vectors (R, N, C)
    e = runs.train_el2n[:, epoch - 1].mean(0)                   # the same from runs recorded with scores
    g = scores.grand([model_a, model_b], x_train, y_train)      # (N,): per-sample gradient norms, mean over models
    f = scores.forgetting(trace.batch_correct, never_learned="presentations")   # Toneva et al.'s ranking
    first = scores.first_learned(trace.train_correct)           # .first_correct, .learned_from
    m = scores.data_map(trace.train_prob, trace.train_correct)  # .confidence, .variability, .correctness

Records are laid out as :mod:`regutils.measures` lays them out: ``(..., T, N)``, optional run axes,
T epochs, N samples; acc^t is the correctness at epoch t (1-based) and acc^0 = 0.

==============  =========================================================  ==============================
score           definition (per sample i)                                  source
==============  =========================================================  ==============================
aum             mean over epochs t of the margin z_{y_i}^t - max_{k != y_i}  Pleiss et al. 2020, "Identifying
                z_k^t (logits z)                                            mislabeled data using the area
                                                                            under the margin ranking"
el2n            || softmax(z) - onehot(y_i) ||_2 at one epoch, mean over   Paul et al. 2021, "Deep learning
                runs                                                        on a data diet"
grand           || d loss(x_i, y_i) / d theta ||_2 at the given weights,   Paul et al. 2021
                mean over the models given
forgetting      F_i = sum_t 1[acc^{t-1} = 1 and acc^t = 0]; a never-       Toneva et al. 2019, "An empirical
                learned sample gets the ``never_learned`` value             study of example forgetting"
first_correct   first t with acc^t = 1 (T + 1 if never)                    this book
learned_from    first t with acc^s = 1 for every s >= t (T + 1 if          this book; Toneva et al.'s
                acc^T = 0)                                                  "learned" event
confidence      mean over epochs of the probability of the label           Swayamdipta et al. 2020,
variability     standard deviation (ddof=0) of it over epochs              "Dataset cartography"
correctness     fraction of epochs at which the sample is correct          Swayamdipta et al. 2020
==============  =========================================================  ==============================

Where the record comes from matters: this package's margins and probabilities come from the
eval-mode pass at the end of each epoch (:mod:`regutils.recorder`); the AUM code and Toneva et al.
measure at each minibatch in train mode (the ``batch_correct`` record), the cartography code
after each epoch in eval mode.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from . import measures
from .validation import Int, OneOf, Real, check, validate_params

NEVER_LEARNED = ("zero", "max", "presentations", "inf")


class FirstLearned(NamedTuple):
    """First epochs (1-based) of a record, int64 ``(..., N)`` each."""

    first_correct: np.ndarray
    learned_from: np.ndarray


class DataMap(NamedTuple):
    """Data-map coordinates, float64 ``(..., N)`` each."""

    confidence: np.ndarray
    variability: np.ndarray
    correctness: np.ndarray


def _record(values, name: str) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim < 2:
        raise ValueError(f"{name} must have shape (..., T, N) with ndim >= 2, got shape {values.shape}")
    if values.shape[-2] == 0:
        raise ValueError(f"{name} holds no epoch (T = 0)")
    return values


def _epoch_positions(epochs, n_epochs: int) -> np.ndarray | slice:
    """0-based positions of ``epochs``: None (all), k (the first k), or a sequence of 1-based epochs."""
    if epochs is None:
        return slice(None)
    if isinstance(epochs, (int, np.integer)) and not isinstance(epochs, bool):
        check("epochs", int(epochs), Int(1, n_epochs))
        return slice(0, int(epochs))
    chosen = np.asarray(epochs)
    if chosen.ndim != 1 or chosen.size == 0 or not np.issubdtype(chosen.dtype, np.integer) \
            or chosen.min() < 1 or chosen.max() > n_epochs:
        raise ValueError(f"epochs={epochs!r} must be None, a count in 1..{n_epochs} or a non-empty sequence "
                         f"of 1-based epochs in 1..{n_epochs}")
    return chosen - 1


def margin(logits, labels) -> np.ndarray:
    """Margin of each sample: logit of its label minus the largest logit of another class (Pleiss et al. 2020).

    Parameters
    ----------
    logits : array-like, float, shape (..., N, C), C >= 2
    labels : array-like of int, shape (N,)

    Returns
    -------
    ndarray, float64, shape (..., N)
        Positive exactly where the prediction is the label (without ties).
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = _labels(labels, logits)
    n = logits.shape[-2]
    label_logit = logits[..., np.arange(n), labels]
    others = logits.copy()
    others[..., np.arange(n), labels] = -np.inf  # the label's logit is not a competitor
    return label_logit - others.max(axis=-1)


def _labels(labels, values: np.ndarray) -> np.ndarray:
    """``labels`` checked against the (..., N, C) ``values`` they index."""
    if values.ndim < 2 or values.shape[-1] < 2:
        raise ValueError(f"expected shape (..., N, C) with C >= 2 classes, got shape {values.shape}")
    n, c = values.shape[-2:]
    labels = np.asarray(labels)
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer) or (n and (labels.min() < 0
                                                                                      or labels.max() >= c)):
        raise ValueError(f"labels must be integers in 0..{c - 1} of shape ({n},), got {labels.dtype} "
                         f"of shape {labels.shape}")
    return labels


def aum(margins, epochs=None) -> np.ndarray:
    """Area under the margin (Pleiss et al. 2020): the mean margin over epochs.

    Parameters
    ----------
    margins : array-like, shape (T, N) or (R, T, N)
        Margin of each sample at each epoch: logit of the label minus the largest other logit
        (:meth:`regutils.recorder.Recorder.margins`).
    epochs : None, int or sequence of int
        None: every epoch; k: the first k epochs; a sequence: those 1-based epochs.

    Returns
    -------
    ndarray, float64, shape (N,) or (R, N)
        Low (negative) AUM flags a sample the network learns against its label: a likely mislabel.
    """
    margins = _record(margins, "margins")
    if not np.issubdtype(margins.dtype, np.floating):
        raise ValueError(f"margins must be floating point, got dtype {margins.dtype}")
    picked = margins[..., _epoch_positions(epochs, margins.shape[-2]), :]
    return picked.mean(axis=-2, dtype=np.float64)


@validate_params(epoch=Int(1, none=True))
def el2n(probs_all, labels, epoch: int | None = None) -> np.ndarray:
    """EL2N score (Paul et al. 2021): L2 norm of the error vector softmax(logits) - onehot(label), mean over runs.

    Parameters
    ----------
    probs_all : array-like, float
        Full softmax vectors. With ``epoch`` None: one epoch's, shape (N, C) or (R, N, C). With
        ``epoch`` t: every epoch's, shape (T, N, C) or (R, T, N, C), of which epoch t (1-based)
        is taken (the paper scores early in training, e.g. epoch 20 of 200).
    labels : array-like of int, shape (N,)
    epoch : int, optional

    Returns
    -------
    ndarray, float64, shape (N,)
        In [0, sqrt(2)]: 0 for a confident correct prediction.
    """
    probs = np.asarray(probs_all, dtype=np.float64)
    least = 2 if epoch is None else 3
    if probs.ndim not in (least, least + 1):
        shapes = "(N, C) or (R, N, C)" if epoch is None else "(T, N, C) or (R, T, N, C) with epoch given"
        raise ValueError(f"probs_all must have shape {shapes}, got shape {probs.shape}")
    if epoch is not None:
        if epoch > probs.shape[-3]:
            raise ValueError(f"epoch={epoch} is beyond the {probs.shape[-3]} epochs of probs_all")
        probs = probs[..., epoch - 1, :, :]
    labels = _labels(labels, probs)
    n = probs.shape[-2]
    if not np.allclose(probs.sum(-1), 1, atol=1e-2):  # float16 vectors sum to 1 within about 1e-3
        raise ValueError("probs_all rows must be probability vectors summing to 1 (apply softmax to logits)")
    error = probs.copy()
    error[..., np.arange(n), labels] -= 1.0
    norms = np.linalg.norm(error, axis=-1)
    return norms.reshape(-1, n).mean(axis=0)


def grand(models, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256, loss_fn=None) -> np.ndarray:
    """GraNd score (Paul et al. 2021): norm of the per-sample gradient of the loss w.r.t. all parameters.

    Parameters
    ----------
    models : torch.nn.Module or sequence of them
        The networks at the weights to score at (the paper: early in training, several seeds).
        Each is evaluated in eval mode (BatchNorm on its running statistics, no dropout) and its
        modes are restored; only parameters that require a gradient count.
    x : torch.Tensor, shape (N, ...)
    y : torch.Tensor of int, shape (N,)
    batch_size : int
        Samples per vectorized gradient (``torch.func.vmap(grad(...))``).
    loss_fn : callable(logits (1, C), y (1,)) -> scalar, optional
        Default: cross-entropy.

    Returns
    -------
    ndarray, float64, shape (N,)
        The mean over ``models`` of ||grad_theta loss(x_i, y_i)||_2.
    """
    from torch.func import functional_call, grad, vmap

    models = [models] if isinstance(models, torch.nn.Module) else list(models)
    if not models:
        raise ValueError("grand needs at least one model")
    check("batch_size", batch_size, Int(1))
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"y must have shape ({len(x)},), one label per input, got {tuple(y.shape)}")
    loss_fn = loss_fn or F.cross_entropy
    total = torch.zeros(len(x), dtype=torch.float64)
    for model in models:
        params = {k: p.detach() for k, p in model.named_parameters() if p.requires_grad}
        frozen = {k: p.detach() for k, p in model.named_parameters() if not p.requires_grad}
        buffers = dict(model.named_buffers())
        if not params:
            raise ValueError(f"{type(model).__name__} has no parameter that requires a gradient")
        dev = next(iter(params.values())).device

        def loss_one(p, xi, yi):
            logits = functional_call(model, (p, frozen, buffers), (xi[None],))
            return loss_fn(logits, yi[None])

        per_sample = vmap(grad(loss_one), in_dims=(None, 0, 0))
        modes = [m.training for m in model.modules()]
        model.eval()
        try:
            for start in range(0, len(x), batch_size):
                xb, yb = x[start:start + batch_size].to(dev), y[start:start + batch_size].to(dev)
                grads = per_sample(params, xb, yb)  # name -> (B, *shape)
                squares = sum(g.double().pow(2).flatten(1).sum(1) for g in grads.values())
                total[start:start + len(xb)] += squares.sqrt().cpu()
        finally:
            for m, mode in zip(model.modules(), modes):
                m.training = mode
    return (total / len(models)).numpy()


def _never_learned_value(never_learned, n_epochs: int):
    if isinstance(never_learned, str):
        check("never_learned", never_learned, OneOf(NEVER_LEARNED))
        return {"zero": 0, "max": n_epochs, "presentations": n_epochs, "inf": np.inf}[never_learned]
    check("never_learned", never_learned, Real(0))
    return never_learned


def forgetting(correct, never_learned="zero") -> np.ndarray:
    """Forgetting events per sample, with the never-learned convention explicit.

    Parameters
    ----------
    correct : array-like of bool or 0/1, shape (T, N) or (R, T, N)
        ``train_correct`` (eval pass) or ``batch_correct`` (Toneva et al.'s per-minibatch record).
    never_learned : {"zero", "max", "presentations", "inf"} or a number >= 0
        Value given to a sample never correct at any epoch:

        - "zero": 0, this book's definition (no event can happen);
        - "max" / "presentations": T, the number of epochs, i.e. of presentations of the sample
          (Toneva et al.'s; above any reachable count, at most floor(T / 2));
        - a number (e.g. 1000, as some implementations use);
        - "inf": ``np.inf``.

    Returns
    -------
    ndarray, shape (N,) or (R, N)
        int64, or float64 for "inf" and non-integer numbers. The events are counted by
        :func:`regutils.measures.forgetting_events`.
    """
    correct = measures.as_correct_record(correct)
    value = _never_learned_value(never_learned, correct.shape[-2])
    events = measures.forgetting_events(correct, never_learned="zero")
    if np.isinf(value) or not float(value).is_integer():
        events = events.astype(np.float64)
    events[~correct.any(axis=-2)] = value
    return events


def first_learned(correct) -> FirstLearned:
    """First epochs at which each sample is correct, and from which it stays correct.

    Parameters
    ----------
    correct : array-like of bool or 0/1, shape (..., T, N)

    Returns
    -------
    FirstLearned
        ``first_correct``: first t (1-based) with acc^t = 1, T + 1 if never
        (:func:`regutils.measures.first_learned_epoch`); ``learned_from``: first t with
        acc^s = 1 at every s >= t, T + 1 if the sample is wrong at the last epoch. Each int64 (..., N).
    """
    correct = measures.as_correct_record(correct)
    n_epochs = correct.shape[-2]
    # correct at t and at every later epoch: a cumulative AND from the last epoch backwards
    stays = np.flip(np.logical_and.accumulate(np.flip(correct, -2), axis=-2), -2)
    learned_from = n_epochs + 1 - np.count_nonzero(stays, axis=-2)
    return FirstLearned(measures.first_learned_epoch(correct), learned_from.astype(np.int64))


def data_map(probs, correct) -> DataMap:
    """Dataset-cartography coordinates (Swayamdipta et al. 2020) of each sample.

    Parameters
    ----------
    probs : array-like, shape (..., T, N)
        Probability of the label at each epoch (``trace.train_prob``).
    correct : array-like of bool, shape (..., T, N)
        Correctness at each epoch (``trace.train_correct``).

    Returns
    -------
    DataMap
        ``confidence`` (mean of ``probs`` over epochs), ``variability`` (its standard deviation,
        ddof=0; :func:`regutils.measures.data_maps`) and ``correctness`` (fraction of epochs
        correct), each float64 (..., N).
    """
    probs = _record(probs, "probs")
    correct = measures.as_correct_record(correct)
    if correct.shape != probs.shape:
        raise ValueError(f"probs and correct must have one shape, got {probs.shape} and {correct.shape}")
    confidence, variability = measures.data_maps(probs)
    return DataMap(confidence, variability, correct.mean(axis=-2, dtype=np.float64))
