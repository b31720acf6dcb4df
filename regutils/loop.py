"""What a single run and a stack of runs share: the run's config, optimizer, schedule, minibatches and eval pass.

    from regutils.loop import RunConfig, load_for, run_key
    from regutils.data import DataConfig
    config = RunConfig(DataConfig("cifar10-subset"), arch="convnet3", epochs=20, optimizer="sgd", lr=0.1)
    data = load_for(config.data, config.arch)     # the data at the network's input size (memoized)
    run_key(config, data)                         # the content address of the run in the cache

The loop itself is :func:`regutils.train.train_runs` (one run, or seeds of one run as one
stacked model); :mod:`regutils.train` documents the hyperparameters and their units.
"""
from __future__ import annotations

import copy
import functools
import os
import platform
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from . import models
from .data import Data, DataConfig, load
from .trace import Trace, cache_key, config_dict
from .validation import Bool, Int, OneOf, Real, check_fields

OPTIMIZERS = ("sgd", "adagrad", "adamax", "adam")
SCHEDULES = ("multistep", "cosine", "constant", "onecycle")
DEFAULT_LR = {"sgd": 0.1, "adagrad": 0.01, "adamax": 0.002, "adam": 0.001}
PAPER_MILESTONES = (81 / 200, 122 / 200)  # fractions of training, from the paper's 200-epoch schedule
# RunConfig fields added after runs were cached: left out of the key when off, so those runs keep their keys
KEY_WHEN_ON = {"dropout": 0.0, "adversarial_eps": 0.0, "record_scores": False}
MAX_EPOCHS = 10_000  # the paper trains 200; the record is (epochs, samples) per run
MAX_BATCH_SIZE = 1_000_000
MAX_LR = 10.0  # far above any rate these optimizers train with; larger ones overflow the weights
MAX_WEIGHT_DECAY = 1.0
MAX_SEED = 2**32 - 1  # numpy's and torch's seeds both take it
MAX_RUNS = 1_000


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    arch: str = "small_cnn"
    epochs: int = 30
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float | None = None
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    schedule: str = "multistep"
    milestones: tuple[int, ...] | None = None
    seed: int = 0
    dropout: float = 0.0
    adversarial_eps: float = 0.0
    record_scores: bool = False  # also record the eval pass's margins, losses and EL2N (regutils.trace.SCORE_ARRAYS)

    CONSTRAINTS: ClassVar[dict] = {
        "arch": OneOf(models.names),
        "epochs": Int(1, MAX_EPOCHS, strict=True),
        "batch_size": Int(1, MAX_BATCH_SIZE, strict=True),
        "optimizer": OneOf(OPTIMIZERS),
        "lr": Real(0, MAX_LR, low_open=True, none=True),  # None: the optimizer's default
        "momentum": Real(0, 1, high_open=True),
        "nesterov": Bool(),
        "weight_decay": Real(0, MAX_WEIGHT_DECAY),
        "schedule": OneOf(SCHEDULES),
        "seed": Int(0, MAX_SEED, strict=True),
        "dropout": Real(0, 1, high_open=True),
        "adversarial_eps": Real(0),
        "record_scores": Bool(),
    }

    def validate(self) -> "RunConfig":
        self.data.validate()
        return check_fields(self, self.CONSTRAINTS)

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]

    @property
    def lr_milestones(self) -> list[int]:
        if self.milestones is not None:
            return list(self.milestones)
        return [round(f * self.epochs) for f in PAPER_MILESTONES]

    def key_dict(self) -> dict:
        """What defines the run's result (the data's location does not).

        The regularizers and ``record_scores`` appear only when on (:data:`KEY_WHEN_ON`), so runs without
        them keep the keys they had before them.
        """
        d = config_dict(self)
        d["data"] = self.data.key()
        return {k: v for k, v in d.items() if k not in KEY_WHEN_ON or v != KEY_WHEN_ON[k]}


def progress_default() -> bool:
    """Progress bars unless ``REGUTILS_PROGRESS=0`` (the book build sets it)."""
    return os.environ.get("REGUTILS_PROGRESS", "1") != "0"


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` (CUDA when present, else the CPU), or a device that exists here; ValueError otherwise."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    allowed = "auto, cpu" + (f", cuda, cuda:0..cuda:{torch.cuda.device_count() - 1}" if torch.cuda.is_available()
                             else " (no CUDA device here)")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device={device!r} is not a device; allowed: {allowed}") from err
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda" and torch.cuda.is_available() and (dev.index or 0) < torch.cuda.device_count():
        return dev
    if dev.type == "mps" and torch.backends.mps.is_available():
        return dev
    raise ValueError(f"device={device!r} is not available on this machine; allowed: {allowed}")


@functools.lru_cache(maxsize=8)
def load_for(data_config: DataConfig, arch: str) -> Data:
    """The data set at the input size of ``arch`` (memoized: many runs share it)."""
    return load(data_config, image_size=models.input_size(arch))


def make_optimizer(config: RunConfig, params) -> torch.optim.Optimizer:
    lr, wd = config.learning_rate, config.weight_decay
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=config.momentum, nesterov=config.nesterov, weight_decay=wd)
    cls = {"adagrad": torch.optim.Adagrad, "adamax": torch.optim.Adamax, "adam": torch.optim.Adam}[config.optimizer]
    return cls(params, lr=lr, weight_decay=wd)


def make_scheduler(config: RunConfig, opt: torch.optim.Optimizer):
    if config.schedule == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=config.lr_milestones, gamma=0.1)
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs)
    if config.schedule == "onecycle":
        # per epoch, one step beyond the last epoch: the last epoch trains above the floor
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.learning_rate, total_steps=config.epochs + 1,
                                                   cycle_momentum=False)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)


def minibatches(order: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    chunks = list(torch.split(order, batch_size))
    if len(chunks) > 1 and len(chunks[-1]) == 1 and batch_size > 1:  # BatchNorm cannot train on one sample
        chunks[-2:] = [torch.cat(chunks[-2:])]
    return chunks


def add_dropout(model: torch.nn.Module, p: float) -> torch.utils.hooks.RemovableHandle:
    """Dropout of probability ``p`` on the input of ``model``'s classifier layer, in train mode only.

    A forward pre-hook on :func:`regutils.models.classifier_layer` (the last
    ``nn.Linear``, or a 1x1 conv classifier), so any architecture of the zoo gets
    it without a change to its code; returns the hook's handle (``.remove()``).
    """
    return models.classifier_layer(model).register_forward_pre_hook(
        lambda layer, args: (F.dropout(args[0], p, layer.training), *args[1:]))


def fgsm_input(x: torch.Tensor, loss: torch.Tensor, eps: float) -> torch.Tensor:
    """``x + eps * sign(dloss/dx)``, detached: the fast-gradient-sign adversarial input (``x`` requires grad).

    The graph of ``loss`` is kept, so the clean loss can still be backpropagated.
    """
    (grad,) = torch.autograd.grad(loss, x, retain_graph=True)
    return (x + eps * grad.sign()).detach()


def inference_copy(model: torch.nn.Module, channels_last: bool = True) -> torch.nn.Module:
    """An eval-mode copy of ``model`` that infers faster: each Conv+BatchNorm pair folded into one conv.

    Folding changes logits by float rounding only. ``channels_last`` pays off on the CPU even for
    8x8 images (about 1.7x for ``small_cnn``); a model fx cannot trace is copied unfolded.
    """
    from torch.fx.experimental.optimization import fuse
    from torch.fx.proxy import TraceError as FxTraceError

    net = copy.deepcopy(model).eval()
    if any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in net.modules()):
        try:
            net = fuse(net, inplace=True)
        except (FxTraceError, TypeError):
            pass
    return net.to(memory_format=torch.channels_last) if channels_last else net


def eval_batch_size(x: torch.Tensor) -> int:
    """The eval pass's batch size for inputs ``x``: on the CPU 2**16 values per batch (64 images of
    32x32, 1024 of 8x8), whose activations stay in cache (ResNet-20 runs 1.9x faster than with 1024
    images of 32x32); 1024 on a GPU."""
    per_sample = x[0, 0].numel() if x.ndim > 1 else 1
    return min(1024, max(16, 2**16 // per_sample)) if x.device.type == "cpu" else 1024


def label_record(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Correctness (argmax == label) and the float16 softmax probability of the label, from float logits.

    ``logits`` (..., B, K); ``y`` (B,) or broadcastable to ``logits.shape[:-1]``.
    """
    y = y.expand(logits.shape[:-1])
    return logits.argmax(-1) == y, logits.softmax(-1).gather(-1, y[..., None]).squeeze(-1).half()


def score_record(logits: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """The margin, cross-entropy and EL2N of each sample, float16, from float logits (..., B, K) and labels.

    margin: logit of the label minus the largest other logit (Pleiss et al. 2020); el2n:
    || softmax - onehot(label) ||_2 (Paul et al. 2021).
    """
    y = y.expand(logits.shape[:-1])
    label_logit = logits.gather(-1, y[..., None]).squeeze(-1)
    other = logits.scatter(-1, y[..., None], float("-inf")).amax(-1)  # the largest logit of another class
    error = logits.softmax(-1) - F.one_hot(y, logits.shape[-1])
    return {"margin": (label_logit - other).half(),
            "loss": F.cross_entropy(logits.flatten(0, -2), y.flatten(), reduction="none").view(y.shape).half(),
            "el2n": error.norm(dim=-1).half()}


@torch.inference_mode()
def eval_logits(model, x: torch.Tensor, batch_size: int | None = None, channels_last: bool = False,
                amp: bool = False):
    """Eval-mode float32 logits of ``x`` in order, by batches: yields ``(start, logits (..., B, K))``.

    ``model`` maps a batch to logits: a module (put in eval mode), or a stack of R models
    (:mod:`regutils.stacked`) whose logits are then (R, B, K). ``batch_size`` None: :func:`eval_batch_size`.
    """
    if batch_size is None:
        batch_size = eval_batch_size(x)
    if isinstance(model, torch.nn.Module):
        model.eval()
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size]
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
            yield start, model(xb).float()


@torch.inference_mode()
def evaluate(model, x: torch.Tensor, y: torch.Tensor, batch_size: int | None = None,
             channels_last: bool = False, amp: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode correctness (bool) and label probability (float16) of every sample: (N,) each, (R, N) for a stack.

    The eval pass of :func:`eval_logits` read by :func:`label_record`.
    """
    records = [label_record(z, y[start:start + z.shape[-2]])
               for start, z in eval_logits(model, x, batch_size, channels_last, amp)]
    return torch.cat([c for c, _ in records], -1), torch.cat([p for _, p in records], -1)


def run_environment(device: torch.device) -> dict:
    from . import __version__

    env = {"regutils": __version__, "torch": torch.__version__, "numpy": np.__version__,
           "python": platform.python_version(), "device": str(device), "host_cpu": platform.processor()}
    if device.type == "cpu":  # the last bits of a CPU run's probabilities depend on it
        env["threads"] = torch.get_num_threads()
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def finish_trace(config: RunConfig, data: Data, rec: dict, history: dict, dev: torch.device, start_epoch: int,
                 **meta) -> Trace:
    """The Trace of a finished run from its record, history and ``meta`` entries beyond the common ones."""
    meta = {
        "config": config.key_dict(), "data_path": config.data.path, "data_fingerprint": data.fingerprint,
        "classes": data.classes, "environment": run_environment(dev),
        "train_seconds": float(history["seconds"].sum()), "eval_seconds": float(history["eval_seconds"].sum()),
        "final_train_acc": float(history["train_acc"][-1]), "final_test_acc": float(history["test_acc"][-1]),
        "resumed_from_epoch": start_epoch, **meta,
    }
    return Trace(**rec, y_train=data.y_train.numpy(), y_test=data.y_test.numpy(), index_train=data.index_train,
                 index_test=data.index_test, noisy_train=data.noisy_train, history=history, meta=meta)


def run_key(config: RunConfig, data: Data | None = None) -> str:
    data = data if data is not None else load_for(config.data, config.arch)
    return cache_key(config.key_dict(), data.fingerprint)
