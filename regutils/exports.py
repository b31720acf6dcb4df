"""Files the other tools read (dataset cartography, AUM, plain ``.npy`` scores), and their import back.

    from regutils import exports
    exports.data_map_jsonl("out/training_dynamics", logits_by_epoch, y_train)   # (T, N, C), (N,)
    logits, labels = exports.read_data_map("out/training_dynamics")
    correct, prob = exports.record_from_logits(logits, labels)                  # (T, N) bool, float16
    exports.aum_csv("out/aum_values.csv", trace.train_margin)                   # per sample, AUM code's columns
    exports.score_npy("out/scores", {"aum": a, "el2n": e})                       # out/scores/aum.npy, el2n.npy
    exports.read_scores("out/scores")                                           # {"aum": ..., "el2n": ...}

Formats:

=====================  ==============================================================================
data_map_jsonl         one JSON-lines file per epoch, ``dynamics_epoch_{t}.jsonl`` with t = 0..T-1, one
                       line per training sample: ``{"guid": <id>, "logits_epoch_{t}": [C floats],
                       "gold": <label>}``: what ``log_training_dynamics`` of the dataset-cartography
                       code (allenai/cartography, Swayamdipta et al. 2020) writes and its
                       ``read_training_dynamics`` reads from ``<model_dir>/training_dynamics/``
                       (it numbers epochs from 0 and counts the files of that directory, so the
                       directory should hold these files only)
aum_csv                the AUM code's (asappresearch/aum) ``aum_values.csv``: columns ``sample_id,aum``,
                       one row per sample, sorted by AUM from high to low as ``AUMCalculator.finalize``
                       writes it; ``full=True``: its ``full_aum_records.csv`` columns that the margins
                       determine, ``sample_id,num_measurements,target_val,margin,aum`` (one row per
                       sample and epoch, ``target_val`` the label, ``aum`` the running mean margin,
                       sorted by sample and measurement); the logit columns are left out
score_npy              ``<name>.npy`` per score, samples in dataset order along the last axis
=====================  ==============================================================================

Every file is written atomically (:func:`regutils.trace.atomic_write`); they are plain files, unsealed,
since other tools read them.
"""
from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .loop import label_record
from .scores import aum
from .trace import atomic_write

EPOCH_FILE = "dynamics_epoch_{}.jsonl"
_EPOCH_FILE = re.compile(r"dynamics_epoch_(\d+)\.jsonl")
_SCORE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def _write_text(path: Path, text: str) -> Path:
    atomic_write(path, lambda f: f.write(text.encode()))
    return path


def _check_labels(labels, n: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers of shape ({n},), got {labels.dtype} of shape {labels.shape}")
    return labels


def data_map_jsonl(directory, logits_by_epoch, labels, guids=None) -> list[Path]:
    """Write the training dynamics in the dataset-cartography format: one ``dynamics_epoch_{t}.jsonl`` per epoch.

    Parameters
    ----------
    directory : path
        Where the files go (cartography reads ``<model_dir>/training_dynamics/``); created if missing.
    logits_by_epoch : array-like, float, shape (T, N, C)
        The logits of every training sample at the end of every epoch.
    labels : array-like of int, shape (N,)
        The gold labels.
    guids : sequence of N ints or strings, optional
        Sample ids (default: positions 0..N-1).

    Returns
    -------
    list of Path
        The T files, epoch 0 first.
    """
    logits = np.asarray(logits_by_epoch)
    if logits.ndim != 3 or not np.issubdtype(logits.dtype, np.floating):
        raise ValueError(f"logits_by_epoch must be floats of shape (T, N, C), got {logits.dtype} {logits.shape}")
    n_epochs, n, _ = logits.shape
    labels = _check_labels(labels, n)
    guids = list(range(n)) if guids is None else [g.item() if isinstance(g, np.generic) else g for g in guids]
    if len(guids) != n or len(set(guids)) != n:
        raise ValueError(f"guids must be {n} distinct ids, one per sample, "
                         f"got {len(guids)} ({len(set(guids))} distinct)")
    directory = Path(directory)
    stale = [p.name for p in directory.glob("dynamics_epoch_*.jsonl")
             if (m := _EPOCH_FILE.fullmatch(p.name)) and int(m.group(1)) >= n_epochs]
    if stale:  # the reader would take them for later epochs of this run
        raise ValueError(f"{directory} holds dynamics of later epochs ({', '.join(sorted(stale))}): "
                         "write to an empty directory")
    values = logits.astype(np.float64).tolist()  # Python floats: json writes them exactly (repr)
    gold = labels.tolist()
    paths = []
    for t in range(n_epochs):
        key = f"logits_epoch_{t}"
        text = "".join(json.dumps({"guid": g, key: v, "gold": y}) + "\n" for g, v, y in zip(guids, values[t], gold))
        paths.append(_write_text(directory / EPOCH_FILE.format(t), text))
    return paths


def read_data_map(directory, with_guids: bool = False):
    """Read a directory of ``dynamics_epoch_{t}.jsonl`` files (cartography's format) back into arrays.

    Parameters
    ----------
    directory : path
        Holds ``dynamics_epoch_0.jsonl`` ... ``dynamics_epoch_{T-1}.jsonl``.
    with_guids : bool
        Also return the sample ids.

    Returns
    -------
    logits : ndarray, float64, shape (T, N, C)
        Samples in the order of epoch 0's file; later epochs are matched by guid.
    labels : ndarray, int64, shape (N,)
    guids : list, only with ``with_guids``
    """
    directory = Path(directory)
    found = sorted(int(m.group(1)) for p in directory.glob("dynamics_epoch_*.jsonl")
                   if (m := _EPOCH_FILE.fullmatch(p.name)))
    if not found or found != list(range(len(found))):
        raise ValueError(f"{directory} must hold dynamics_epoch_0.jsonl ... dynamics_epoch_{{T-1}}.jsonl, "
                         f"found epochs {found}")
    epochs, guids, labels = [], None, None
    for t in found:
        path = directory / EPOCH_FILE.format(t)
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        try:
            ids = [r["guid"] for r in rows]
            values = np.array([r[f"logits_epoch_{t}"] for r in rows], dtype=np.float64)
            gold = np.array([r["gold"] for r in rows], dtype=np.int64)
        except (KeyError, ValueError) as err:
            raise ValueError(f"{path}: not a training-dynamics file ({type(err).__name__}: {err})") from err
        if guids is None:
            guids, labels, position = ids, gold, {g: i for i, g in enumerate(ids)}
        else:
            if set(ids) != set(guids) or len(ids) != len(guids):
                raise ValueError(f"{path} holds other samples than {EPOCH_FILE.format(0)}")
            order = np.array([position[g] for g in ids])
            if not np.array_equal(labels[order], gold):
                raise ValueError(f"{path}: gold labels differ from those of epoch 0")
            values[order] = values.copy()  # rows into epoch 0's sample order
        epochs.append(values)
    logits = np.stack(epochs)
    return (logits, labels, guids) if with_guids else (logits, labels)


def record_from_logits(logits, labels) -> tuple[np.ndarray, np.ndarray]:
    """The engine's record from logits: correctness and probability of the label, as :func:`regutils.loop.evaluate`.

    Parameters
    ----------
    logits : array-like, float, shape (..., T, N, C)
    labels : array-like of int, shape (N,)

    Returns
    -------
    correct : ndarray, bool, shape (..., T, N)
        argmax(logits) == label (on ties, the first largest logit counts as the prediction).
    prob : ndarray, float16, shape (..., T, N)
        Softmax probability of the label, computed in float32 and stored as float16 as the engine does.
    """
    z = torch.as_tensor(np.asarray(logits)).float()
    if z.ndim < 3:
        raise ValueError(f"logits must have shape (..., T, N, C), got {tuple(z.shape)}")
    y = torch.as_tensor(_check_labels(labels, z.shape[-2])).long()
    if len(y) and (y.min() < 0 or y.max() >= z.shape[-1]):
        raise ValueError(f"labels must lie in 0..{z.shape[-1] - 1}")
    correct, prob = label_record(z, y)
    return correct.numpy(), prob.numpy()


def aum_csv(path, margins, labels=None, *, full: bool = False, sample_ids=None) -> Path:
    """Write AUM values in the AUM code's CSV format (asappresearch/aum).

    Parameters
    ----------
    path : path
        The CSV file (the AUM code names it ``aum_values.csv``, or ``full_aum_records.csv`` with ``full``).
    margins : array-like, float, shape (T, N)
        Margin of each sample at each epoch (:meth:`regutils.recorder.Recorder.margins`).
    labels : array-like of int, shape (N,)
        Needed with ``full`` (the ``target_val`` column).
    full : bool
        False: ``sample_id,aum``, one row per sample, highest AUM first. True: one row per sample
        and epoch, ``sample_id,num_measurements,target_val,margin,aum``.
    sample_ids : sequence of N ids, optional
        Default: positions 0..N-1.
    """
    margins = np.asarray(margins)
    if margins.ndim != 2:
        raise ValueError(f"margins must have shape (T, N), got shape {margins.shape}")
    n_epochs, n = margins.shape
    ids = np.arange(n) if sample_ids is None else np.asarray(sample_ids)
    if ids.shape != (n,):
        raise ValueError(f"sample_ids must have shape ({n},), got shape {ids.shape}")
    if not full:
        frame = pd.DataFrame({"sample_id": ids, "aum": aum(margins)})
        frame = frame.sort_values("aum", ascending=False, kind="stable")
    else:
        if labels is None:
            raise ValueError("full=True needs the labels (the target_val column)")
        labels = _check_labels(labels, n)
        m = margins.astype(np.float64)
        running = np.cumsum(m, axis=0) / np.arange(1, n_epochs + 1)[:, None]  # AUM after each measurement
        frame = pd.DataFrame({"sample_id": np.tile(ids, n_epochs), "num_measurements": np.repeat(
            np.arange(1, n_epochs + 1), n), "target_val": np.tile(labels, n_epochs), "margin": m.ravel(),
            "aum": running.ravel()})
        frame = frame.sort_values(["sample_id", "num_measurements"], kind="stable")
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    return _write_text(Path(path), buf.getvalue())


def read_aum_csv(path) -> tuple[np.ndarray, np.ndarray]:
    """The per-sample AUM of an ``aum_values.csv``: (sample_id (N,), aum float64 (N,)), sorted by sample_id."""
    frame = pd.read_csv(path)
    if list(frame.columns[:2]) != ["sample_id", "aum"]:
        raise ValueError(f"{path}: expected the columns sample_id,aum, got {','.join(frame.columns)}")
    frame = frame.sort_values("sample_id", kind="stable")
    return frame["sample_id"].to_numpy(), frame["aum"].to_numpy(np.float64)


def score_npy(directory, scores: dict[str, np.ndarray]) -> list[Path]:
    """Write one ``<name>.npy`` per score (samples in dataset order along the last axis); the paths."""
    if not scores:
        raise ValueError("scores is empty: nothing to write")
    arrays = {}
    for name, values in scores.items():
        if not isinstance(name, str) or not _SCORE_NAME.fullmatch(name):
            raise ValueError(f"score name {name!r} must be letters, digits, '_', '.', '-' (it names a file)")
        values = np.asarray(values)
        if values.ndim == 0 or values.dtype == object:
            raise ValueError(f"score {name!r} must be a numeric array with a sample axis, got {values.dtype} "
                             f"{values.shape}")
        arrays[name] = values
    lengths = {a.shape[-1] for a in arrays.values()}
    if len(lengths) > 1:
        raise ValueError(f"scores cover different numbers of samples: {sorted(lengths)}")
    directory = Path(directory)
    paths = []
    for name, values in arrays.items():
        atomic_write(directory / f"{name}.npy", lambda f, v=values: np.save(f, v, allow_pickle=False))
        paths.append(directory / f"{name}.npy")
    return paths


def read_scores(directory) -> dict[str, np.ndarray]:
    """Every ``<name>.npy`` of ``directory``, by name."""
    return {p.stem: np.load(p, allow_pickle=False) for p in sorted(Path(directory).glob("*.npy"))}
