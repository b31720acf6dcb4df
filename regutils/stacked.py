"""Many seeds of one model as one stacked model: a run family for the training loop.

    from regutils.train import RunConfig, get_runs, seeds_of, train_runs
    runs = get_runs(RunConfig(arch="resnet20", data=DataConfig("cifar10")), 8, stacked=True)  # cached
    traces = train_runs(seeds_of(config, 8))    # the same, uncached: 8 seeds, one stack

A small model leaves a GPU idle between its kernel launches. Here the R runs'
parameters and buffers are stacked on a leading axis (``torch.func``'s
``stack_module_state``) and one ``vmap``-ed forward pass runs every seed on
its own minibatch, so each launch does R times the work. The loop is
:func:`regutils.train.train_runs`, the one that trains single runs: each run
keeps what makes it that run (its seed's initialization, sample order and
augmentation draws), and the optimizer (element-wise for every supported
optimizer) updates each run's slice from its own loss only. Traces have the
single-run format; ``meta['stacked_runs']`` says how many runs shared the
training. Results agree with single runs up to float rounding (a stacked
convolution is a grouped one), not bit for bit. On CUDA a stack trains in
float32 (convolutions on TF32 tensor cores, the PyTorch default), not under
bf16 autocast: vmap's BatchNorm rule needs the running statistics in the
input's dtype.

:func:`regutils.train.get_runs` stacks on CUDA and trains run by run on the
CPU, where stacking gains nothing. The configs must differ in their seed
only. Each run's checkpoint has the single-run format (its slice of the
stacked weights and optimizer state), so a killed stack resumes whatever the
next call does: as a stack of any size or run by run.
"""
from __future__ import annotations

import copy
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

from . import models
from .checkpoint import check_state_dict
from .data import Data
from .loop import RunConfig, eval_logits


def check_stackable(configs: list[RunConfig]) -> RunConfig:
    """The shared config (seed of the first) when ``configs`` differ in their seed only; ValueError otherwise.

    One config is always stackable; several cannot have dropout or adversarial training (vmap draws
    no random numbers and takes no input gradient).
    """
    if not configs:
        raise ValueError("configs must hold at least one RunConfig")
    for c in configs:
        c.validate()
    first = configs[0]
    odd = [c for c in configs if replace(c, seed=first.seed) != first]
    if odd:
        raise ValueError(f"stacked runs must differ in their seed only; {odd[0]} differs from {first}")
    if len(configs) > 1 and (first.dropout or first.adversarial_eps):
        raise ValueError("stacked training has neither dropout nor adversarial training; "
                         "train these runs one by one (stacked=False)")
    seeds = [c.seed for c in configs]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"stacked runs need distinct seeds, got {seeds}")
    return first


class Stack:
    """R models of one architecture as stacked tensors, with a vmap-ed forward pass.

    The run family of :func:`regutils.train.train_runs` for R > 1 (:class:`regutils.train.OneRun`
    is the family of one): ``parameters``, ``losses``, ``evaluator``, ``state_dicts``,
    ``load_state_dicts``, ``split_optimizer_state``, ``merge_optimizer_states``.
    """

    def __init__(self, nets: list[torch.nn.Module]):
        self.names = list(nets[0].state_dict())  # the order of a single model's state_dict
        self.params, self.buffers = stack_module_state(nets)
        self.base = copy.deepcopy(nets[0]).to("meta")
        call = lambda p, b, x: functional_call(self.base, (p, b), (x,))  # noqa: E731
        self._train = vmap(call)  # every run on its own minibatch: x is (R, B, ...)
        self._eval = vmap(call, in_dims=(0, 0, None))  # every run on the same batch

    @classmethod
    def build(cls, configs: list[RunConfig], data: Data, dev: torch.device) -> "Stack":
        """The stack of ``configs``' networks, each initialized as its single run is."""
        nets = []
        for c in configs:
            torch.manual_seed(c.seed)
            nets.append(models.build(c.arch, data.in_channels, data.num_classes).to(dev))
        return cls(nets)

    @property
    def runs(self) -> int:
        return len(self.params[self.names[0]]) if self.names[0] in self.params else len(self.buffers[self.names[0]])

    def parameters(self):
        return self.params.values()

    def losses(self, xb: torch.Tensor, yb: torch.Tensor, config: RunConfig, cuda: bool):
        """Each run's mean loss on its own minibatch ``xb[r]`` (R,), and the logits (R, B, K).

        Their sum is what the loop differentiates: it keeps every run's gradient apart.
        """
        logits = self.train_logits(xb)
        losses = F.cross_entropy(logits.flatten(0, 1), yb.flatten(), reduction="none")
        return losses.view(self.runs, -1).mean(1), logits

    def evaluator(self, batch_size: int | None, cuda: bool):
        """f(x) -> the eval pass of every run: ``(start, logits (R, B, K))`` by batches."""
        return lambda x: eval_logits(self.eval_logits, x, batch_size)

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

    def load_state_dicts(self, states: list[dict]) -> None:
        """Adopt one single-run state_dict per run, once they fit together (ValueError otherwise)."""
        tensors = {k: torch.stack([s[k] for s in states]) for k in states[0]}
        check_state_dict(tensors, self.state_tensors(), "model")
        self.load(tensors)

    def split_optimizer_state(self, state: dict) -> list[dict]:
        """The stack's optimizer state as one single-run optimizer state per run."""
        runs = self.runs
        return [{"state": {i: {k: v[r].clone() if _is_stacked(v, runs) else v for k, v in s.items()}
                           for i, s in state["state"].items()},
                 "param_groups": state["param_groups"]} for r in range(runs)]

    @staticmethod
    def merge_optimizer_states(states: list[dict]) -> dict:
        """Single-run optimizer states as one stack's (the inverse of :meth:`split_optimizer_state`)."""
        first = states[0]
        return {"state": {i: {k: torch.stack([s["state"][i][k] for s in states])
                              if isinstance(v, torch.Tensor) and v.ndim > 0 else v for k, v in st.items()}
                          for i, st in first["state"].items()},
                "param_groups": first["param_groups"]}


def _is_stacked(v, runs: int) -> bool:
    return isinstance(v, torch.Tensor) and v.ndim > 0 and v.shape[0] == runs
