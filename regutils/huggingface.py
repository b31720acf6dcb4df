"""Record a Hugging Face ``transformers.Trainer`` run: a callback that feeds :class:`regutils.recorder.Recorder`.

    pip install "regutils[huggingface]"

    class Digits(torch.utils.data.Dataset):            # every item carries its position under "idx"
        def __getitem__(self, i):
            return {"pixel_values": self.x[i], "labels": self.y[i], "idx": i}

    callback = RecorderCallback(train_set, test_set, y_train, y_test, path="runs/mine.npz")
    args = TrainingArguments("out", remove_unused_columns=False)   # keeps "idx" in the batches
    Trainer(model, args, train_dataset=train_set, callbacks=[callback]).train()
    callback.recorder.trace()                          # or regutils.trace.load("runs/mine.npz")

The contract: each item of the training and test sets is a dict holding, besides the model's
inputs and ``"labels"``, its position in its set under ``"idx"`` (0..N-1, 0..M-1); the model
returns a dict or ``ModelOutput`` with ``"logits"`` (B, C), as every classification model of the
library does. ``TrainingArguments(remove_unused_columns=False)`` keeps ``"idx"`` in the batches (the
Trainer drops the inputs the model's ``forward`` does not name); the model never sees it.

Why hooks: the Trainer hands callbacks no batch and no logits. From ``on_train_begin`` to
``on_train_end`` the callback holds two hooks on the model: a forward pre-hook takes ``"idx"`` out
of the model's inputs, and a forward hook keeps the train-mode logits with those positions (and the
``"labels"``, checked against ``y_train``). ``on_pre_optimizer_step``, when every micro-batch of the
step has been through the model and the optimizer has not stepped yet, hands them to
:meth:`Recorder.on_batch`: one call per optimizer step, so with ``gradient_accumulation_steps=k`` the
k micro-batches are one minibatch of one step, and ``history['lr']`` is the rate the step used. At
``on_epoch_end`` the callback evaluates the model it is handed on both whole sets, in order, in eval
mode, batches of ``per_device_eval_batch_size`` made by ``data_collator``. One process only.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch.utils.data import DataLoader

try:
    from transformers import TrainerCallback, default_data_collator
except ImportError as error:
    raise ImportError('regutils.huggingface needs the huggingface extra: pip install "regutils[huggingface]"') from error

from .recorder import Recorder


def output_logits(output) -> torch.Tensor:
    """The ``"logits"`` (B, C) of a model's output (a dict or ``ModelOutput``); ValueError otherwise."""
    if not isinstance(output, Mapping) or output.get("logits") is None:
        held = sorted(output) if isinstance(output, Mapping) else type(output).__name__
        raise ValueError(f"the model's output must be a dict or ModelOutput with 'logits' (B, C) for the "
                         f"recorder, got {held}")
    return output["logits"]


class RecorderCallback(TrainerCallback):
    """Records every training and test sample at every epoch of ``Trainer.train`` (see the module docstring).

    Parameters
    ----------
    train_dataset, test_dataset : torch.utils.data.Dataset
        Items as the Trainer's training set (the test set may be the one given to the Trainer as
        ``eval_dataset``), each with its position under ``index_key``; the eval pass of each epoch.
    y_train, y_test : array-like of int, shapes (N,) and (M,)
        The sets' labels in dataset order.
    path : str or Path, optional
        Where :meth:`on_train_end` writes the trace (:meth:`Recorder.save`); None: no file.
    meta : dict, optional
        Added to the trace's metadata.
    data_collator : callable, optional
        Makes the eval batches from lists of items (default: ``transformers.default_data_collator``);
        give the one the Trainer uses when it pads or transforms.
    index_key : str
        The items' key of their positions.
    index_train, index_test, noisy_train : array-like, optional
        As in :class:`Recorder`.

    Attributes
    ----------
    recorder : Recorder or None
        The record of the latest ``train()``, made when it starts (each call records one run).
    """

    def __init__(self, train_dataset, test_dataset, y_train, y_test, *, path: str | Path | None = None,
                 meta: dict | None = None, data_collator=None, index_key: str = "idx",
                 index_train=None, index_test=None, noisy_train=None):
        for split, dataset, y in (("train", train_dataset, y_train), ("test", test_dataset, y_test)):
            if len(dataset) != len(y):
                raise ValueError(f"{split}_dataset has {len(dataset)} items but y_{split} {len(y)} labels")
        self.datasets = {"train": train_dataset, "test": test_dataset}
        self.path, self.meta, self.index_key = path, meta, index_key
        self.data_collator = data_collator or default_data_collator
        self._recorder_args = {"n_train": len(y_train), "n_test": len(y_test), "y_train": y_train, "y_test": y_test,
                               "index_train": index_train, "index_test": index_test, "noisy_train": noisy_train}
        self.recorder: Recorder | None = None
        self._hooks: list = []
        self._idx = None  # positions of the forward pass in progress
        self._pending: list[tuple] = []  # (idx, logits, labels) of the micro-batches of the coming optimizer step

    def _positions(self, inputs: Mapping) -> torch.Tensor:
        if inputs.get(self.index_key) is None:
            raise ValueError(f"the batch has no {self.index_key!r}: every item of the data sets must hold its position "
                             f"under {self.index_key!r}, and TrainingArguments(remove_unused_columns=False) keeps it "
                             f"(the Trainer drops inputs the model's forward does not name); the batch holds "
                             f"{sorted(inputs)}")
        return torch.as_tensor(inputs[self.index_key])

    def _take_index(self, module, args, kwargs):
        """Forward pre-hook: takes the positions out of the inputs of a training forward pass."""
        if module.training:
            self._idx = self._positions(kwargs)
        kwargs.pop(self.index_key, None)  # the Trainer's own evaluation may carry it too
        return args, kwargs

    def _keep_logits(self, module, args, kwargs, output) -> None:
        """Forward hook: keeps the train-mode logits of the pass with its positions and labels."""
        if module.training:
            labels = kwargs.get("labels")
            self._pending.append((self._idx, output_logits(output).detach(), labels))
            self._idx = None

    def on_train_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
        if args.world_size > 1 or args.n_gpu > 1:
            raise ValueError(f"the recorder records one process on one device; these arguments run "
                             f"{args.world_size} processes on {args.n_gpu} devices, each seeing part of every epoch")
        self.recorder = Recorder(**self._recorder_args, optimizer=optimizer)
        self._pending, self._idx = [], None
        self._remove_hooks()  # those of a train() that raised
        self._hooks = [model.register_forward_pre_hook(self._take_index, with_kwargs=True),
                       model.register_forward_hook(self._keep_logits, with_kwargs=True)]

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        if not self._pending:
            raise ValueError(f"step {state.global_step}: no train-mode forward pass of the model was seen before "
                             "this optimizer step; the recorder hooks the model handed to on_train_begin")
        parts, self._pending = self._pending, []
        self.recorder.on_micro_batches(parts)

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        param = next(model.parameters(), None)
        device = param.device if param is not None else None
        modes = [m.training for m in model.modules()]
        model.eval()
        try:
            with torch.no_grad():
                for split, dataset in self.datasets.items():
                    batches = DataLoader(dataset, batch_size=args.per_device_eval_batch_size,
                                         collate_fn=self.data_collator)
                    for batch in batches:
                        idx = self._positions(batch)
                        inputs = {k: v.to(device) if isinstance(v, torch.Tensor) and device is not None else v
                                  for k, v in batch.items() if k != self.index_key}
                        self.recorder.on_eval(split, idx, output_logits(model(**inputs)), batch.get("labels"))
        finally:
            for m, mode in zip(model.modules(), modes):  # each submodule's own mode, as Recorder.on_epoch_end
                m.training = mode
        self.recorder.end_epoch()

    def _remove_hooks(self) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks = []

    def on_train_end(self, args, state, control, **kwargs):
        self._remove_hooks()
        if self.path is not None:
            self.recorder.save(self.path, meta=self.meta)
