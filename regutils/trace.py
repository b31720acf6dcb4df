"""The trace: what one training run recorded about every sample, and its on-disk cache.

    from regutils.trace import Cache, stack
    cache = Cache()                       # $REGUTILS_CACHE or ~/.cache/regutils
    trace = cache.load(key)               # a Trace, or TraceError
    runs = stack([trace_a, trace_b])      # arrays gain a leading run axis

A :class:`Trace` holds, for T epochs, N training and M test samples:

================  ===============  =============================================
train_correct     bool (T, N)      eval-mode correctness at the end of epoch t
test_correct      bool (T, M)      the same for the test set
train_prob        float16 (T, N)   eval-mode softmax probability of the label
test_prob         float16 (T, M)
batch_correct     bool (T, N)      train-mode correctness at the one
                                   presentation of the sample in epoch t
batch_step        int32 (T, N)     global optimizer step of that presentation
y_train, y_test   int64            labels trained / tested on
index_train/test  int64            index of each sample in its source data set
noisy_train       bool (N,)        label replaced by label noise
history           float64 (T,)     per epoch: loss, train_acc, test_acc, lr,
                                   seconds (training), eval_seconds
meta              dict             config, data fingerprint, versions, device,
                                   timings, final accuracies
================  ===============  =============================================

File format (``<key>.npz``, a plain numpy zip): boolean arrays are bit-packed
along the sample axis (``np.packbits(axis=-1)``, stored as ``<name>.bits``
with the sample count in ``meta['shapes']``); history columns are stored as
``history.<column>``; ``meta`` is a JSON string holding, besides the run's
metadata, the sha256 of every stored array. Loading checks every digest, so
a truncated or altered file raises :class:`TraceError` and is never used.
Writes go to a temporary file in the same directory and are renamed into
place (atomic on POSIX).
"""
from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import tempfile
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

PACKED = ("train_correct", "test_correct", "batch_correct", "noisy_train")
ARRAYS = ("train_correct", "test_correct", "train_prob", "test_prob", "batch_correct", "batch_step",
          "y_train", "y_test", "index_train", "index_test", "noisy_train")
FORMAT_VERSION = 1


class TraceError(RuntimeError):
    """A trace or checkpoint file that is missing, truncated or corrupt."""


@dataclass
class Trace:
    train_correct: np.ndarray
    test_correct: np.ndarray
    train_prob: np.ndarray
    test_prob: np.ndarray
    batch_correct: np.ndarray
    batch_step: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    index_train: np.ndarray
    index_test: np.ndarray
    noisy_train: np.ndarray
    history: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    @property
    def epochs(self) -> int:
        return self.train_correct.shape[-2]

    @property
    def runs(self) -> int:
        """Number of runs stacked on the leading axis (1 for a single run)."""
        return 1 if self.train_correct.ndim == 2 else self.train_correct.shape[0]

    def run(self, r: int) -> "Trace":
        """Run ``r`` of a stacked trace."""
        if self.train_correct.ndim == 2:
            raise ValueError("run() needs a stacked trace; this one holds a single run")
        per_run = {name: getattr(self, name)[r] for name in ARRAYS[:6]}
        shared = {name: getattr(self, name) for name in ARRAYS[6:]}
        return Trace(**per_run, **shared, history={k: v[r] for k, v in self.history.items()},
                     meta=self.meta["runs"][r])


def stack(traces: list[Trace]) -> Trace:
    """Stack single runs of the same data into one trace with a leading run axis."""
    if not traces:
        raise ValueError("stack() needs at least one trace")
    first = traces[0]
    for t in traces[1:]:
        for name in ARRAYS[6:]:
            if not np.array_equal(getattr(t, name), getattr(first, name)):
                raise ValueError(f"cannot stack runs with different {name}: they were trained on different data")
        if t.train_correct.shape != first.train_correct.shape:
            raise ValueError("cannot stack runs with different numbers of epochs or samples")
    per_run = {name: np.stack([getattr(t, name) for t in traces]) for name in ARRAYS[:6]}
    shared = {name: getattr(first, name) for name in ARRAYS[6:]}
    history = {k: np.stack([t.history[k] for t in traces]) for k in first.history}
    return Trace(**per_run, **shared, history=history, meta={"runs": [t.meta for t in traces]})


# --- file format


def _digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _atomic_write(path: Path, write) -> None:
    """Call ``write(file)`` on a temporary file next to ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OSError(err.errno, f"disk full: no space left to write {path.name} in {path.parent}; "
                                     "free space there or choose another cache directory") from err
        raise


def save(trace: Trace, path: str | os.PathLike) -> Path:
    path = Path(path)
    stored, shapes = {}, {}
    for name in ARRAYS:
        a = np.asarray(getattr(trace, name))
        if name in PACKED:
            shapes[name] = a.shape
            stored[f"{name}.bits"] = np.packbits(a.astype(bool), axis=-1)
        else:
            stored[name] = a
    for k, v in trace.history.items():
        stored[f"history.{k}"] = np.asarray(v, dtype=np.float64)
    kept = {k: v for k, v in trace.meta.items() if k != "source"}  # where it was loaded from: not stored
    meta = dict(kept, format_version=FORMAT_VERSION, shapes=shapes, digests={k: _digest(v) for k, v in stored.items()})
    stored["meta"] = np.array(json.dumps(meta, default=str))
    _atomic_write(path, lambda f: np.savez(f, **stored))
    return path


def load(path: str | os.PathLike) -> Trace:
    path = Path(path)
    if not path.is_file():
        raise TraceError(f"no trace at {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            stored = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise TraceError(f"{path} is truncated or not a trace file ({err})") from err
    try:
        meta = json.loads(str(stored.pop("meta")))
        digests = meta.pop("digests")
        shapes = meta.pop("shapes")
    except (KeyError, json.JSONDecodeError) as err:
        raise TraceError(f"{path} has no valid metadata ({err})") from err
    if set(digests) != set(stored):
        raise TraceError(f"{path}: stored arrays {sorted(stored)} differ from those recorded {sorted(digests)}")
    for k, v in stored.items():
        if _digest(v) != digests[k]:
            raise TraceError(f"{path}: checksum mismatch in {k!r}; the file is corrupt")
    arrays = {}
    for name in ARRAYS:
        if name in PACKED:
            shape = tuple(shapes[name])
            arrays[name] = np.unpackbits(stored[f"{name}.bits"], axis=-1, count=shape[-1]).astype(bool)
        else:
            arrays[name] = stored[name]
    history = {k.split(".", 1)[1]: v for k, v in stored.items() if k.startswith("history.")}
    return Trace(**arrays, history=history, meta=meta)


# --- cache


def default_cache_dir() -> Path:
    return Path(os.environ.get("REGUTILS_CACHE") or Path.home() / ".cache" / "regutils")


def cache_key(config: dict, data_fingerprint: str) -> str:
    """Content address of a run: its full config and the data it trains on."""
    blob = json.dumps({"config": config, "data": data_fingerprint, "format": FORMAT_VERSION},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


class Cache:
    """A directory of traces (``<key>.npz``), final weights (``<key>.weights.pt``) and checkpoints.

    ``bundles``: read-only trace bundles (:mod:`regutils.bundle`) that serve, verified, the keys the
    directory lacks; None: ``$REGUTILS_BUNDLE``. A trace carries ``meta["source"]``: ``"cache"`` or
    ``"bundle:<dir>"`` (set when loaded, never stored).
    """

    def __init__(self, root: str | os.PathLike | None = None, bundles=None):
        from .bundle import open_bundles

        self.root = Path(root) if root is not None else default_cache_dir()
        self.bundles = open_bundles(bundles)

    def bundled(self, key: str, kind: str = "trace"):
        """The first bundle listing ``key``'s ``kind`` file (trace, weights) when the directory lacks it, or None."""
        from .bundle import find

        own = self.trace_path(key) if kind == "trace" else self.weights_path(key)
        return None if own.is_file() else find(self.bundles, key, kind)

    def weights_file(self, key: str) -> Path | None:
        """The final weights of ``key``: the directory's, else a bundle's once checked (a refusal warns), else None."""
        if self.weights_path(key).is_file():
            return self.weights_path(key)
        if (bundle := self.bundled(key, "weights")) is not None:
            try:
                return bundle.weights(key)
            except TraceError as err:
                warnings.warn(f"{err}; training the run again")
        return None

    def trace_path(self, key: str) -> Path:
        return self.root / f"{key}.npz"

    def checkpoint_path(self, key: str) -> Path:
        return self.root / f"{key}.ckpt.pt"

    def weights_path(self, key: str) -> Path:
        return self.root / f"{key}.weights.pt"

    def lock_path(self, key: str) -> Path:
        return self.root / f"{key}.lock"

    def has(self, key: str) -> bool:
        return self.trace_path(key).is_file() or self.bundled(key) is not None

    def load(self, key: str) -> Trace:
        if (bundle := self.bundled(key)) is not None:
            return bundle.trace(key)  # BundleError (a TraceError) when refused
        trace = load(self.trace_path(key))
        trace.meta["source"] = "cache"
        return trace

    def save(self, key: str, trace: Trace) -> Path:
        return save(trace, self.trace_path(key))

    def remove_temporary(self, key: str) -> None:
        """Remove temporary files of ``key`` left by a process killed mid-write (call it holding the key's lock)."""
        for tmp in self.root.glob(f".{key}.*.tmp"):
            tmp.unlink(missing_ok=True)

    def keys(self) -> list[str]:
        return sorted(p.name[: -len(".npz")] for p in self.root.glob("*.npz"))


def config_dict(config) -> dict:
    """A dataclass config as plain JSON-ready data (nested dataclasses included)."""
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))
