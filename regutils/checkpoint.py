"""Checkpoints and final weights of a run: sealed torch files of tensors, loaded with ``weights_only=True``.

    from regutils.checkpoint import load_checkpoint, load_weights, save_checkpoint, save_weights
    save_checkpoint(path, state)         # sealed for the run key the file is named after
    state = load_checkpoint(path, key)   # a dict, or TraceError when damaged or another run's
    model.load_state_dict(load_weights(path, key))

A checkpoint holds what resuming a run needs (single runs and each run of a
stack alike): ``epoch``, ``step``, ``model``, ``optimizer``, ``scheduler``,
``generator`` (the sample-order generator), ``torch_rng``, ``cuda_rng``, and
the record and history of the epochs done (:func:`record_until`). Nothing is
adopted before every part is checked against the run it resumes
(:func:`check_record`, :func:`check_state_dict`, :func:`check_generator_state`).
The seal is that of every cache file (:mod:`regutils.trace`).
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from .trace import SCORE_ARRAYS, TraceError, file_key, quarantine, verify, write_sealed
from .validation import is_int


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


def save_checkpoint(path, state: dict) -> None:
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


def new_record(epochs: int, n: int, m: int, runs: tuple[int, ...] = (), scores: bool = False) -> dict[str, np.ndarray]:
    """Empty per-epoch record arrays of a run (or ``runs`` stacked runs) with n training and m test samples.

    ``scores``: with the margin, loss and EL2N arrays too (:data:`regutils.trace.SCORE_ARRAYS`).
    """
    rec = {
        "train_correct": np.zeros((*runs, epochs, n), bool), "test_correct": np.zeros((*runs, epochs, m), bool),
        "train_prob": np.zeros((*runs, epochs, n), np.float16), "test_prob": np.zeros((*runs, epochs, m), np.float16),
        "batch_correct": np.zeros((*runs, epochs, n), bool), "batch_step": np.full((*runs, epochs, n), -1, np.int32),
    }
    if scores:
        rec.update({name: np.zeros((*runs, epochs, n if name.startswith("train") else m), np.float16)
                    for name in SCORE_ARRAYS})
    return rec


def new_history(epochs: int, runs: tuple[int, ...] = ()) -> dict[str, np.ndarray]:
    return {k: np.zeros((*runs, epochs)) for k in ("loss", "train_acc", "test_acc", "lr", "seconds", "eval_seconds")}


def record_until(rec: dict, history: dict, epochs: int) -> dict:
    """The first ``epochs`` epochs of a record and history (single or stacked runs), as tensors for a checkpoint."""
    return {"rec": {k: torch.from_numpy(np.ascontiguousarray(v[..., :epochs, :])) for k, v in rec.items()},
            "history": {k: torch.from_numpy(np.ascontiguousarray(v[..., :epochs])) for k, v in history.items()}}


def check_record(rec: dict, history: dict, state: dict) -> int:
    """The epochs a checkpoint's record holds, once its every array fits ``rec`` / ``history``; ValueError otherwise."""
    done = state["epoch"]
    if not is_int(done) or not 0 < done <= next(iter(history.values())).shape[-1]:
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


def check_state_dict(state: dict, like: dict, what: str) -> None:
    """ValueError unless ``state`` has exactly the keys, shapes and dtypes of ``like``."""
    if not isinstance(state, dict) or set(state) != set(like):
        raise ValueError(f"its {what} does not hold this model's tensors")
    for k, v in like.items():
        if not isinstance(state[k], torch.Tensor) or state[k].shape != v.shape or state[k].dtype != v.dtype:
            raise ValueError(f"its {what} tensor {k!r} does not fit this model")


def check_generator_state(state) -> None:
    torch.Generator().set_state(state)  # raises on a state of the wrong size or type


def usable_checkpoint(path) -> dict | None:
    """The run checkpoint at ``path`` with a valid epoch; None when there is none or it is unusable (moved aside)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        state = load_checkpoint(path, file_key(path))
        if not is_int(state["epoch"]) or state["epoch"] < 0:
            raise ValueError(f"epoch={state['epoch']!r}")
        return state
    except Exception as err:  # noqa: BLE001  (whatever a bad checkpoint raises, it is not used)
        reason = err if isinstance(err, TraceError) else f"{path}: {type(err).__name__}: {err}"
        quarantine(path, f"ignoring unusable checkpoint {reason}; training from epoch 0")
        return None


def checkpoint_epoch(path) -> int:
    """The epoch the run checkpoint at ``path`` stands at; 0 when there is none or it is unusable (moved aside)."""
    state = usable_checkpoint(path)
    return state["epoch"] if state is not None else 0


def merge_run_states(states: list[dict]) -> dict:
    """The epoch, step, record and history of runs' checkpoints at one epoch, records stacked on a run axis.

    ValueError when they stand at different epochs or steps.
    """
    first = states[0]
    for s in states:
        if s["epoch"] != first["epoch"] or s["step"] != first["step"]:
            raise ValueError(f"checkpoints at different epochs or steps ({s['epoch']} and {first['epoch']})")
    return {"epoch": first["epoch"], "step": first["step"],
            "rec": {k: torch.stack([s["rec"][k] for s in states]) for k in first["rec"]},
            "history": {k: torch.stack([s["history"][k] for s in states]) for k in first["history"]}}
