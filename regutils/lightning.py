"""Record a Lightning run: a callback that feeds :class:`regutils.recorder.Recorder` from ``lightning.pytorch.Trainer``.

    pip install "regutils[lightning]"

    class Net(lightning.pytorch.LightningModule):
        def forward(self, x):                          # (B, ...) -> logits (B, C)
            return self.net(x)

        def training_step(self, batch, batch_idx):
            idx, x, y = batch                          # idx: the samples' positions in the training set
            logits = self(x)
            return {"loss": F.cross_entropy(logits, y), "logits": logits, "idx": idx, "y": y}

    callback = RecorderCallback(x_train, y_train, x_test, y_test, path="runs/mine.npz")
    lightning.pytorch.Trainer(max_epochs=3, callbacks=[callback]).fit(Net(), loader)
    callback.recorder.trace()                          # or regutils.trace.load("runs/mine.npz")

The contract: ``training_step`` returns a dict with ``"loss"`` (what Lightning trains on), ``"logits"``
(B, C), the train-mode forward pass of the batch, and ``"idx"`` (B,), the batch's positions in
``x_train`` (0..N-1); ``"y"`` (B,) is optional and checked against ``y_train[idx]``. The module's
``forward`` maps inputs (B, ...) to logits (B, C): at the end of each training epoch the callback
evaluates it on both whole sets in eval mode (:meth:`Recorder.on_epoch_end`).

Optimizer steps: the record's ``batch_step`` counts optimizer steps, read from ``trainer.global_step``.
With gradient accumulation (``accumulate_grad_batches=k``) the k batches of one step are recorded
together, as one minibatch of that step. One optimizer stepping at most once per batch is required:
several optimizers, or several steps in one ``training_step`` under manual optimization, raise
ValueError. One process only (no multi-device strategy): each process would see part of every epoch.

``history['lr']`` is read at the epoch's first recorded step, after Lightning stepped any per-step
(``interval="step"``) scheduler for it; per-epoch schedulers (Lightning's default) are read as they were
during the epoch.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

try:
    from lightning.pytorch import Callback
except ImportError as error:
    raise ImportError('regutils.lightning needs the lightning extra: pip install "regutils[lightning]"') from error

from .recorder import Recorder

REQUIRED = ("logits", "idx")


def step_output(outputs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(idx (B,), detached logits (B, C), y (B,) or None) from the output of ``training_step``; ValueError otherwise."""
    expected = "{'loss': loss, 'logits': logits (B, C), 'idx': dataset positions (B,)}"
    if not isinstance(outputs, Mapping):
        raise ValueError(f"training_step must return a dict {expected}, got {type(outputs).__name__}")
    missing = [k for k in REQUIRED if outputs.get(k) is None]
    if missing:
        # Lightning turns a returned loss tensor into {'loss': ...}: say what it lacks, and what it had
        raise ValueError(f"training_step's output lacks {' and '.join(map(repr, missing))} (it holds "
                         f"{sorted(outputs)}): return {expected} for the recorder")
    if not isinstance(outputs["logits"], torch.Tensor):
        raise ValueError(f"training_step's 'logits' must be a tensor (B, C), got {type(outputs['logits']).__name__}")
    y = outputs.get("y")
    return torch.as_tensor(outputs["idx"]), outputs["logits"].detach(), None if y is None else torch.as_tensor(y)


class RecorderCallback(Callback):
    """Records every training and test sample at every epoch of a Lightning fit (see the module docstring).

    Parameters
    ----------
    x_train : torch.Tensor, shape (N, ...)
        All training inputs in dataset order (without augmentation): the eval pass of each epoch.
    y_train : array-like of int, shape (N,)
        Their labels; ``idx`` in the output of ``training_step`` indexes these.
    x_test : torch.Tensor, shape (M, ...)
    y_test : array-like of int, shape (M,)
    path : str or Path, optional
        Where :meth:`on_train_end` writes the trace (:meth:`Recorder.save`); None: no file.
    meta : dict, optional
        Added to the trace's metadata.
    eval_batch_size : int, optional
        Samples per forward pass of the eval pass (:meth:`Recorder.on_epoch_end`).
    index_train, index_test, noisy_train : array-like, optional
        As in :class:`Recorder`.

    Attributes
    ----------
    recorder : Recorder or None
        The record of the latest fit, made when it starts (each fit records one run).
    """

    def __init__(self, x_train: torch.Tensor, y_train, x_test: torch.Tensor, y_test, *,
                 path: str | Path | None = None, meta: dict | None = None, eval_batch_size: int | None = None,
                 index_train=None, index_test=None, noisy_train=None):
        for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
            if not isinstance(x, torch.Tensor) or len(x) != len(y):
                got = f"{len(x)} rows" if isinstance(x, torch.Tensor) else type(x).__name__
                raise ValueError(f"x_{split} must be a tensor with one row per label of y_{split} ({len(y)}), "
                                 f"got {got}")
        self.x_train, self.x_test = x_train, x_test
        self.path, self.meta, self.eval_batch_size = path, meta, eval_batch_size
        self._recorder_args = {"n_train": len(y_train), "n_test": len(y_test), "y_train": y_train, "y_test": y_test,
                               "index_train": index_train, "index_test": index_test, "noisy_train": noisy_train}
        self.recorder: Recorder | None = None
        self._pending: list[tuple] = []  # batches whose optimizer step has not happened yet (gradient accumulation)
        self._step0 = 0  # trainer.global_step when the fit started

    def on_train_start(self, trainer, pl_module) -> None:
        if trainer.world_size > 1:
            raise ValueError(f"the recorder records one process's run; this trainer runs {trainer.world_size} "
                             "processes, each of which sees part of every epoch")
        self.recorder = Recorder(**self._recorder_args,
                                 optimizer=trainer.optimizers[0] if trainer.optimizers else None)
        self._pending = []
        self._step0 = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._pending.append(step_output(outputs))
        new_steps = trainer.global_step - self._step0 - self.recorder.step
        if new_steps == 0:
            return  # accumulating gradients: this batch joins the step of a later one
        if new_steps > 1:
            raise ValueError(f"the trainer took {new_steps} optimizer steps in training batch {batch_idx}; the "
                             "record counts one step per batch (one optimizer, stepping at most once per batch)")
        parts, self._pending = self._pending, []
        self.recorder.on_micro_batches(parts)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._pending:
            raise ValueError(f"epoch {trainer.current_epoch}: {len(self._pending)} training batches ended without "
                             "an optimizer step; their samples cannot be given a step")
        self.recorder.on_epoch_end(pl_module, self.x_train, self.x_test, batch_size=self.eval_batch_size)

    def on_train_end(self, trainer, pl_module) -> None:
        if self.path is not None:
            self.recorder.save(self.path, meta=self.meta)
