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
               cosine: cosine annealing to 0 over ``epochs``; constant;
               onecycle: torch's ``OneCycleLR`` (peak = lr, start and
               floor at lr / 25 and lr / 25e4, rise over the first 30%,
               cosine fall) stepped once per epoch over ``epochs + 1``
               steps, so epoch e (0-based) trains at step e of the curve
               and the floor is where training ends; the momentum is the
               config's throughout (no momentum cycling)
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
import io
import os
import platform
from pathlib import Path
import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from . import models
from .bundle import record_served, remember
from .data import Data, DataConfig, augment, load
from .trace import (Cache, Trace, TraceError, cache_key, config_dict, file_key, quarantine, stack, verify,
                    write_sealed)

OPTIMIZERS = ("sgd", "adagrad", "adamax", "adam")
SCHEDULES = ("multistep", "cosine", "constant", "onecycle")
DEFAULT_LR = {"sgd": 0.1, "adagrad": 0.01, "adamax": 0.002, "adam": 0.001}
PAPER_MILESTONES = (81 / 200, 122 / 200)  # fractions of training, from the paper's 200-epoch schedule
REGULARIZERS = {"dropout": 0.0, "adversarial_eps": 0.0}  # RunConfig fields left out of the key when off
MAX_EPOCHS = 10_000  # the paper trains 200; the record is (epochs, samples) per run
MAX_BATCH_SIZE = 1_000_000
MAX_LR = 10.0  # far above any rate these optimizers train with; larger ones overflow the weights
MAX_WEIGHT_DECAY = 1.0
MAX_SEED = 2**32 - 1  # numpy's and torch's seeds both take it
MAX_RUNS = 1_000


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


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
        for name, top in (("epochs", MAX_EPOCHS), ("batch_size", MAX_BATCH_SIZE)):
            value = getattr(self, name)
            if not _is_int(value) or not 0 < value <= top:
                raise ValueError(f"{name}={value!r} must be a positive integer, at most {top:,}")
        if not _is_int(self.seed) or not 0 <= self.seed <= MAX_SEED:
            raise ValueError(f"seed={self.seed!r} must be an integer in 0..{MAX_SEED}")
        if self.lr is not None and not (isinstance(self.lr, (int, float)) and 0 < self.lr <= MAX_LR):
            raise ValueError(f"lr={self.lr} must be a finite number in (0, {MAX_LR:g}] "
                             "(or None for the optimizer's default)")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum={self.momentum} must lie in [0, 1)")
        if not 0 <= self.weight_decay <= MAX_WEIGHT_DECAY:  # NaN and inf fail too
            raise ValueError(f"weight_decay={self.weight_decay} must be a finite number in [0, {MAX_WEIGHT_DECAY:g}]")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout={self.dropout} must lie in [0, 1)")
        if not 0 <= self.adversarial_eps < float("inf"):
            raise ValueError(f"adversarial_eps={self.adversarial_eps} must be non-negative and finite")
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
    if config.schedule == "onecycle":
        # per epoch, one step beyond the last epoch: the last epoch trains above the floor
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.learning_rate, total_steps=config.epochs + 1,
                                                   cycle_momentum=False)
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


# --- checkpoints and weights: sealed torch.save payloads of tensors only, loaded with weights_only=True


def _save_sealed_torch(path, obj) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    write_sealed(path, buf.getvalue())


def _load_sealed_torch(path, key: str | None):
    payload = verify(path, key)
    try:
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001  (a sealed file that does not load: refused whatever the error)
        raise TraceError(f"{path}: not a loadable torch file ({type(err).__name__}: {err})") from err


def _save_checkpoint(path, state: dict) -> None:
    _save_sealed_torch(path, state)


def load_checkpoint(path, key: str | None = None) -> dict:
    """The checkpoint at ``path``, sealed for ``key`` (None: any key); TraceError when unusable."""
    state = _load_sealed_torch(Path(path), key)
    if not isinstance(state, dict):
        raise TraceError(f"{path}: not a checkpoint (a {type(state).__name__})")
    return state


def save_weights(path, state_dict: dict) -> None:
    """A model's final state_dict, sealed for the run key ``path`` is named after."""
    _save_sealed_torch(path, {k: v.detach().cpu() for k, v in state_dict.items()})


def load_weights(path, key: str | None = None) -> dict:
    """The state_dict at ``path`` (:func:`save_weights`); TraceError when unusable."""
    state = _load_sealed_torch(Path(path), key)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise TraceError(f"{path}: not a state_dict of tensors")
    return state


def _environment(device: torch.device) -> dict:
    from . import __version__

    env = {"regutils": __version__, "torch": torch.__version__, "numpy": np.__version__,
           "python": platform.python_version(), "device": str(device), "host_cpu": platform.processor()}
    if device.type == "cpu":  # the last bits of a CPU run's probabilities depend on it
        env["threads"] = torch.get_num_threads()
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
    """The first ``epochs`` epochs of a record and history (single or stacked runs), as tensors for a checkpoint."""
    return {"rec": {k: torch.from_numpy(np.ascontiguousarray(v[..., :epochs, :])) for k, v in rec.items()},
            "history": {k: torch.from_numpy(np.ascontiguousarray(v[..., :epochs])) for k, v in history.items()}}


def check_record(rec: dict, history: dict, state: dict) -> int:
    """The epochs a checkpoint's record holds, once its every array fits ``rec`` / ``history``; ValueError otherwise."""
    done = state["epoch"]
    if not _is_int(done) or not 0 < done <= next(iter(history.values())).shape[-1]:
        raise ValueError(f"epoch={done!r} is outside this run's epochs")
    for part, into, cut in (("rec", rec, lambda a: a[..., :done, :]), ("history", history, lambda a: a[..., :done])):
        if set(state[part]) != set(into):
            raise ValueError(f"its {part} holds {sorted(state[part])}, not {sorted(into)}")
        for k, v in state[part].items():
            want = cut(into[k])
            if not isinstance(v, torch.Tensor) or tuple(v.shape) != want.shape or v.numpy().dtype != want.dtype:
                raise ValueError(f"its {part} {k!r} does not fit this run (shape or dtype)")
    return done


def restore_record(rec: dict, history: dict, state: dict) -> int:
    """Copy a checkpoint's record and history (:func:`record_until`) into ``rec`` / ``history``; its epochs."""
    done = check_record(rec, history, state)
    for k in rec:
        rec[k][..., :done, :] = state["rec"][k].numpy()
    for k in history:
        history[k][..., :done] = state["history"][k].numpy()
    return done


def _check_state_dict(state: dict, like: dict, what: str) -> None:
    """ValueError unless ``state`` has exactly the keys, shapes and dtypes of ``like``."""
    if not isinstance(state, dict) or set(state) != set(like):
        raise ValueError(f"its {what} does not hold this model's tensors")
    for k, v in like.items():
        if not isinstance(state[k], torch.Tensor) or state[k].shape != v.shape or state[k].dtype != v.dtype:
            raise ValueError(f"its {what} tensor {k!r} does not fit this model")


def _check_generator_state(state) -> None:
    torch.Generator().set_state(state)  # raises on a state of the wrong size or type


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
          progress: bool | None = None, weights=None, stop_after: int | None = None) -> Trace:
    """Train one run and return its trace.

    ``checkpoint``: a path written at the end of every epoch and resumed from
    when it exists. ``track_epochs`` / ``track_batches`` switch the two
    records off (for measuring their cost); the returned arrays are then
    all False. ``weights``: a path for the final model's state_dict.
    ``stop_after``: train only the run's first epochs (to check a stored run
    against a new training); the records of the later epochs stay empty.
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
    if checkpoint is not None and Path(checkpoint).exists():
        try:  # all or nothing: everything is loaded into copies and checked, then adopted
            state = load_checkpoint(checkpoint, file_key(checkpoint))
            _check_state_dict(state["model"], model.state_dict(), "model")
            new_model = copy.deepcopy(model)
            new_model.load_state_dict(state["model"])
            new_opt = _optimizer(config, new_model.parameters())
            # the scheduler first: building one sets the rate (OneCycleLR to its start), the saved state then wins
            new_sched = _scheduler(config, new_opt)
            new_opt.load_state_dict(state["optimizer"])
            new_sched.load_state_dict(state["scheduler"])
            new_gen = torch.Generator()
            new_gen.set_state(state["generator"])
            _check_generator_state(state["torch_rng"])
            if not _is_int(state["step"]) or state["step"] < 0:
                raise ValueError(f"step={state['step']!r} is not a step count")
            check_record(rec, history, state)
        except Exception as err:  # noqa: BLE001  (whatever a bad checkpoint raises, it is not used)
            reason = err if isinstance(err, TraceError) else f"{checkpoint}: {type(err).__name__}: {err}"
            quarantine(checkpoint, f"ignoring unusable checkpoint {reason}; training from epoch 0")
        else:
            model, opt, sched, gen = new_model, new_opt, new_sched, new_gen
            torch.set_rng_state(state["torch_rng"])
            if cuda and state.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(state["cuda_rng"], dev)
            start_epoch, step = restore_record(rec, history, state), state["step"]

    if stop_after is not None and not (_is_int(stop_after) and 1 <= stop_after <= epochs):
        raise ValueError(f"stop_after={stop_after!r} must be an integer in 1..{epochs}")
    bar = tqdm(range(start_epoch, epochs if stop_after is None else stop_after), desc=f"{config.arch} seed {config.seed}", unit="epoch",
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
        save_weights(weights, model.state_dict())

    return finish_trace(config, data, rec, history, dev, start_epoch)


def run_key(config: RunConfig, data: Data | None = None) -> str:
    data = data if data is not None else load_for(config.data, config.arch)
    return cache_key(config.key_dict(), data.fingerprint)


def get_run(config: RunConfig, *, cache: Cache | None = None, device: str = "auto", progress: bool | None = None) -> Trace:
    """The trace of ``config``: loaded from the cache, or trained (resuming a checkpoint) and cached.

    A complete, verified trace is read without a lock (a read-only cache serves it). Otherwise a
    file lock makes concurrent callers train a run once; the others wait and load it. A cached file
    that fails verification is moved aside and the run trained again.
    """
    return remember(_get_run(config, cache, device, progress))


def _get_run(config: RunConfig, cache: Cache | None, device: str, progress: bool | None) -> Trace:
    config.validate()
    resolve_device(device)
    cache = cache or Cache()
    data = load_for(config.data, config.arch)
    key = run_key(config, data)
    record_served(key)
    if (trace := cache.cached(key)) is not None:
        cache.drop_stale_checkpoint(key)
        return trace
    with cache.lock(key):
        cache.remove_temporary(key)
        if (trace := cache.cached(key, aside=True)) is not None:
            cache.checkpoint_path(key).unlink(missing_ok=True)
            return trace
        trace = train(config, data, device=device, checkpoint=cache.checkpoint_path(key), progress=progress,
                      weights=cache.weights_path(key))
        cache.save(key, trace)
        cache.checkpoint_path(key).unlink(missing_ok=True)
    return trace


def trained_model(config: RunConfig, *, cache: Cache | None = None, device: str = "auto") -> torch.nn.Module:
    """The final model of ``config``'s run, in eval mode (trained first when not cached or its weights are unusable)."""
    cache = cache or Cache()
    data = load_for(config.data, config.arch)
    key = run_key(config, data)
    record_served(key, "weights")
    path = cache.weights_file(key)  # the cache's own, or a bundle's once its checks pass; None: none usable
    model = models.build(config.arch, data.in_channels, data.num_classes)
    try:
        if path is None:
            raise TraceError(f"run {key} has a trace but no usable weights")
        state = load_weights(path, key)
        _check_state_dict(state, model.state_dict(), "weights")
    except (TraceError, ValueError) as err:
        own = cache.weights_path(key)
        with cache.lock(key):  # a trace without usable weights: train the run again, into the cache's own directory
            if own.exists():
                quarantine(own, f"{err}; training the run again")
            cache.trace_path(key).unlink(missing_ok=True)
        get_run(config, cache=Cache(cache.root, bundles=()), device=device)
        state = load_weights(own, key)
    model.load_state_dict(state)
    return model.to(resolve_device(device)).eval()


def seeds_of(config: RunConfig, runs: int) -> list[RunConfig]:
    """``runs`` copies of ``config`` with seeds seed, seed + 1, ..."""
    if not _is_int(runs) or not 0 < runs <= MAX_RUNS:
        raise ValueError(f"runs={runs!r} must be a positive integer, at most {MAX_RUNS:,}")
    if _is_int(config.seed) and config.seed + runs - 1 > MAX_SEED:
        raise ValueError(f"seed={config.seed} with runs={runs} reaches seed {config.seed + runs - 1}, "
                         f"beyond the largest seed {MAX_SEED}")
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

        return stack([remember(t) for t in get_stacked(configs, cache=cache, device=device, progress=progress)])
    bar = tqdm(configs, desc=f"{config.arch} runs", unit="run", disable=not progress or runs == 1)
    return stack([get_run(c, cache=cache, device=device, progress=progress) for c in bar])
