"""How much a trained model's loss and prediction move when a sample's input moves.

    from regutils import sensitivity
    model = regutils.train.trained_model(config)           # eval mode
    g = sensitivity.loss_sensitivity(model, x, y)           # (N,) ||dL/dx||_1 per sample
    csr = sensitivity.critical_sample_ratio(model, x, r=0.1, steps=10, step_size=0.025)
    sensitivity.top_share(g, 0.1)                          # share of the total held by the top 10 %
    G = sensitivity.class_sensitivity(model, x, y, num_classes=10, per_class=50)   # (10, 10)
    sensitivity.off_diagonal_share(G)                      # share of G across classes, (K-1)/K when uniform

All follow Arpit et al. (2017). ``loss_sensitivity`` is the L1 norm of the
gradient of the sample's own cross-entropy loss with respect to its input (in
the normalized input units the model sees). Averaged over models taken at
several points of training it gives their ``g_x``.

``class_sensitivity`` is their per-class version: how much the loss of one
class reacts to the input of the training samples of another. One SGD step of
learning rate eta on a sample x' with label y' changes the mean loss
``Lbar_i`` of the class-i samples by ``-eta grad Lbar_i . grad L(x', y')`` to
first order (gradients with respect to the parameters theta); the matrix holds

    G[i, j] = mean over the samples x' of class j of
              || d/dx' ( grad_theta Lbar_i(theta) . grad_theta L(x', y'; theta) ) ||_1,

the L1 norm of the input gradient of that change (divided by eta), for every
class i of the changed loss and every class j of the trained-on sample.

A sample is *critical* when an adversarial example lies within the L-infinity
ball of radius ``r`` around it, i.e. a point whose predicted label differs from
the prediction at the sample. The search here is projected gradient ascent
(PGD with signed steps, starting at the sample) on the cross-entropy of the
prediction at the sample, checking the prediction after every step; Arpit et
al. used a Langevin-style search, so ratios are comparable within this build
only. The search is a lower bound: a sample it does not flip may still be
critical.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .validation import Int, Real, check


def _check_inputs(x: torch.Tensor, batch_size: int) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim < 2:
        raise ValueError(f"x must be a tensor of shape (N, ...), got {type(x).__name__} "
                         f"of shape {getattr(x, 'shape', None)}")
    check("batch_size", batch_size, Int(1))


def _device_of(model: torch.nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _logits(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = model(x)
    return out.to(torch.promote_types(out.dtype, torch.float32))  # at least float32 for the loss


def _check_labels(x: torch.Tensor, y) -> torch.Tensor:
    y = torch.as_tensor(y)
    if y.shape != x.shape[:1]:
        raise ValueError(f"y must have shape ({len(x)},), got {tuple(y.shape)}")
    return y


def loss_sensitivity(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> np.ndarray:
    """``||dL_i/dx_i||_1`` for every sample, float64 ``(N,)``; L_i is the cross-entropy of sample i alone.

    The model is put in eval mode, so a sample's loss depends on its input only
    and summing the losses of a batch gives every sample its own gradient.
    """
    _check_inputs(x, batch_size)
    y = _check_labels(x, y)
    model.eval()
    dev = _device_of(model)
    out = np.empty(len(x))
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size].to(dev).detach().requires_grad_(True)
        yb = y[start:start + batch_size].to(dev)
        loss = F.cross_entropy(_logits(model, xb), yb, reduction="sum")
        (grad,) = torch.autograd.grad(loss, xb)
        out[start:start + len(xb)] = grad.flatten(1).abs().sum(1).double().cpu().numpy()
    return out


def _class_positions(y: np.ndarray, num_classes: int, per_class: int | None, seed: int) -> list[np.ndarray]:
    """Sorted positions of the samples of each class, at most ``per_class`` of each (a seeded choice)."""
    rng = np.random.default_rng(seed)
    positions = [np.flatnonzero(y == k) for k in range(num_classes)]
    if per_class is None:
        return positions
    return [np.sort(rng.choice(p, per_class, replace=False)) if len(p) > per_class else p for p in positions]


def _mean_loss_gradient(model, params, x, y, batch_size: int) -> list[torch.Tensor]:
    """grad_theta of the mean cross-entropy over (x, y), accumulated over batches; zeros for unused parameters."""
    total = [torch.zeros_like(p) for p in params]
    for start in range(0, len(x), batch_size):
        loss = F.cross_entropy(_logits(model, x[start:start + batch_size]), y[start:start + batch_size],
                               reduction="sum") / len(x)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        total = [t + g if g is not None else t for t, g in zip(total, grads)]
    return total


def class_sensitivity(model: torch.nn.Module, x: torch.Tensor, y, num_classes: int, per_class: int | None = None,
                      seed: int = 0, batch_size: int = 250) -> np.ndarray:
    """Per-class loss sensitivity, float64 ``(K, K)``: row i the loss of class i, column j the trained-on class.

    ``G[i, j]`` is the mean, over the samples x' of class j, of
    ``|| d/dx' (grad_theta Lbar_i . grad_theta L(x', y')) ||_1``, where
    ``Lbar_i`` is the mean cross-entropy of the class-i samples: the input
    sensitivity of the first-order change of class i's loss under one SGD step
    on x' (per unit learning rate). Classes are the labels ``y`` (the training
    labels, noisy ones included). ``per_class`` caps the samples of each class,
    a choice drawn with ``seed``, for both the ``Lbar_i`` and the x'; None uses
    all. A class without samples gets a row and column of NaN.

    Double backpropagation in eval mode, where every sample's loss depends on
    its own input only: for a batch of x', ``g = grad_theta sum_k L(x'_k)``
    is built with its graph, and the input gradient of ``g . grad Lbar_i``
    gives every x' its own value, one backward pass per class i.

        G = class_sensitivity(model, data.x_train, data.y_train, num_classes=10, per_class=50)
            sensitivity.off_diagonal_share(G)      # the share that goes across classes
    """
    _check_inputs(x, batch_size)
    y = _check_labels(x, y)
    check("num_classes", num_classes, Int(1))
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(f"y holds labels outside 0..{num_classes - 1} (num_classes={num_classes})")
    check("per_class", per_class, Int(1, none=True))  # None: all samples
    model.eval()
    dev = _device_of(model)
    params = [p for p in model.parameters() if p.requires_grad]
    positions = _class_positions(y.cpu().numpy(), num_classes, per_class, seed)
    present = [i for i, p in enumerate(positions) if len(p)]
    chosen = np.concatenate(positions)
    xs, ys = x[chosen].to(dev).detach(), y[chosen].to(dev)
    bounds = np.cumsum([0] + [len(p) for p in positions])
    directions = {i: _mean_loss_gradient(model, params, xs[bounds[i]:bounds[i + 1]], ys[bounds[i]:bounds[i + 1]],
                                         batch_size) for i in present}

    norms = np.empty((len(chosen), num_classes))  # [sample x', class i of the changed loss]
    for start in range(0, len(chosen), batch_size):
        xb = xs[start:start + batch_size].detach().requires_grad_(True)
        loss = F.cross_entropy(_logits(model, xb), ys[start:start + batch_size], reduction="sum")
        grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
        for n, i in enumerate(present):
            change = sum((g * v).sum() for g, v in zip(grads, directions[i]) if g is not None)
            (gx,) = torch.autograd.grad(change, xb, retain_graph=n < len(present) - 1)
            norms[start:start + len(xb), i] = gx.flatten(1).abs().sum(1).double().cpu().numpy()

    onehot = np.eye(num_classes)[ys.cpu().numpy()][:, present]  # (n, classes present): the class j of each x'
    out = np.full((num_classes, num_classes), np.nan)
    out[np.ix_(present, present)] = norms[:, present].T @ onehot / onehot.sum(0)
    return out


def off_diagonal_share(matrix) -> float:
    """Share of the total of a square non-negative matrix held by its off-diagonal entries, NaN entries skipped.

    For the per-class loss sensitivity: how much of the classes' sensitivity
    goes to the training samples of *other* classes, the patterns shared
    across classes. ``(K - 1) / K`` when every class reacts to all classes
    alike, 0 when each reacts to its own samples only; NaN for an all-zero
    (or all-NaN) matrix.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.size == 0:
        raise ValueError(f"matrix must be square (K, K) with K >= 1, got shape {matrix.shape}")
    if (matrix < 0).any():
        raise ValueError("matrix must be non-negative (NaN allowed for absent classes)")
    total = np.nansum(matrix)
    return float((total - np.nansum(np.diag(matrix))) / total) if total > 0 else float("nan")


def critical_samples(model: torch.nn.Module, x: torch.Tensor, r: float, steps: int = 10,
                     step_size: float | None = None, batch_size: int = 500) -> np.ndarray:
    """Bool ``(N,)``: True where PGD finds a point within ``||x' - x||_inf <= r`` predicted differently.

    ``steps`` signed gradient steps of ``step_size`` (default ``2.5 r / steps``)
    ascend the cross-entropy of the prediction at x, each followed by a
    projection onto the ball; the prediction is checked after every step.
    """
    _check_inputs(x, batch_size)
    check("r", r, Real(0, low_open=True))
    check("steps", steps, Int(1))
    step_size = 2.5 * r / steps if step_size is None else step_size
    check("step_size", step_size, Real(0, low_open=True))
    model.eval()
    dev = _device_of(model)
    out = np.empty(len(x), bool)
    for start in range(0, len(x), batch_size):
        x0 = x[start:start + batch_size].to(dev).detach()
        with torch.no_grad():
            pred0 = model(x0).argmax(1)
        flipped = torch.zeros(len(x0), dtype=torch.bool, device=dev)
        xa = x0.clone()
        for _ in range(steps):
            xa.requires_grad_(True)
            loss = F.cross_entropy(_logits(model, xa), pred0, reduction="sum")
            (grad,) = torch.autograd.grad(loss, xa)
            with torch.no_grad():
                xa = torch.minimum(torch.maximum(xa + step_size * grad.sign(), x0 - r), x0 + r)
                flipped |= model(xa).argmax(1) != pred0
        out[start:start + len(x0)] = flipped.cpu().numpy()
    return out


def critical_sample_ratio(model: torch.nn.Module, x: torch.Tensor, r: float, steps: int = 10,
                          step_size: float | None = None, batch_size: int = 500, samples: int | None = None,
                          seed: int = 0) -> float:
    """Fraction of samples that :func:`critical_samples` flags as critical.

    ``samples``: measure it on a seeded choice of that many of the samples of ``x`` (the same
    choice for every model given the same ``x`` and ``seed``); None: all of them.
    """
    if samples is not None:
        check("samples", samples, Int(1))
        if samples < len(x):
            chosen = np.sort(np.random.default_rng(seed).choice(len(x), samples, replace=False))
            x = x[torch.as_tensor(chosen)]
    return float(critical_samples(model, x, r, steps, step_size, batch_size).mean())


def top_share(values, top: float = 0.1) -> float:
    """Share of the total of non-negative ``values`` held by the largest ``top`` fraction of them.

    ``top`` itself for equal values, near 1 when a few values dominate: how
    concentrated a per-sample quantity such as the loss sensitivity is.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if not 0 < top <= 1:
        raise ValueError(f"top={top} must lie in (0, 1]")
    if values.size == 0 or (values < 0).any():
        raise ValueError("values must be a non-empty array of non-negative numbers")
    k = max(1, int(round(top * values.size)))
    total = values.sum()
    return float(np.sort(values)[::-1][:k].sum() / total) if total > 0 else float(k / values.size)
