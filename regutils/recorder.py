"""A recorder for any PyTorch training loop: the engine's record of every sample, from a user's own loop.

    from regutils.recorder import Recorder, load_scores_inputs
    rec = Recorder(n_train=len(y_train), n_test=len(y_test), y_train=y_train, y_test=y_test, optimizer=opt)
    for epoch in range(T):
        for idx, x, y in loader:                   # idx: dataset positions of the minibatch
            logits = model(x)                      # train mode
            rec.on_batch(idx, logits, y)           # the minibatch record (Toneva et al.)
            loss = F.cross_entropy(logits, y); opt.zero_grad(); loss.backward(); opt.step()
        rec.on_epoch_end(model, x_train, x_test)   # eval-mode pass over both whole sets
        # or, for a loop that evaluates itself:
        #   rec.on_eval("train", idx, logits); rec.on_eval("test", idx, logits); rec.end_epoch()
    trace = rec.trace(meta={"arch": "mlp"})        # a regutils.trace.Trace
    rec.save("runs/mine.npz")                      # sealed, atomic (regutils.trace.save)
    trace.train_margin, trace.train_el2n           # (T, N) float16, for regutils.scores

What is recorded, with the same semantics as :func:`regutils.train.train_runs` (T epochs,
N training and M test samples):

================  ===============  ===============================================
train_correct     bool (T, N)      eval pass: argmax(logits) == label
test_correct      bool (T, M)
train_prob        float16 (T, N)   eval pass: softmax probability of the label
test_prob         float16 (T, M)
batch_correct     bool (T, N)      train-mode argmax == label at the sample's
                                   presentation in epoch t (:meth:`on_batch`)
batch_step        int32 (T, N)     global optimizer step of that presentation:
                                   the number of :meth:`on_batch` calls before it
                                   (the first minibatch of the run is step 0)
train_margin      float16 (T, N)   eval pass: logit of the label minus the
test_margin       float16 (T, M)   largest other logit (``record_scores``)
train_loss        float16 (T, N)   eval pass: cross-entropy (``record_scores``)
test_loss         float16 (T, M)
train_el2n        float16 (T, N)   eval pass: || softmax - onehot(label) ||_2
test_el2n         float16 (T, M)   (``record_scores``)
================  ===============  ===============================================

The engine (:func:`regutils.train.train_runs`) records through this class too, one recorder per run:
its own checks are skipped there (:meth:`Recorder.record_batch`, :meth:`Recorder.record_eval`), and it
stores the records of each epoch itself (``keep_epochs=False``) to checkpoint them.

A sample not presented in an epoch (a loader that drops its last batch) keeps the engine's
initial values: ``batch_correct`` False and ``batch_step`` -1. A sample presented twice in an
epoch (sampling with replacement) keeps its last presentation. ``history`` holds per epoch
``loss`` (mean train-mode cross-entropy of the presentations; the engine's training loss when
the loop trains on cross-entropy), ``train_acc``, ``test_acc``, ``lr`` (of the optimizer's first
parameter group at the epoch's first minibatch; NaN without ``optimizer``), ``seconds``
(training: from the end of the previous epoch, or the run's first minibatch, to the eval pass)
and ``eval_seconds``.

Differences from the engine: the recorder evaluates the model it is given, where the engine
evaluates a copy with each Conv+BatchNorm pair folded (:func:`regutils.loop.inference_copy`), so
with BatchNorm the probabilities can differ from an engine run in their last bits; the logits are
taken in float32 (no autocast).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import trace as trace_module
from .loop import eval_logits, label_record, run_environment, score_record
from .trace import SCORE_ARRAYS, Trace
from .validation import Int, OneOf, check

SPLITS = ("train", "test")
SCORE_FIELDS = ("margin", "loss", "el2n")  # the trace's SCORE_ARRAYS are <split>_<field>
assert {f"{s}_{f}" for s in SPLITS for f in SCORE_FIELDS} == set(SCORE_ARRAYS)


def _labels(name: str, y, n: int) -> torch.Tensor:
    """``y`` as an int64 CPU tensor of shape (n,), non-negative; ValueError otherwise."""
    t = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y).detach().cpu()
    if t.numel() and (t.dtype == torch.bool or t.is_floating_point() or t.is_complex()):  # [] reads as float
        raise ValueError(f"{name} must hold integer class labels, got dtype {t.dtype}")
    if t.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {tuple(t.shape)}")
    if n and t.min() < 0:
        raise ValueError(f"{name} holds a negative label {int(t.min())}")
    return t.long()


def _optional(name: str, value, n: int, dtype) -> np.ndarray:
    if value is None:
        return np.arange(n, dtype=np.int64) if dtype == np.int64 else np.zeros(n, dtype)
    a = np.asarray(value)
    if a.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {a.shape}")
    return a.astype(dtype)


class Recorder:
    """The per-sample record of a training run, filled by calls from any training loop.

    Parameters
    ----------
    n_train, n_test : int
        Number of training samples N (>= 1) and test samples M (>= 0).
    y_train, y_test : array-like of int, shapes (N,) and (M,)
        Labels the model trains and is tested on, in dataset order (the positions ``idx`` refer to).
    index_train, index_test : array-like of int, optional
        Index of each sample in its source data set (default: 0..N-1, 0..M-1).
    noisy_train : array-like of bool (N,), optional
        Whether a training label was replaced by label noise (default: none).
    optimizer : torch.optim.Optimizer, optional
        Read for ``history['lr']``.
    record_scores : bool, default True
        Also record each sample's eval-mode margin, loss and EL2N (the trace's score arrays).
    keep_epochs : bool, default True
        Keep every epoch's record for :meth:`trace`; False: :meth:`end_epoch` only returns it
        (a loop that stores the records itself, as the engine does).
    """

    def __init__(self, n_train: int, n_test: int, y_train, y_test, *, index_train=None, index_test=None,
                 noisy_train=None, optimizer=None, record_scores: bool = True, keep_epochs: bool = True):
        check("n_train", n_train, Int(1))
        check("n_test", n_test, Int(0))
        self.n = {"train": int(n_train), "test": int(n_test)}
        self.y = {"train": _labels("y_train", y_train, n_train), "test": _labels("y_test", y_test, n_test)}
        self.index = {"train": _optional("index_train", index_train, n_train, np.int64),
                      "test": _optional("index_test", index_test, n_test, np.int64)}
        self.noisy_train = _optional("noisy_train", noisy_train, n_train, bool)
        self.optimizer = optimizer
        self.fields = ("correct", "prob", *(SCORE_FIELDS if record_scores else ()))
        self.keep_epochs = keep_epochs
        self.num_classes: int | None = None
        self.step = 0  # optimizer steps so far: the batch_step of the next minibatch
        self.device = torch.device("cpu")
        self._epochs: list[dict[str, np.ndarray]] = []  # one dict per finished epoch (keep_epochs)
        self.finished = 0  # epochs closed
        self._y_on: dict = {}  # labels moved to a device, once
        self._epoch_start: float | None = None
        self._reset_epoch()

    # ---- the record of the epoch in progress

    def _reset_epoch(self) -> None:
        self._batch = None  # (batch_correct, batch_step) on the logits' device, made at the first on_batch
        self._eval: dict[str, dict | None] = {s: None for s in SPLITS}
        self._loss_sum = None
        self._presented = 0
        self._lr = float("nan")
        self._eval_start: float | None = None

    @property
    def epochs(self) -> int:
        """Epochs recorded so far (finished by :meth:`end_epoch` / :meth:`on_epoch_end`)."""
        return self.finished

    @property
    def in_progress(self) -> bool:
        """Whether calls were recorded since the last epoch ended."""
        return self._batch is not None or any(e is not None for e in self._eval.values())

    def _labels_on(self, split: str, device: torch.device) -> torch.Tensor:
        key = (split, str(device))
        if key not in self._y_on:
            self._y_on[key] = self.y[split].to(device)
        return self._y_on[key]

    def _check_logits(self, logits) -> torch.Tensor:
        if not isinstance(logits, torch.Tensor):
            raise ValueError(f"logits must be a torch.Tensor of shape (B, C), got {type(logits).__name__}")
        if logits.ndim != 2 or logits.shape[1] < 2:
            raise ValueError(f"logits must have shape (B, C) with C >= 2 classes, got {tuple(logits.shape)}")
        if not logits.is_floating_point():
            raise ValueError(f"logits must be floating point, got dtype {logits.dtype}")
        c = logits.shape[1]
        if self.num_classes is None:
            for split in SPLITS:
                if self.n[split] and int(self.y[split].max()) >= c:
                    raise ValueError(f"y_{split} holds label {int(self.y[split].max())}, "
                                     f"but the logits have only {c} classes")
            self.num_classes = c
        elif c != self.num_classes:
            raise ValueError(f"logits have {c} classes, earlier ones had {self.num_classes}")
        return logits.detach()

    def _check_index(self, idx, split: str, b: int, device: torch.device) -> torch.Tensor:
        idx = torch.as_tensor(np.asarray(idx) if not isinstance(idx, torch.Tensor) else idx)
        if idx.dtype == torch.bool or idx.is_floating_point() or idx.is_complex():
            raise ValueError(f"idx must hold integer positions, got dtype {idx.dtype}")
        if idx.shape != (b,):
            raise ValueError(f"idx must have shape ({b},), one position per row of the logits, got {tuple(idx.shape)}")
        n = self.n[split]
        if b and (idx.min() < 0 or idx.max() >= n):
            raise ValueError(f"idx holds positions outside the {split} set's 0..{n - 1}: "
                             f"min {int(idx.min())}, max {int(idx.max())}")
        return idx.to(device=device, dtype=torch.long)

    def _check_given_labels(self, name: str, given, expected: torch.Tensor, split: str) -> None:
        if given is None:
            return
        given = torch.as_tensor(np.asarray(given) if not isinstance(given, torch.Tensor) else given)
        if given.shape != expected.shape:
            raise ValueError(f"{name} must have shape {tuple(expected.shape)} (B,), got {tuple(given.shape)}")
        if not torch.equal(given.to(expected.device, torch.long), expected):
            raise ValueError(f"{name} differs from y_{split} at the positions idx: the recorder records "
                             f"the labels it was given (y_{split}); pass the labels the model trains on")

    # ---- the calls of a training loop

    def on_batch(self, idx, logits: torch.Tensor, y=None) -> None:
        """Record one minibatch of training: the train-mode correctness of each of its samples, and the step.

        Parameters
        ----------
        idx : array-like of int, shape (B,)
            Positions of the minibatch's samples in the training set (0..N-1).
        logits : torch.Tensor, shape (B, C)
            The train-mode forward pass the optimizer steps on (detached here).
        y : array-like of int, shape (B,), optional
            The minibatch's labels; checked against ``y_train[idx]``.

        Call once per optimizer step: each call counts as one step.
        """
        logits = self._check_logits(logits)
        dev = logits.device
        idx = self._check_index(idx, "train", len(logits), dev)
        labels = self._labels_on("train", dev)[idx]
        self._check_given_labels("y", y, labels, "train")
        self.record_batch(idx, logits)
        if self._loss_sum is None:
            self._loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
        self._loss_sum += F.cross_entropy(logits.float(), labels, reduction="sum").double()

    def on_micro_batches(self, parts) -> None:
        """Record the micro-batches of one optimizer step (gradient accumulation) as one :meth:`on_batch`.

        ``parts``: a non-empty sequence of ``(idx, logits, y)``, each as :meth:`on_batch` takes them; the labels
        are checked only when every part carries them (``y`` None in any part: none checked).
        """
        idx, logits, y = zip(*parts)
        self.on_batch(torch.cat([torch.as_tensor(i) for i in idx]), torch.cat(logits),
                      None if any(v is None for v in y) else torch.cat([torch.as_tensor(v) for v in y]))

    def record_batch(self, idx: torch.Tensor, logits: torch.Tensor) -> None:
        """:meth:`on_batch` without its checks: ``idx`` (B,) int64 and ``logits`` (B, C) on one device, detached.

        For a caller that made ``idx`` itself (the engine); nothing leaves the device (no synchronization).
        """
        now = time.perf_counter()
        if self._epoch_start is None:
            self._epoch_start = now
        if self._batch is None:
            self.device = logits.device
            # the engine's initial record: never presented = not correct, step -1
            self._batch = (torch.zeros(self.n["train"], dtype=torch.bool, device=logits.device),
                           torch.full((self.n["train"],), -1, dtype=torch.int32, device=logits.device))
            if self.optimizer is not None:
                self._lr = float(self.optimizer.param_groups[0]["lr"])
        self._batch[0][idx] = logits.argmax(-1) == self._labels_on("train", logits.device)[idx]
        self._batch[1][idx] = self.step
        self._presented += len(idx)
        self.step += 1

    def on_eval(self, split: str, idx, logits: torch.Tensor, labels=None) -> None:
        """Record eval-mode logits of some samples of ``split`` at the end of the epoch.

        Parameters
        ----------
        split : {"train", "test"}
        idx : array-like of int, shape (B,)
            Positions of the samples in ``split`` (0..N-1 or 0..M-1).
        logits : torch.Tensor, shape (B, C)
            The eval-mode logits (the caller puts the model in eval mode).
        labels : array-like of int, shape (B,), optional
            Checked against the split's labels at ``idx``.

        Every sample of both splits must be evaluated before :meth:`end_epoch`.
        """
        check("split", split, OneOf(SPLITS))
        logits = self._check_logits(logits)
        idx = self._check_index(idx, split, len(logits), logits.device)
        self._check_given_labels("labels", labels, self._labels_on(split, logits.device)[idx], split)
        self.record_eval(split, idx, logits)

    def record_eval(self, split: str, idx: torch.Tensor, logits: torch.Tensor) -> None:
        """:meth:`on_eval` without its checks: ``idx`` (B,) int64 positions and float ``logits`` (B, C), one device."""
        if self._eval_start is None:
            self._eval_start = time.perf_counter()
        if self._eval[split] is None:
            n, dev = self.n[split], logits.device
            self._eval[split] = {name: torch.zeros(n, dtype=torch.bool if name == "correct" else torch.float16,
                                                   device=dev) for name in self.fields}
            self._eval[split]["seen"] = torch.zeros(n, dtype=torch.bool, device=dev)
        rec = self._eval[split]
        dev = rec["seen"].device
        idx, logits = idx.to(dev), logits.to(dev).float()  # as the engine: records of the float32 logits
        y = self._labels_on(split, dev)[idx]
        rec["correct"][idx], rec["prob"][idx] = label_record(logits, y)
        if "margin" in rec:
            for name, values in score_record(logits, y).items():
                rec[name][idx] = values
        rec["seen"][idx] = True

    def end_epoch(self, complete: bool = True) -> dict[str, np.ndarray]:
        """Close the epoch and return its record (also kept for :meth:`trace` unless ``keep_epochs=False``).

        Every sample of both splits must have been evaluated; ``complete=False`` lets samples that were
        not keep the initial record (not correct, probability 0: a loop that skips the eval pass).
        The record maps the trace's array names (``train_correct``, ``batch_step``, ...) to this epoch's
        arrays, and ``history.<column>`` to this epoch's history value.
        """
        for split in SPLITS:
            rec, n = self._eval[split], self.n[split]
            seen = 0 if rec is None else int(rec["seen"].sum())
            if complete and seen < n:
                raise ValueError(f"epoch {self.epochs + 1}: {n - seen} of the {n} {split} samples were not "
                                 f"evaluated (on_eval); the record needs every sample at every epoch")
        end = time.perf_counter()
        row: dict[str, np.ndarray] = {}
        for split in SPLITS:
            rec, n = self._eval[split], self.n[split]
            for name in self.fields:
                if rec is None:  # an empty split, or one not evaluated
                    row[f"{split}_{name}"] = np.zeros(n, bool if name == "correct" else np.float16)
                else:
                    row[f"{split}_{name}"] = rec[name].cpu().numpy()
        if self._batch is None:
            row["batch_correct"] = np.zeros(self.n["train"], bool)
            row["batch_step"] = np.full(self.n["train"], -1, np.int32)
        else:
            row["batch_correct"], row["batch_step"] = (t.cpu().numpy() for t in self._batch)
        eval_start = self._eval_start if self._eval_start is not None else end
        train_start = self._epoch_start if self._epoch_start is not None else eval_start
        loss = float(self._loss_sum) / self._presented if self._loss_sum is not None and self._presented else float("nan")
        history = {
            "loss": loss,
            "train_acc": float(row["train_correct"].mean()),
            "test_acc": float(row["test_correct"].mean()) if self.n["test"] else float("nan"),
            "lr": self._lr, "seconds": eval_start - train_start, "eval_seconds": end - eval_start,
        }
        row.update({f"history.{k}": np.float64(v) for k, v in history.items()})
        if self.keep_epochs:
            self._epochs.append(row)
        self.finished += 1
        self._reset_epoch()
        self._epoch_start = time.perf_counter()  # the next epoch's training starts now
        return row

    def on_epoch_end(self, model: torch.nn.Module, x_train: torch.Tensor, x_test: torch.Tensor | None = None,
                     batch_size: int | None = None) -> None:
        """Evaluate ``model`` on both whole sets in eval mode, record the epoch and close it (:meth:`end_epoch`).

        Parameters
        ----------
        model : torch.nn.Module
            Maps a batch (B, ...) to logits (B, C). Evaluated in eval mode under ``torch.no_grad()``;
            every submodule's train/eval mode is restored afterwards.
        x_train : torch.Tensor, shape (N, ...)
            All training inputs in dataset order (without augmentation); batches move to the
            device of the model's parameters.
        x_test : torch.Tensor, shape (M, ...), optional when M = 0
        batch_size : int, optional
            Samples per forward pass; None: as :func:`regutils.loop.evaluate` (2**16 values per batch on the
            CPU, at most 1024).
        """
        check("batch_size", batch_size, Int(1, none=True))
        inputs = {"train": x_train, "test": x_test}
        for split, x in inputs.items():
            if x is None and self.n[split] == 0:
                continue
            if not isinstance(x, torch.Tensor) or len(x) != self.n[split]:
                got = f"length {len(x)}" if isinstance(x, torch.Tensor) else type(x).__name__
                raise ValueError(f"x_{split} must be a tensor of the {self.n[split]} {split} samples, got {got}")
        param = next(model.parameters(), None)
        dev = param.device if param is not None else None
        modes = [m.training for m in model.modules()]
        try:
            for split, x in inputs.items():
                if x is None or len(x) == 0:
                    continue
                x = x.to(dev) if dev is not None else x
                for start, logits in eval_logits(model, x, batch_size):
                    self.on_eval(split, torch.arange(start, start + len(logits)), logits)
        finally:
            for m, mode in zip(model.modules(), modes):  # each submodule's own mode (frozen BatchNorm stays frozen)
                m.training = mode
        self.end_epoch()

    # ---- the run's record

    def _stacked(self, name: str) -> np.ndarray:
        if not self._epochs:
            raise ValueError("no epoch recorded yet: call on_epoch_end (or on_eval ... end_epoch) first"
                             if self.keep_epochs else "this recorder keeps no epochs (keep_epochs=False)")
        return np.stack([e[name] for e in self._epochs])

    def trace(self, meta: dict | None = None) -> Trace:
        """The run's :class:`regutils.trace.Trace` (the engine's format), with ``meta`` added to its metadata."""
        if self.in_progress:
            raise ValueError(f"epoch {self.epochs + 1} is in progress: close it with on_epoch_end or end_epoch "
                             "before taking the trace")
        arrays = {f"{s}_{f}": self._stacked(f"{s}_{f}") for s in SPLITS for f in self.fields}
        history = {k.split(".", 1)[1]: self._stacked(k) for k in self._epochs[0] if k.startswith("history.")}
        info = {
            "recorder": {"steps": self.step, "num_classes": self.num_classes},
            "environment": run_environment(self.device),
            "train_seconds": float(history["seconds"].sum()), "eval_seconds": float(history["eval_seconds"].sum()),
            "final_train_acc": float(history["train_acc"][-1]), "final_test_acc": float(history["test_acc"][-1]),
        }
        return Trace(**arrays, batch_correct=self._stacked("batch_correct"), batch_step=self._stacked("batch_step"),
                     y_train=self.y["train"].numpy(), y_test=self.y["test"].numpy(),
                     index_train=self.index["train"], index_test=self.index["test"], noisy_train=self.noisy_train,
                     history=history, meta={**info, **(meta or {})})

    def save(self, path: str | Path, key: str | None = None, meta: dict | None = None) -> Path:
        """Write :meth:`trace` with :func:`regutils.trace.save`: sealed for ``key`` (default: the file name), atomic."""
        return trace_module.save(self.trace(meta), path, key)
