"""Training that records every sample at every epoch.

    from regutils.train import RunConfig, get_runs
    from regutils.data import DataConfig
    config = RunConfig(data=DataConfig("digits"), arch="small_cnn", epochs=30)
    runs = get_runs(config, runs=5)        # trains what the cache lacks, loads the rest
    runs.train_correct.shape               # (5, 30, 1347)

Each epoch is a pass over the training set in a seeded random order, with the
training-mode correctness of every sample at its presentation recorded
(``batch_correct``, ``batch_step``), followed by an eval-mode pass over all
training and all test samples recording correctness and the probability of
the label (``*_correct``, ``*_prob``). See :mod:`regutils.trace` for the record.

Hyperparameters (one place, with units):

=============  ===========================================================
epochs         passes over the training set
batch_size     training samples per optimizer step (the last batch of an
               epoch takes the remainder; a remainder of 1 joins the batch
               before it, since BatchNorm needs two samples)
optimizer      sgd | adagrad | adamax | adam
lr             initial learning rate; None: 0.1 for sgd, 0.01 adagrad,
               0.002 adamax, 0.001 adam
momentum       sgd momentum; nesterov switches to Nesterov's
weight_decay   L2 coefficient added by the optimizer
schedule       multistep: lr divided by 10 at ``milestones`` (default: the
               paper's epochs 81 and 122 of 200, scaled to ``epochs``);
               cosine: cosine annealing to 0 over ``epochs``; constant
seed           model initialization, sample order and augmentation
dropout        probability of dropout on the input of the model's
               classifier layer, in training only (0: none)
adversarial    ``adversarial_eps``: FGSM adversarial training, each
               minibatch loss half the clean loss and half the loss at
               x + eps sign(dL/dx), eps in normalized input units (0: none;
               the recorded loss is that mean, the batch record the clean pass)
=============  ===========================================================

On CUDA the run uses bf16 autocast and channels_last; on the CPU it runs in
float32 and is deterministic for a seed. A run writes a checkpoint at the end
of every epoch; a run that was killed resumes from it and yields the same
trace as an uninterrupted one.
"""
from __future__ import annotations

import copy
import functools
import hashlib
import io
import os
import platform
import time
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from . import models
from .data import Data, DataConfig, augment, load
from .trace import Cache, Trace, TraceError, _atomic_write, cache_key, config_dict, stack

OPTIMIZERS = ("sgd", "adagrad", "adamax", "adam")
SCHEDULES = ("multistep", "cosine", "constant")
DEFAULT_LR = {"sgd": 0.1, "adagrad": 0.01, "adamax": 0.002, "adam": 0.001}
PAPER_MILESTONES = (81 / 200, 122 / 200)  # fractions of training, from the paper's 200-epoch schedule
REGULARIZERS = {"dropout": 0.0, "adversarial_eps": 0.0}  # RunConfig fields left out of the key when off


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

    def validate(self) -> "RunConfig":
        self.data.validate()
        if self.arch not in models.names():
            raise ValueError(f"arch={self.arch!r} is unknown; allowed: {', '.join(models.names())}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer={self.optimizer!r} is unknown; allowed: {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule={self.schedule!r} is unknown; allowed: {', '.join(SCHEDULES)}")
        for name in ("epochs", "batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) <= 0:
                raise ValueError(f"{name}={getattr(self, name)!r} must be a positive integer")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"lr={self.lr} must be positive (or None for the optimizer's default)")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum={self.momentum} must lie in [0, 1)")
        if not self.weight_decay >= 0:  # NaN fails too
            raise ValueError(f"weight_decay={self.weight_decay} must be non-negative")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout={self.dropout} must lie in [0, 1)")
        if not self.adversarial_eps >= 0:
            raise ValueError(f"adversarial_eps={self.adversarial_eps} must be non-negative")
        return self

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

        The regularizers appear only when on, so runs without them keep the keys they had before them.
        """
        d = config_dict(self)
        d["data"] = self.data.key()
        return {k: v for k, v in d.items() if k not in REGULARIZERS or v != REGULARIZERS[k]}


def progress_default() -> bool:
    """Progress bars unless ``REGUTILS_PROGRESS=0`` (the book build sets it)."""
    return os.environ.get("REGUTILS_PROGRESS", "1") != "0"


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@functools.lru_cache(maxsize=8)
def load_for(data_config: DataConfig, arch: str) -> Data:
    """The data set at the input size of ``arch`` (memoized: many runs share it)."""
    return load(data_config, image_size=models.input_size(arch))


def _optimizer(config: RunConfig, params) -> torch.optim.Optimizer:
    lr, wd = config.learning_rate, config.weight_decay
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=config.momentum, nesterov=config.nesterov, weight_decay=wd)
    cls = {"adagrad": torch.optim.Adagrad, "adamax": torch.optim.Adamax, "adam": torch.optim.Adam}[config.optimizer]
    return cls(params, lr=lr, weight_decay=wd)


def _scheduler(config: RunConfig, opt: torch.optim.Optimizer):
    if config.schedule == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=config.lr_milestones, gamma=0.1)
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)


def _batches(order: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    chunks = list(torch.split(order, batch_size))
    if len(chunks) > 1 and len(chunks[-1]) == 1 and batch_size > 1:  # BatchNorm cannot train on one sample
        chunks[-2:] = [torch.cat(chunks[-2:])]
    return chunks


def add_dropout(model: torch.nn.Module, p: float) -> torch.utils.hooks.RemovableHandle:
    """Dropout of probability ``p`` on the input of ``model``'s classifier layer, in train mode only.

    A forward pre-hook on :func:`regutils.features.classifier_layer` (the last
    ``nn.Linear``, or a 1x1 conv classifier), so any architecture of the zoo gets
    it without a change to its code; returns the hook's handle (``.remove()``).
    """
    from .features import classifier_layer

    return classifier_layer(model).register_forward_pre_hook(
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


@torch.inference_mode()
def evaluate(model, x: torch.Tensor, y: torch.Tensor, batch_size: int | None = None,
             channels_last: bool = False, amp: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode correctness (bool) and label probability (float16) of every sample.

    ``model`` maps a batch to logits ``(..., B, K)``: a module, or a stack of R models
    (:mod:`regutils.stacked`) whose results are then ``(R, N)``. ``batch_size`` None: on the CPU
    2**16 pixels per batch (64 images of 32x32, 1024 of 8x8), whose activations stay in cache
    (ResNet-20 runs 1.9x faster than with 1024 images of 32x32); 1024 on a GPU.
    """
    if batch_size is None:
        batch_size = min(1024, max(16, 2**16 // x[0, 0].numel())) if x.device.type == "cpu" else 1024
    if isinstance(model, torch.nn.Module):
        model.eval()
    correct, prob = [], []
    for start in range(0, len(y), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
            logits = model(xb).float()
        yb = yb.expand(logits.shape[:-1])
        correct.append(logits.argmax(-1) == yb)
        prob.append(logits.softmax(-1).gather(-1, yb[..., None]).squeeze(-1).half())
    return torch.cat(correct, -1), torch.cat(prob, -1)


# --- checkpoints: a digest line, then a torch.save payload


def _save_checkpoint(path, state: dict) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    payload = buf.getvalue()
    digest = hashlib.sha256(payload).hexdigest().encode()
    _atomic_write(path, lambda f: (f.write(digest + b"\n"), f.write(payload)))


def load_checkpoint(path) -> dict:
    """The checkpoint at ``path``; TraceError when it is truncated or corrupt."""
    blob = path.read_bytes()
    digest, _, payload = blob.partition(b"\n")
    if hashlib.sha256(payload).hexdigest().encode() != digest:
        raise TraceError(f"checkpoint {path} is truncated or corrupt (checksum mismatch)")
    return torch.load(io.BytesIO(payload), weights_only=False)


def _environment(device: torch.device) -> dict:
    from . import __version__

    env = {"regutils": __version__, "torch": torch.__version__, "numpy": np.__version__,
           "python": platform.python_version(), "device": str(device), "host_cpu": platform.processor()}
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def new_record(epochs: int, n: int, m: int, runs: tuple[int, ...] = ()) -> dict[str, np.ndarray]:
    """Empty per-epoch record arrays of a run (or ``runs`` stacked runs) with n training and m test samples."""
    return {
        "train_correct": np.zeros((*runs, epochs, n), bool), "test_correct": np.zeros((*runs, epochs, m), bool),
        "train_prob": np.zeros((*runs, epochs, n), np.float16), "test_prob": np.zeros((*runs, epochs, m), np.float16),
        "batch_correct": np.zeros((*runs, epochs, n), bool), "batch_step": np.full((*runs, epochs, n), -1, np.int32),
    }


def new_history(epochs: int, runs: tuple[int, ...] = ()) -> dict[str, np.ndarray]:
    return {k: np.zeros((*runs, epochs)) for k in ("loss", "train_acc", "test_acc", "lr", "seconds", "eval_seconds")}


def record_until(rec: dict, history: dict, epochs: int) -> dict:
    """The first ``epochs`` epochs of a record and history (single or stacked runs), for a checkpoint."""
    return {"rec": {k: v[..., :epochs, :] for k, v in rec.items()},
            "history": {k: v[..., :epochs] for k, v in history.items()}}


def restore_record(rec: dict, history: dict, state: dict) -> int:
    """Copy a checkpoint's record and history (:func:`record_until`) into ``rec`` / ``history``; its epochs."""
    done = state["epoch"]
    for k in rec:
        rec[k][..., :done, :] = state["rec"][k]
    for k in history:
        history[k][..., :done] = state["history"][k]
    return done


def finish_trace(config: RunConfig, data: Data, rec: dict, history: dict, dev: torch.device, start_epoch: int,
                 **meta) -> Trace:
    """The Trace of a finished run from its record, history and ``meta`` entries beyond the common ones."""
    meta = {
        "config": config.key_dict(), "data_path": config.data.path, "data_fingerprint": data.fingerprint,
        "classes": data.classes, "environment": _environment(dev),
        "train_seconds": float(history["seconds"].sum()), "eval_seconds": float(history["eval_seconds"].sum()),
        "final_train_acc": float(history["train_acc"][-1]), "final_test_acc": float(history["test_acc"][-1]),
        "resumed_from_epoch": start_epoch, **meta,
    }
    return Trace(**rec, y_train=data.y_train.numpy(), y_test=data.y_test.numpy(), index_train=data.index_train,
                 index_test=data.index_test, noisy_train=data.noisy_train, history=history, meta=meta)


def train(config: RunConfig, data: Data | None = None, *, device: str = "auto", checkpoint=None,
          track_epochs: bool = True, track_batches: bool = True, eval_batch_size: int | None = None,
          progress: bool | None = None, weights=None) -> Trace:
    """Train one run and return its trace.

    ``checkpoint``: a path written at the end of every epoch and resumed from
    when it exists. ``track_epochs`` / ``track_batches`` switch the two
    records off (for measuring their cost); the returned arrays are then
    all False. ``weights``: a path for the final model's state_dict.
    """
    config.validate()
    progress = progress_default() if progress is None else progress
    data = data if data is not None else load_for(config.data, config.arch)
    dev = resolve_device(device)
    cuda = dev.type == "cuda"
    x_tr, y_tr, x_te, y_te = (t.to(dev) for t in (data.x_train, data.y_train, data.x_test, data.y_test))
    n, m, epochs = len(y_tr), len(y_te), config.epochs

    torch.manual_seed(config.seed)
    model = models.build(config.arch, data.in_channels, data.num_classes).to(dev)
    if config.dropout:
        add_dropout(model, config.dropout)
    channels_last = x_tr.ndim == 4 and (cuda or x_tr.shape[-1] >= 16)  # pays off on large images only
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = _optimizer(config, model.parameters())
    sched = _scheduler(config, opt)
    gen = torch.Generator().manual_seed(config.seed)  # sample order and augmentation, on the CPU

    rec, history = new_record(epochs, n, m), new_history(epochs)
    start_epoch, step = 0, 0
    if checkpoint is not None and checkpoint.is_file():
        try:
            state = load_checkpoint(checkpoint)
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            gen.set_state(state["generator"])
            torch.set_rng_state(state["torch_rng"])
            if cuda and state.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(state["cuda_rng"], dev)
            start_epoch, step = restore_record(rec, history, state), state["step"]
        except (TraceError, KeyError, RuntimeError) as err:
            warnings.warn(f"ignoring unusable checkpoint {checkpoint}: {err}; training from epoch 0")
            start_epoch, step = 0, 0

    bar = tqdm(range(start_epoch, epochs), desc=f"{config.arch} seed {config.seed}", unit="epoch",
               initial=start_epoch, total=epochs, disable=not progress, leave=False)
    for epoch in bar:
        # ---- train one epoch, recording each sample at its presentation
        t0 = time.perf_counter()
        model.train()
        lr = opt.param_groups[0]["lr"]
        loss_sum = torch.zeros((), device=dev)
        batch_correct = torch.zeros(n, dtype=torch.bool, device=dev)
        batch_step = torch.full((n,), -1, dtype=torch.int32, device=dev)
        for idx in _batches(torch.randperm(n, generator=gen), config.batch_size):
            idx = idx.to(dev)
            xb, yb = x_tr[idx], y_tr[idx]
            if data.augment:
                xb = augment(xb, gen)
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            if config.adversarial_eps:
                xb.requires_grad_(True)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
                logits = model(xb)
                loss = F.cross_entropy(logits, yb)
                if config.adversarial_eps:
                    xa = fgsm_input(xb, loss, config.adversarial_eps)
                    loss = 0.5 * loss + 0.5 * F.cross_entropy(model(xa), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach() * len(idx)
            if track_batches:
                batch_correct[idx] = logits.detach().argmax(1) == yb
                batch_step[idx] = step
            step += 1
        sched.step()
        if cuda:
            torch.cuda.synchronize(dev)
        t1 = time.perf_counter()

        # ---- eval-mode pass over all training and all test samples
        if track_epochs:
            net = inference_copy(model)
            ok_tr, p_tr = evaluate(net, x_tr, y_tr, eval_batch_size, True, cuda)
            ok_te, p_te = evaluate(net, x_te, y_te, eval_batch_size, True, cuda)
            rec["train_correct"][epoch], rec["train_prob"][epoch] = ok_tr.cpu().numpy(), p_tr.cpu().numpy()
            rec["test_correct"][epoch], rec["test_prob"][epoch] = ok_te.cpu().numpy(), p_te.cpu().numpy()
        rec["batch_correct"][epoch], rec["batch_step"][epoch] = batch_correct.cpu().numpy(), batch_step.cpu().numpy()
        t2 = time.perf_counter()

        history["loss"][epoch] = loss_sum.item() / n
        history["train_acc"][epoch] = rec["train_correct"][epoch].mean()
        history["test_acc"][epoch] = rec["test_correct"][epoch].mean()
        history["lr"][epoch], history["seconds"][epoch], history["eval_seconds"][epoch] = lr, t1 - t0, t2 - t1
        bar.set_postfix(loss=f"{history['loss'][epoch]:.3f}", train=f"{history['train_acc'][epoch]:.3f}",
                        test=f"{history['test_acc'][epoch]:.3f}")
        if checkpoint is not None:
            _save_checkpoint(checkpoint, {
                "epoch": epoch + 1, "step": step, "model": model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "generator": gen.get_state(), "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(dev) if cuda else None,
                **record_until(rec, history, epoch + 1),
            })
    bar.close()
    if weights is not None:
        _atomic_write(weights, lambda f: torch.save(model.state_dict(), f))

    return finish_trace(config, data, rec, history, dev, start_epoch)


def run_key(config: RunConfig, data: Data | None = None) -> str:
    data = data if data is not None else load_for(config.data, config.arch)
    return cache_key(config.key_dict(), data.fingerprint)


def get_run(config: RunConfig, *, cache: Cache | None = None, device: str = "auto", progress: bool | None = None) -> Trace:
    """The trace of ``config``: loaded from the cache, or trained (resuming a checkpoint) and cached.

    A file lock makes concurrent callers train a run once; the others wait and load it.
    """
    from filelock import FileLock

    config.validate()
    cache = cache or Cache()
    data = load_for(config.data, config.arch)
    key = run_key(config, data)
    cache.root.mkdir(parents=True, exist_ok=True)
    with FileLock(cache.lock_path(key)):
        cache.remove_temporary(key)
        if cache.has(key):
            try:
                trace = cache.load(key)
                cache.checkpoint_path(key).unlink(missing_ok=True)  # left by a kill between save and cleanup
                return trace
            except TraceError as err:
                warnings.warn(f"{err}; training the run again")
        trace = train(config, data, device=device, checkpoint=cache.checkpoint_path(key), progress=progress,
                      weights=cache.weights_path(key))
        cache.save(key, trace)
        cache.checkpoint_path(key).unlink(missing_ok=True)
    return trace


def trained_model(config: RunConfig, *, cache: Cache | None = None, device: str = "auto") -> torch.nn.Module:
    """The final model of ``config``'s run, in eval mode (trained first when not cached)."""
    cache = cache or Cache()
    data = load_for(config.data, config.arch)
    key = run_key(config, data)
    path = cache.weights_path(key)
    if not path.is_file():
        cache.trace_path(key).unlink(missing_ok=True)  # a trace without weights: retrain
        get_run(config, cache=cache, device=device)
    model = models.build(config.arch, data.in_channels, data.num_classes)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.to(resolve_device(device)).eval()


def seeds_of(config: RunConfig, runs: int) -> list[RunConfig]:
    """``runs`` copies of ``config`` with seeds seed, seed + 1, ..."""
    if not isinstance(runs, int) or runs <= 0:
        raise ValueError(f"runs={runs!r} must be a positive integer")
    return [replace(config, seed=config.seed + r) for r in range(runs)]


def get_runs(config: RunConfig, runs: int, *, cache: Cache | None = None, device: str = "auto",
             progress: bool | None = None, stacked: bool | None = None) -> Trace:
    """``runs`` seeds of ``config`` stacked on a leading run axis.

    ``stacked``: train the missing seeds together as one stacked model (:mod:`regutils.stacked`);
    None: on CUDA only, where it pays off, and without dropout, adversarial training or an architecture with
    random layers (:func:`regutils.models.stochastic`). The traces have the same format either way.
    """
    configs = seeds_of(config, runs)
    progress = progress_default() if progress is None else progress
    if stacked is None:
        # what a stack can train: vmap draws no random numbers
        plain = not (config.dropout or config.adversarial_eps or models.stochastic(config.arch))
        stacked = runs > 1 and plain and resolve_device(device).type == "cuda"
    if stacked:
        from .stacked import get_stacked

        return stack(get_stacked(configs, cache=cache, device=device, progress=progress))
    bar = tqdm(configs, desc=f"{config.arch} runs", unit="run", disable=not progress or runs == 1)
    return stack([get_run(c, cache=cache, device=device, progress=progress) for c in bar])
