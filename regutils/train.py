"""Training that records every sample at every epoch: the one loop, and the cache around it.

    from regutils.train import RunConfig, get_runs, train, train_runs
    from regutils.data import DataConfig
    config = RunConfig(data=DataConfig("digits"), arch="small_cnn", epochs=30)
    runs = get_runs(config, runs=5)        # trains what the cache lacks, loads the rest
    runs.train_correct.shape               # (5, 30, 1347)
    trace = train(config)                  # one run, uncached
    traces = train_runs(seeds_of(config, 4), on_epoch=print)   # four seeds as one stacked model

:func:`train_runs` is the training loop, for one run (:class:`OneRun`) and for a
stack of seeds (:class:`regutils.stacked.Stack`) alike; :func:`get_traces` is the
one orchestration (cache, locks, checkpoints) above it; :func:`train`,
:func:`get_run` and :func:`get_runs` are their one-run and many-seed forms.

Each epoch is a pass over the training set in a seeded random order, with the
training-mode correctness of every sample at its presentation recorded
(``batch_correct``, ``batch_step``), followed by an eval-mode pass over all
training and all test samples recording correctness and the probability of
the label (``*_correct``, ``*_prob``; with ``record_scores`` also the margin,
loss and EL2N). Both records are made by :class:`regutils.recorder.Recorder`,
one per run, the recorder any training loop can use. See :mod:`regutils.trace`
for the record.

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

import contextlib
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from . import models
from .bundle import record_served, remember
from .cache import Cache
from .checkpoint import (check_generator_state, check_record, check_state_dict, checkpoint_epoch, load_weights,
                         merge_run_states, new_history, new_record, record_until, restore_record, save_checkpoint,
                         save_weights, usable_checkpoint)
from .data import Data, augment
from .loop import (MAX_RUNS, MAX_SEED, RunConfig, add_dropout, eval_logits, fgsm_input, finish_trace, inference_copy,
                   load_for, make_optimizer, make_scheduler, minibatches, progress_default, resolve_device, run_key)
from .recorder import Recorder
from .stacked import Stack, check_stackable
from .trace import Trace, TraceError, quarantine, stack
from .validation import Int, check, is_int


class OneRun:
    """A single run's network as :func:`train_runs` sees it: the run family of one.

    Everything a stack of runs cannot do lives here: dropout, FGSM adversarial training, bf16
    autocast and channels_last on CUDA (:class:`regutils.stacked.Stack` is the family of R > 1).
    Tensors that the loop passes and takes back carry a leading run axis of length 1.
    """

    runs = 1

    def __init__(self, config: RunConfig, data: Data, dev: torch.device, channels_last: bool):
        torch.manual_seed(config.seed)
        self.model = models.build(config.arch, data.in_channels, data.num_classes).to(dev)
        if config.dropout:
            add_dropout(self.model, config.dropout)
        self.channels_last = channels_last
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)

    def parameters(self):
        return self.model.parameters()

    def losses(self, xb: torch.Tensor, yb: torch.Tensor, config: RunConfig, cuda: bool):
        """The minibatch loss (1,) and the logits (1, B, K) of the clean pass, in train mode."""
        self.model.train()
        x, y = xb[0], yb[0]
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if config.adversarial_eps:
            x = x.detach().requires_grad_(True)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=cuda):
            logits = self.model(x)
            loss = F.cross_entropy(logits, y)
            if config.adversarial_eps:
                xa = fgsm_input(x, loss, config.adversarial_eps)
                loss = 0.5 * loss + 0.5 * F.cross_entropy(self.model(xa), y)
        return loss[None], logits[None]

    def evaluator(self, batch_size: int | None, cuda: bool):
        """f(x) -> the eval pass of an inference copy of the model: ``(start, logits (1, B, K))`` by batches."""
        net = inference_copy(self.model)
        return lambda x: ((start, z[None]) for start, z in eval_logits(net, x, batch_size, True, cuda))

    def state_dicts(self) -> list[dict]:
        return [self.model.state_dict()]

    def load_state_dicts(self, states: list[dict]) -> None:
        check_state_dict(states[0], self.model.state_dict(), "model")
        self.model.load_state_dict(states[0])

    def split_optimizer_state(self, state: dict) -> list[dict]:
        return [state]

    @staticmethod
    def merge_optimizer_states(states: list[dict]) -> dict:
        return states[0]


def train_runs(configs: list[RunConfig], data: Data | None = None, *, device: str = "auto", checkpoints=None,
               weights=None, progress: bool | None = None, track_epochs: bool = True, track_batches: bool = True,
               eval_batch_size: int | None = None, stop_after: int | None = None, on_epoch=None) -> list[Trace]:
    """Train the runs of ``configs`` (one run, or seeds of one config as a stack); their traces in order.

    The one training loop of the package: one run trains as a :class:`OneRun`, several as a
    :class:`regutils.stacked.Stack`, and both take the same steps.

    ``checkpoints``: None, or a path per run for its checkpoint (:mod:`regutils.checkpoint`), written
    at the end of every epoch and resumed from when every run has one at the same epoch.
    ``weights``: None, or a path per run for its final state_dict. ``track_epochs`` /
    ``track_batches`` switch the two records off (for measuring their cost); the returned arrays
    are then all False. ``stop_after``: train only the runs' first epochs (to check a stored run
    against a new training); the records of the later epochs stay empty. ``on_epoch(epoch)``:
    called after each epoch (1-based) once its checkpoints are written.
    """
    config = check_stackable(configs)
    for name, paths in (("checkpoints", checkpoints), ("weights", weights)):
        if paths is not None and (isinstance(paths, (str, Path)) or len(paths) != len(configs)):
            raise ValueError(f"{name} must hold one path per run ({len(configs)}), got {paths!r}")
    progress = progress_default() if progress is None else progress
    data = data if data is not None else load_for(config.data, config.arch)
    dev = resolve_device(device)
    cuda = dev.type == "cuda"
    x_tr, y_tr, x_te, y_te = (t.to(dev) for t in (data.x_train, data.y_train, data.x_test, data.y_test))
    n, m, epochs, runs = len(y_tr), len(y_te), config.epochs, len(configs)
    if stop_after is not None and not (is_int(stop_after) and 1 <= stop_after <= epochs):
        raise ValueError(f"stop_after={stop_after!r} must be an integer in 1..{epochs}")
    channels_last = runs == 1 and x_tr.ndim == 4 and (cuda or x_tr.shape[-1] >= 16)  # pays off on large images only

    def fresh():
        family = OneRun(config, data, dev, channels_last) if runs == 1 else Stack.build(configs, data, dev)
        opt = make_optimizer(config, family.parameters())
        # sample order and augmentation of each run, on the CPU
        return family, opt, make_scheduler(config, opt), [torch.Generator().manual_seed(c.seed) for c in configs]

    family, opt, sched, gens = fresh()
    rec, history = new_record(epochs, n, m, (runs,), config.record_scores), new_history(epochs, (runs,))
    start_epoch, step = 0, 0

    # ---- resume: all or nothing, every part loaded into a fresh family and checked before it is adopted
    paths = [Path(p) for p in checkpoints] if checkpoints is not None else []
    states = [usable_checkpoint(p) for p in paths]  # each file read once; an unusable one is moved aside
    found = [s["epoch"] if s is not None else 0 for s in states]
    if len(set(found)) > 1:
        warnings.warn(f"the runs' checkpoints stand at different epochs {sorted(set(found))}; "
                      "training from epoch 0")
    elif paths and all(found):
        try:
            state = merge_run_states(states)
            new_family, new_opt, new_sched, new_gens = fresh()
            new_family.load_state_dicts([s["model"] for s in states])
            # the scheduler was built first: building one sets the rate (OneCycleLR to its start), the saved state wins
            new_opt.load_state_dict(new_family.merge_optimizer_states([s["optimizer"] for s in states]))
            new_sched.load_state_dict(states[0]["scheduler"])
            for g, s in zip(new_gens, states, strict=True):
                g.set_state(s["generator"])
            check_generator_state(states[0]["torch_rng"])
            if not is_int(state["step"]) or state["step"] < 0:
                raise ValueError(f"step={state['step']!r} is not a step count")
            check_record(rec, history, state)
        except Exception as err:  # noqa: BLE001  (whatever a bad checkpoint raises, it is not used)
            for p in paths:
                quarantine(p, f"ignoring unusable checkpoint {p} ({type(err).__name__}: {err}); training from epoch 0")
        else:
            family, opt, sched, gens = new_family, new_opt, new_sched, new_gens
            torch.set_rng_state(states[0]["torch_rng"])  # dropout draws from it
            if cuda and states[0].get("cuda_rng") is not None:
                torch.cuda.set_rng_state(states[0]["cuda_rng"], dev)
            start_epoch, step = restore_record(rec, history, state), state["step"]

    # the record of every sample, one recorder per run; the loop keeps the epochs (they are checkpointed)
    recorders = [Recorder(n, m, data.y_train, data.y_test, record_scores=config.record_scores, keep_epochs=False)
                 for _ in configs]
    for recorder in recorders:
        recorder.step = step
    desc = f"{config.arch} seed {config.seed}" if runs == 1 else f"{config.arch} x{runs} stacked"
    bar = tqdm(range(start_epoch, epochs if stop_after is None else stop_after), desc=desc, unit="epoch",
               initial=start_epoch, total=epochs, disable=not progress, leave=False)
    for epoch in bar:
        # ---- train one epoch: every run on its own minibatches of its own sample order, each sample
        #      recorded at its presentation
        t0 = time.perf_counter()
        lr = opt.param_groups[0]["lr"]
        loss_sum = torch.zeros(runs, device=dev)
        orders = [minibatches(torch.randperm(n, generator=g), config.batch_size) for g in gens]
        for chunks in zip(*orders):
            idx = torch.stack(chunks).to(dev)  # (R, B): batch sizes agree, since n and batch_size do
            xb, yb = x_tr[idx], y_tr[idx]
            if data.augment:
                xb = torch.stack([augment(xb[r], g) for r, g in enumerate(gens)])
            losses, logits = family.losses(xb, yb, config, cuda)
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()  # each run's parameters get the gradient of its own loss only
            opt.step()
            loss_sum += losses.detach() * idx.shape[1]
            if track_batches:
                for recorder, positions, z in zip(recorders, idx, logits.detach()):
                    recorder.record_batch(positions, z)
            step += 1
        sched.step()
        if cuda:
            torch.cuda.synchronize(dev)
        t1 = time.perf_counter()

        # ---- eval-mode pass of every run over all training and all test samples
        if track_epochs:
            logits_of = family.evaluator(eval_batch_size, cuda)
            for split, x in (("train", x_tr), ("test", x_te)):
                for start, z in logits_of(x):
                    positions = torch.arange(start, start + z.shape[-2], device=dev)
                    for recorder, z_run in zip(recorders, z):
                        recorder.record_eval(split, positions, z_run)
        rows = [recorder.end_epoch(complete=track_epochs) for recorder in recorders]
        for name in rec:
            rec[name][:, epoch] = np.stack([row[name] for row in rows])
        t2 = time.perf_counter()

        history["loss"][:, epoch] = loss_sum.double().cpu().numpy() / n
        history["train_acc"][:, epoch] = rec["train_correct"][:, epoch].mean(1)
        history["test_acc"][:, epoch] = rec["test_correct"][:, epoch].mean(1)
        history["lr"][:, epoch], history["seconds"][:, epoch], history["eval_seconds"][:, epoch] = lr, t1 - t0, t2 - t1
        bar.set_postfix(loss=f"{history['loss'][:, epoch].mean():.3f}", train=f"{history['train_acc'][:, epoch].mean():.3f}",
                        test=f"{history['test_acc'][:, epoch].mean():.3f}")
        if paths:
            cuda_rng = torch.cuda.get_rng_state(dev) if cuda else None
            for path, state in zip(paths, run_states(family, opt, sched, gens, step, rec, history, epoch + 1,
                                                    cuda_rng)):
                save_checkpoint(path, state)
        if on_epoch is not None:
            on_epoch(epoch + 1)
    bar.close()
    if weights is not None:
        for path, state in zip(weights, family.state_dicts()):
            save_weights(path, state)

    # each run of a stack is charged its share of the stack's time, so timings add up as for single runs
    share = {k: history[k] / runs for k in ("seconds", "eval_seconds")}
    extra = {"stacked_runs": runs} if runs > 1 else {}
    return [finish_trace(c, data, {k: v[r] for k, v in rec.items()}, {k: share.get(k, v)[r] for k, v in history.items()},
                         dev, start_epoch, **extra)
            for r, c in enumerate(configs)]


def run_states(family, opt, sched, gens, step: int, rec: dict, history: dict, epoch: int, cuda_rng=None) -> list[dict]:
    """Each run's checkpoint after ``epoch`` epochs, in the single-run format of :mod:`regutils.checkpoint`."""
    part, rng, sched_state = record_until(rec, history, epoch), torch.get_rng_state(), sched.state_dict()
    return [{"epoch": epoch, "step": step, "model": model, "optimizer": optimizer, "scheduler": sched_state,
             "generator": gens[r].get_state(), "torch_rng": rng, "cuda_rng": cuda_rng,
             "rec": {k: v[r].clone() for k, v in part["rec"].items()},
             "history": {k: v[r].clone() for k, v in part["history"].items()}}
            for r, (model, optimizer) in enumerate(zip(family.state_dicts(),
                                                       family.split_optimizer_state(opt.state_dict())))]


def train(config: RunConfig, data: Data | None = None, *, checkpoint=None, weights=None, **options) -> Trace:
    """Train one run and return its trace: :func:`train_runs` of ``[config]``.

    ``checkpoint`` / ``weights``: one path each (see :func:`train_runs` for them and ``options``).
    """
    return train_runs([config], data, checkpoints=None if checkpoint is None else [checkpoint],
                      weights=None if weights is None else [weights], **options)[0]


def get_traces(configs: list[RunConfig], *, cache: Cache | None = None, device: str = "auto",
               progress: bool | None = None, max_stack: int = 1) -> list[Trace]:
    """The traces of ``configs`` (seeds of one config): loaded from the cache, or trained (resuming checkpoints) and cached.

    The one orchestration of the package. A complete, verified trace is read without a lock (a
    read-only cache serves it). The missing runs' file locks are held while they train, so a
    concurrent caller of one of them waits and loads it. Runs whose checkpoints stand at the same
    epoch train together, at most ``max_stack`` in one stack (1: run by run). A cached file that
    fails verification is moved aside and the run trained again.
    """
    config = check_stackable(configs)
    check("max_stack", max_stack, Int(1))
    resolve_device(device)
    cache = cache or Cache()
    data = load_for(config.data, config.arch)
    keys = [run_key(c, data) for c in configs]
    for key in keys:
        record_served(key)
    traces = {k: t for k in keys if (t := cache.cached(k)) is not None}
    for key in traces:
        cache.drop_stale_checkpoint(key)  # left by a kill between saving a trace and removing its checkpoint
    missing = sorted(set(keys) - set(traces))
    with contextlib.ExitStack() as held:
        for key in missing:  # one global order: no deadlock between overlapping calls
            held.enter_context(cache.lock(key))
        for key in missing:
            cache.remove_temporary(key)
            if (trace := cache.cached(key, aside=True)) is not None:
                traces[key] = trace
                cache.checkpoint_path(key).unlink(missing_ok=True)
        by_epoch: dict[int, list] = {}
        for c, k in zip(configs, keys):
            if k not in traces:
                by_epoch.setdefault(checkpoint_epoch(cache.checkpoint_path(k)), []).append((c, k))
        for _, todo in sorted(by_epoch.items(), reverse=True):
            for start in range(0, len(todo), max_stack):
                group = todo[start:start + max_stack]
                trained = train_runs([c for c, _ in group], data, device=device, progress=progress,
                                     checkpoints=[cache.checkpoint_path(k) for _, k in group],
                                     weights=[cache.weights_path(k) for _, k in group])
                for (_, key), trace in zip(group, trained):
                    cache.save(key, trace)
                    traces[key] = trace
                    cache.checkpoint_path(key).unlink(missing_ok=True)
    return [traces[k] for k in keys]


def get_run(config: RunConfig, *, cache: Cache | None = None, device: str = "auto", progress: bool | None = None) -> Trace:
    """The trace of ``config``, from the cache or trained and cached (:func:`get_traces`)."""
    return remember(get_traces([config], cache=cache, device=device, progress=progress)[0])


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
        check_state_dict(state, model.state_dict(), "weights")
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
    check("runs", runs, Int(1, MAX_RUNS, strict=True))
    if is_int(config.seed) and config.seed + runs - 1 > MAX_SEED:
        raise ValueError(f"seed={config.seed} with runs={runs} reaches seed {config.seed + runs - 1}, "
                         f"beyond the largest seed {MAX_SEED}")
    return [replace(config, seed=config.seed + r) for r in range(runs)]


def get_runs(config: RunConfig, runs: int, *, cache: Cache | None = None, device: str = "auto",
             progress: bool | None = None, stacked: bool | None = None, max_stack: int = 16) -> Trace:
    """``runs`` seeds of ``config`` stacked on a leading run axis.

    ``stacked``: train the missing seeds together, at most ``max_stack`` in one stacked model
    (:mod:`regutils.stacked`), else run by run, each under its own lock;
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
        traces = get_traces(configs, cache=cache, device=device, progress=progress, max_stack=max_stack)
        return stack([remember(t) for t in traces])
    bar = tqdm(configs, desc=f"{config.arch} runs", unit="run", disable=not progress or runs == 1)
    return stack([get_run(c, cache=cache, device=device, progress=progress) for c in bar])
