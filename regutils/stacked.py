"""Many seeds of one model trained at once: one stacked model, one optimizer step for all.

    from regutils.stacked import get_stacked, train_stacked
    from regutils.train import RunConfig, seeds_of
    configs = seeds_of(RunConfig(arch="resnet20", data=DataConfig("cifar10")), 8)
    traces = get_stacked(configs)          # list of 8 Traces, cached one by one like get_run's
    traces = train_stacked(configs)        # the same, uncached

A small model leaves a GPU idle between its kernel launches. Here the R runs'
parameters and buffers are stacked on a leading axis (``torch.func``'s
``stack_module_state``) and one ``vmap``-ed forward pass runs every seed on
its own minibatch, so each launch does R times the work. Each run keeps what
makes it that run: its seed's initialization, sample order and augmentation
draws are exactly those of :func:`regutils.train.train`, and the optimizer
(element-wise for every supported optimizer) updates each run's slice from its
own loss only. Traces have the single-run format; ``meta['stacked_runs']``
says how many runs shared the training. Results agree with single runs up to
float rounding (a stacked convolution is a grouped one), not bit for bit.
On CUDA a stack trains in float32 (convolutions on TF32 tensor cores, the
PyTorch default), not under bf16 autocast: vmap's BatchNorm rule needs the
running statistics in the input's dtype.

:func:`regutils.train.get_runs` uses this on CUDA and trains sequentially on
the CPU, where stacking gains nothing. The configs must differ in their seed
only. At the end of every epoch a stack writes each run's checkpoint in the
single-run format (``<key>.ckpt.pt``: its slice of the stacked weights and
optimizer state), so a killed stack resumes whatever the next call does: as a
stack of any size (runs whose checkpoints stand at the same epoch train
together) or run by run (``stacked=False``). A checkpoint is restored all or
nothing: every run's state is checked before any is applied.
"""
from __future__ import annotations

import contextlib
import copy
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap
from tqdm import tqdm

from . import models
from .bundle import record_served
from .data import Data, augment
from .trace import Cache, Trace, TraceError, file_key, quarantine
from .train import (RunConfig, _batches, _check_state_dict, _optimizer, _save_checkpoint, _scheduler, check_record,
                    evaluate, finish_trace, load_checkpoint, load_for, new_history, new_record, progress_default,
                    record_until, resolve_device, restore_record, run_key, save_weights)


def check_stackable(configs: list[RunConfig]) -> RunConfig:
    """The shared config (seed of the first) when ``configs`` differ in their seed only; ValueError otherwise."""
    if not configs:
        raise ValueError("configs must hold at least one RunConfig")
    for c in configs:
        c.validate()
    first = configs[0]
    odd = [c for c in configs if replace(c, seed=first.seed) != first]
    if odd:
        raise ValueError(f"stacked runs must differ in their seed only; {odd[0]} differs from {first}")
    if first.dropout or first.adversarial_eps:
        raise ValueError("stacked training has neither dropout nor adversarial training; "
                         "train these runs one by one (stacked=False)")
    seeds = [c.seed for c in configs]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"stacked runs need distinct seeds, got {seeds}")
    return first


class Stack:
    """R models of one architecture as stacked tensors, with a vmap-ed forward pass."""

    def __init__(self, nets: list[torch.nn.Module]):
        self.names = list(nets[0].state_dict())  # the order of a single model's state_dict
        self.params, self.buffers = stack_module_state(nets)
        self.base = copy.deepcopy(nets[0]).to("meta")
        call = lambda p, b, x: functional_call(self.base, (p, b), (x,))  # noqa: E731
        self._train = vmap(call)  # every run on its own minibatch: x is (R, B, ...)
        self._eval = vmap(call, in_dims=(0, 0, None))  # every run on the same batch

    def train_logits(self, x: torch.Tensor) -> torch.Tensor:
        self.base.train()
        return self._train(self.params, self.buffers, x)

    def eval_logits(self, x: torch.Tensor) -> torch.Tensor:
        self.base.eval()
        return self._eval(self.params, self.buffers, x)

    def state_dicts(self) -> list[dict[str, torch.Tensor]]:
        """One state_dict per run, as ``model.state_dict()`` of a single run gives it."""
        flat = {**self.params, **self.buffers}
        return [{k: flat[k][r].detach().clone() for k in self.names} for r in range(len(flat[self.names[0]]))]

    def tensors(self) -> dict[str, torch.Tensor]:
        return {k: t.detach() for k, t in {**self.params, **self.buffers}.items()}

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The stacked tensors of a single model's state_dict entries (what :meth:`load` takes)."""
        flat = self.tensors()
        return {k: flat[k] for k in self.names}

    @torch.no_grad()
    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        flat = {**self.params, **self.buffers}
        for k in self.names:
            flat[k].copy_(tensors[k])


# --- one checkpoint per run, in the single-run format


def _is_stacked(v, runs: int) -> bool:
    return isinstance(v, torch.Tensor) and v.ndim > 0 and v.shape[0] == runs


def split_state(stack: Stack, opt, sched, gens, step: int, rec: dict, history: dict, epoch: int) -> list[dict]:
    """The single-run checkpoint of each run of a stack after ``epoch`` epochs (see :func:`regutils.train.train`)."""
    runs = len(gens)
    opt_state, sched_state, rng = opt.state_dict(), sched.state_dict(), torch.get_rng_state()
    part = record_until(rec, history, epoch)
    states = []
    for r, model in enumerate(stack.state_dicts()):
        optimizer = {"state": {i: {k: v[r].clone() if _is_stacked(v, runs) else v for k, v in s.items()}
                               for i, s in opt_state["state"].items()},
                     "param_groups": opt_state["param_groups"]}
        states.append({"epoch": epoch, "step": step, "model": {k: v.cpu() for k, v in model.items()},
                       "optimizer": optimizer, "scheduler": sched_state, "generator": gens[r].get_state(),
                       "torch_rng": rng, "cuda_rng": None,
                       "rec": {k: v[r].clone() for k, v in part["rec"].items()},
                       "history": {k: v[r].clone() for k, v in part["history"].items()}})
    return states


def merge_states(states: list[dict]) -> dict:
    """One stack's state from single-run checkpoints at the same epoch; ValueError when they do not fit together."""
    first = states[0]
    for s in states:
        if s["epoch"] != first["epoch"] or s["step"] != first["step"]:
            raise ValueError(f"checkpoints at different epochs or steps ({s['epoch']} and {first['epoch']})")
    stacked = lambda get: torch.stack([get(s) for s in states])  # noqa: E731
    opt = {"state": {i: {k: stacked(lambda s, i=i, k=k: s["optimizer"]["state"][i][k])
                         if isinstance(v, torch.Tensor) and v.ndim > 0 else v for k, v in st.items()}
                     for i, st in first["optimizer"]["state"].items()},
           "param_groups": first["optimizer"]["param_groups"]}
    return {"epoch": first["epoch"], "step": first["step"], "optimizer": opt, "scheduler": first["scheduler"],
            "tensors": {k: stacked(lambda s, k=k: s["model"][k]) for k in first["model"]},
            "generators": [s["generator"] for s in states],
            "rec": {k: stacked(lambda s, k=k: s["rec"][k]) for k in first["rec"]},
            "history": {k: stacked(lambda s, k=k: s["history"][k]) for k in first["history"]}}


def checkpoint_epoch(path, key: str) -> int:
    """The epoch the run checkpoint at ``path`` stands at; 0 when there is none or it is unusable (moved aside)."""
    if not path.exists():
        return 0
    try:
        epoch = load_checkpoint(path, key)["epoch"]
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch={epoch!r}")
        return epoch
    except Exception as err:  # noqa: BLE001
        reason = err if isinstance(err, TraceError) else f"{path}: {type(err).__name__}: {err}"
        quarantine(path, f"ignoring unusable checkpoint {reason}; training from epoch 0")
        return 0


def train_stacked(configs: list[RunConfig], data: Data | None = None, *, device: str = "auto", checkpoint=None,
                  progress: bool | None = None, weights=None) -> list[Trace]:
    """Train the runs of ``configs`` (seeds of one config) as one stack; their traces in order.

    ``checkpoint``: None, or a path per run for its checkpoint (single-run format), written at the
    end of every epoch; resumed from when every run has one at the same epoch. ``weights``: None,
    or a path per run for its final state_dict.
    """
    config = check_stackable(configs)
    for name, paths in (("checkpoint", checkpoint), ("weights", weights)):
        if paths is not None and (isinstance(paths, (str, Path)) or len(paths) != len(configs)):
            raise ValueError(f"{name} must hold one path per run ({len(configs)}), got {paths!r}")
    progress = progress_default() if progress is None else progress
    data = data if data is not None else load_for(config.data, config.arch)
    dev = resolve_device(device)
    cuda = dev.type == "cuda"
    x_tr, y_tr, x_te, y_te = (t.to(dev) for t in (data.x_train, data.y_train, data.x_test, data.y_test))
    n, m, epochs, runs = len(y_tr), len(y_te), config.epochs, len(configs)

    def fresh():
        nets = []
        for c in configs:  # each run's initialization is that of its single run
            torch.manual_seed(c.seed)
            nets.append(models.build(c.arch, data.in_channels, data.num_classes).to(dev))
        stack = Stack(nets)
        opt = _optimizer(config, stack.params.values())
        return stack, opt, _scheduler(config, opt), [torch.Generator().manual_seed(c.seed) for c in configs]

    stack, opt, sched, gens = fresh()

    rec, history = new_record(epochs, n, m, (runs,)), new_history(epochs, (runs,))
    start_epoch, step = 0, 0
    paths = [Path(p) for p in checkpoint] if checkpoint is not None else []
    found = {p: checkpoint_epoch(p, file_key(p)) for p in paths}
    if paths and len(set(found.values())) > 1:
        warnings.warn(f"the runs' checkpoints stand at different epochs {sorted(set(found.values()))}; "
                      "training the stack from epoch 0")
    elif paths and all(found.values()):
        try:  # all or nothing: loaded into a fresh stack and checked, then adopted
            state = merge_states([load_checkpoint(p, file_key(p)) for p in paths])
            new_stack, new_opt, new_sched, new_gens = fresh()
            _check_state_dict(state["tensors"], new_stack.state_tensors(), "model")
            new_stack.load(state["tensors"])
            new_opt.load_state_dict(state["optimizer"])
            new_sched.load_state_dict(state["scheduler"])
            for g, s in zip(new_gens, state["generators"], strict=True):
                g.set_state(s)
            check_record(rec, history, state)
        except Exception as err:  # noqa: BLE001  (whatever bad checkpoints raise, they are not used)
            for p in paths:
                quarantine(p, f"ignoring unusable checkpoint {p} ({type(err).__name__}: {err}); "
                              "training from epoch 0")
        else:
            stack, opt, sched, gens = new_stack, new_opt, new_sched, new_gens
            start_epoch, step = restore_record(rec, history, state), state["step"]

    bar = tqdm(range(start_epoch, epochs), desc=f"{config.arch} x{runs} stacked", unit="epoch",
               initial=start_epoch, total=epochs, disable=not progress, leave=False)
    rows = torch.arange(runs, device=dev)[:, None]
    for epoch in bar:
        # ---- train one epoch: every run on its own minibatch of its own sample order
        t0 = time.perf_counter()
        lr = opt.param_groups[0]["lr"]
        loss_sum = torch.zeros(runs, device=dev)
        batch_correct = torch.zeros(runs, n, dtype=torch.bool, device=dev)
        batch_step = torch.full((runs, n), -1, dtype=torch.int32, device=dev)
        orders = [_batches(torch.randperm(n, generator=g), config.batch_size) for g in gens]
        for chunks in zip(*orders):
            idx = torch.stack(chunks).to(dev)  # (R, B): batch sizes agree, since n and batch_size do
            xb, yb = x_tr[idx], y_tr[idx]
            if data.augment:
                xb = torch.stack([augment(xb[r], g) for r, g in enumerate(gens)])
            logits = stack.train_logits(xb)
            losses = F.cross_entropy(logits.flatten(0, 1), yb.flatten(), reduction="none")
            losses = losses.view(runs, -1).mean(1)  # each run's mean loss; their sum keeps gradients apart
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()
            opt.step()
            loss_sum += losses.detach() * idx.shape[1]
            batch_correct[rows, idx] = logits.detach().argmax(-1) == yb
            batch_step[rows, idx] = step
            step += 1
        sched.step()
        if cuda:
            torch.cuda.synchronize(dev)
        t1 = time.perf_counter()

        # ---- eval-mode pass of every run over all training and all test samples
        ok_tr, p_tr = evaluate(stack.eval_logits, x_tr, y_tr)
        ok_te, p_te = evaluate(stack.eval_logits, x_te, y_te)
        for k, v in (("train_correct", ok_tr), ("train_prob", p_tr), ("test_correct", ok_te), ("test_prob", p_te),
                     ("batch_correct", batch_correct), ("batch_step", batch_step)):
            rec[k][:, epoch] = v.cpu().numpy()
        t2 = time.perf_counter()

        history["loss"][:, epoch] = loss_sum.cpu().numpy() / n
        history["train_acc"][:, epoch] = rec["train_correct"][:, epoch].mean(1)
        history["test_acc"][:, epoch] = rec["test_correct"][:, epoch].mean(1)
        history["lr"][:, epoch], history["seconds"][:, epoch], history["eval_seconds"][:, epoch] = lr, t1 - t0, t2 - t1
        bar.set_postfix(loss=f"{history['loss'][:, epoch].mean():.3f}",
                        test=f"{history['test_acc'][:, epoch].mean():.3f}")
        for path, state in zip(paths, split_state(stack, opt, sched, gens, step, rec, history, epoch + 1)):
            _save_checkpoint(path, state)
    bar.close()
    if weights is not None:
        for path, state in zip(weights, stack.state_dicts()):
            save_weights(path, state)

    # each run is charged its share of the stack's time, so timings add up as for single runs
    share = {k: history[k] / runs for k in ("seconds", "eval_seconds")}
    return [finish_trace(c, data, {k: v[r] for k, v in rec.items()},
                         {k: (share[k] if k in share else v)[r] for k, v in history.items()},
                         dev, start_epoch, stacked_runs=runs)
            for r, c in enumerate(configs)]


def get_stacked(configs: list[RunConfig], *, cache: Cache | None = None, device: str = "auto",
                progress: bool | None = None, max_stack: int = 16) -> list[Trace]:
    """The traces of ``configs`` (seeds of one config): cached ones loaded, the others trained stacked.

    Verified traces are read without a lock. The missing runs' file locks are held while they
    train, so a concurrent :func:`regutils.train.get_run` of one of them waits and loads. Runs
    whose checkpoints stand at the same epoch resume together; at most ``max_stack`` runs train in
    one stack.
    """
    config = check_stackable(configs)
    if isinstance(max_stack, bool) or not isinstance(max_stack, int) or max_stack <= 0:
        raise ValueError(f"max_stack={max_stack!r} must be a positive integer")
    resolve_device(device)
    cache = cache or Cache()
    data = load_for(config.data, config.arch)
    keys = [run_key(c, data) for c in configs]
    for key in keys:
        record_served(key)
    traces = {k: t for k in keys if (t := cache.cached(k)) is not None}
    missing = sorted(set(keys) - set(traces))
    stale = [k for k in traces if cache.checkpoint_path(k).exists()]  # left by a kill after the trace was saved
    with contextlib.ExitStack() as held:
        for key in sorted({*missing, *stale}):  # one global order: no deadlock between overlapping stacks
            held.enter_context(cache.lock(key))
        for key in missing:
            cache.remove_temporary(key)
            if (trace := cache.cached(key, aside=True)) is not None:
                traces[key] = trace
        todo = [(c, k) for c, k in zip(configs, keys) if k not in traces]
        by_epoch: dict[int, list] = {}
        for c, k in todo:
            by_epoch.setdefault(checkpoint_epoch(cache.checkpoint_path(k), k), []).append((c, k))
        for _, runs in sorted(by_epoch.items(), reverse=True):
            for start in range(0, len(runs), max_stack):
                group = runs[start:start + max_stack]
                group_keys = [k for _, k in group]
                trained = train_stacked([c for c, _ in group], data, device=device, progress=progress,
                                        checkpoint=[cache.checkpoint_path(k) for k in group_keys],
                                        weights=[cache.weights_path(k) for k in group_keys])
                for key, trace in zip(group_keys, trained):
                    cache.save(key, trace)
                    traces[key] = trace
                    cache.checkpoint_path(key).unlink(missing_ok=True)
        for key in {*missing, *stale}:  # a checkpoint left by a kill between saving a trace and removing it
            cache.checkpoint_path(key).unlink(missing_ok=True)
    return [traces[k] for k in keys]
