"""How much a trained model's loss and prediction move when a sample's input moves.

    from regutils import sensitivity
    model = regutils.train.trained_model(config)           # eval mode
    g = sensitivity.loss_sensitivity(model, x, y)           # (N,) ||dL/dx||_1 per sample
    csr = sensitivity.critical_sample_ratio(model, x, r=0.1, steps=10, step_size=0.025)
    sensitivity.top_share(g, 0.1)                          # share of the total held by the top 10 %

Both follow Arpit et al. (2017). ``loss_sensitivity`` is the L1 norm of the
gradient of the sample's own cross-entropy loss with respect to its input (in
the normalized input units the model sees). Averaged over models taken at
several points of training it gives their ``g_x``.

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


def _check_inputs(x: torch.Tensor, batch_size: int) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim < 2:
        raise ValueError(f"x must be a tensor of shape (N, ...), got {type(x).__name__} "
                         f"of shape {getattr(x, 'shape', None)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batch_size={batch_size!r} must be a positive integer")


def _device_of(model: torch.nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _logits(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = model(x)
    return out.to(torch.promote_types(out.dtype, torch.float32))  # at least float32 for the loss


def loss_sensitivity(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> np.ndarray:
    """``||dL_i/dx_i||_1`` for every sample, float64 ``(N,)``; L_i is the cross-entropy of sample i alone.

    The model is put in eval mode, so a sample's loss depends on its input only
    and summing the losses of a batch gives every sample its own gradient.
    """
    _check_inputs(x, batch_size)
    y = torch.as_tensor(y)
    if y.shape != x.shape[:1]:
        raise ValueError(f"y must have shape ({len(x)},), got {tuple(y.shape)}")
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


def critical_samples(model: torch.nn.Module, x: torch.Tensor, r: float, steps: int = 10,
                     step_size: float | None = None, batch_size: int = 500) -> np.ndarray:
    """Bool ``(N,)``: True where PGD finds a point within ``||x' - x||_inf <= r`` predicted differently.

    ``steps`` signed gradient steps of ``step_size`` (default ``2.5 r / steps``)
    ascend the cross-entropy of the prediction at x, each followed by a
    projection onto the ball; the prediction is checked after every step.
    """
    _check_inputs(x, batch_size)
    if not r > 0:
        raise ValueError(f"r={r} must be positive")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps <= 0:
        raise ValueError(f"steps={steps!r} must be a positive integer")
    step_size = 2.5 * r / steps if step_size is None else step_size
    if not step_size > 0:
        raise ValueError(f"step_size={step_size} must be positive")
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
                          step_size: float | None = None, batch_size: int = 500) -> float:
    """Fraction of samples that :func:`critical_samples` flags as critical."""
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
