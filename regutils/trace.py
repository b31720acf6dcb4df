"""The trace: what one training run recorded about every sample, its file format and the seal of every cache file.

    from regutils.trace import load, save, stack, verify
    save(trace, path, key)                # sealed for the run key
    trace = load(path, key)               # a Trace, or TraceError
    verify(path, key)                     # any cache file: its content, or TraceError
    runs = stack([trace_a, trace_b])      # arrays gain a leading run axis

The directory that holds them is :class:`regutils.cache.Cache`.

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
train_margin      float16 (T, N)   eval-mode logit of the label minus the largest
test_margin       float16 (T, M)   other logit; None unless the run recorded
                                   scores (``RunConfig.record_scores``)
train_loss        float16 (T, N)   eval-mode cross-entropy; None likewise
test_loss         float16 (T, M)
train_el2n        float16 (T, N)   eval-mode || softmax - onehot(label) ||_2;
test_el2n         float16 (T, M)   None likewise
history           float64 (T,)     per epoch: loss, train_acc, test_acc, lr,
                                   seconds (training), eval_seconds
meta              dict             config, data fingerprint, versions, device,
                                   timings, final accuracies
================  ===============  =============================================

File format (``<key>.npz``, a plain numpy zip): boolean arrays are bit-packed
along the sample axis (``np.packbits(axis=-1)``, stored as ``<name>.bits``
with the sample count in ``meta['shapes']``); history columns are stored as
``history.<column>``; ``meta`` is a JSON string of the run's metadata.

Every file of the cache (traces, checkpoints, final weights) is *sealed*: it
carries the sha256 of its whole content and of the run key it belongs to
(:func:`seal`), as the zip archive comment (traces, and torch files, which
are zips too, so numpy and torch still read them directly; any other payload
gets the seal as a first line). :func:`verify` checks the seal before anything is
parsed, so a truncated, altered or damaged file, or one copied under another
run's key, raises :class:`TraceError` naming the path and the reason; the
cache moves such a file aside (:func:`quarantine`, kept for inspection as
``<name>.corrupt-<time>``) and the run is recomputed. Torch files load with
``weights_only=True``: nothing from the cache is unpickled. The seal detects
damage and mix-ups, not forgery: anyone who can write the cache can seal a
file, which is why loading never executes what a file holds.

Writes go to a temporary file in the same directory (created with the
user's umask), are fsynced, renamed into place (atomic on POSIX) and the
directory is fsynced. Reading a complete trace needs no lock and no write
access, so a read-only cache serves the runs it holds.
"""
from __future__ import annotations

import dataclasses
import datetime
import errno
import hashlib
import io
import json
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

PACKED = ("train_correct", "test_correct", "batch_correct", "noisy_train")
ARRAYS = ("train_correct", "test_correct", "train_prob", "test_prob", "batch_correct", "batch_step",
          "y_train", "y_test", "index_train", "index_test", "noisy_train")
# per epoch and sample like the first six ARRAYS, recorded only when asked (RunConfig.record_scores)
SCORE_ARRAYS = ("train_margin", "test_margin", "train_loss", "test_loss", "train_el2n", "test_el2n")
FORMAT_VERSION = 2  # 2: sealed files; part of every cache key


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
    train_margin: np.ndarray | None = None
    test_margin: np.ndarray | None = None
    train_loss: np.ndarray | None = None
    test_loss: np.ndarray | None = None
    train_el2n: np.ndarray | None = None
    test_el2n: np.ndarray | None = None

    @property
    def has_scores(self) -> bool:
        """Whether the run recorded margins, losses and EL2N (:data:`SCORE_ARRAYS`)."""
        return all(getattr(self, name) is not None for name in SCORE_ARRAYS)

    def scores(self) -> dict[str, np.ndarray]:
        """The recorded :data:`SCORE_ARRAYS` by name ({} when the run recorded none)."""
        return {name: getattr(self, name) for name in SCORE_ARRAYS} if self.has_scores else {}

    @property
    def epochs(self) -> int:
        return self.train_correct.shape[-2]

    @property
    def runs(self) -> int:
        """Number of runs stacked on the leading axis (1 for a single run)."""
        return 1 if self.train_correct.ndim == 2 else self.train_correct.shape[0]

    def run_metas(self) -> list[dict]:
        """The meta of every run: a stacked trace's per-run metas, or a single run's own."""
        return self.meta["runs"] if "runs" in self.meta else [self.meta]

    def run(self, r: int) -> "Trace":
        """Run ``r`` of a stacked trace."""
        if self.train_correct.ndim == 2:
            raise ValueError("run() needs a stacked trace; this one holds a single run")
        per_run = {name: a[r] for name, a in {**self.per_epoch(), **self.scores()}.items()}
        shared = {name: getattr(self, name) for name in ARRAYS[6:]}
        return Trace(**per_run, **shared, history={k: v[r] for k, v in self.history.items()},
                     meta=self.meta["runs"][r])

    def per_epoch(self) -> dict[str, np.ndarray]:
        """The record of every epoch (the first six :data:`ARRAYS`) by name."""
        return {name: getattr(self, name) for name in ARRAYS[:6]}


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
    recorded = ARRAYS[:6] + (SCORE_ARRAYS if all(t.has_scores for t in traces) else ())  # scores: only if all have them
    per_run = {name: np.stack([getattr(t, name) for t in traces]) for name in recorded}
    shared = {name: getattr(first, name) for name in ARRAYS[6:]}
    history = {k: np.stack([t.history[k] for t in traces]) for k in first.history}
    return Trace(**per_run, **shared, history=history, meta={"runs": [t.meta for t in traces]})


# --- sealed files

SEAL = b"regutils-seal-v1"
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_EOCD = b"PK\x05\x06"  # end of a zip's central directory: 22 bytes, then the archive comment


def _check_key(key: str) -> str:
    if not key or not set(key) <= _KEY_CHARS:
        raise ValueError(f"key={key!r} must be a non-empty string of letters, digits, '_', '.', '-'")
    return key


def _seal_line(key: str, body: bytes) -> bytes:
    digest = hashlib.sha256(SEAL + b"\0" + key.encode() + b"\0" + body).hexdigest()
    return b" ".join((SEAL, key.encode(), digest.encode()))


def seal(payload: bytes, key: str) -> bytes:
    """``payload`` bound to ``key`` by the sha256 of both: a zip gets it as archive comment, anything else a first line."""
    _check_key(key)
    if payload.startswith(b"PK") and payload[-22:-18] == _EOCD and payload[-2:] == b"\0\0":
        line_length = len(_seal_line(key, b""))
        body = payload[:-2] + line_length.to_bytes(2, "little")  # the comment length field is sealed too
        return body + _seal_line(key, body)
    return _seal_line(key, payload) + b"\n" + payload


def file_key(path: str | os.PathLike) -> str:
    """The run key a cache file is named after: ``<key>.npz``, ``<key>.ckpt.pt``, ``<key>.weights.pt``."""
    return Path(path).name.split(".")[0]


def verify(path: str | os.PathLike, key: str | None = None) -> bytes:
    """The content of the sealed file at ``path`` (a zip keeps its seal comment), checked against its seal.

    ``key``: the run key the file must belong to (None: any key, integrity only). Raises
    :class:`TraceError` naming the path and the reason when the file is missing, unreadable,
    unsealed, damaged or altered, or sealed for another key.
    """
    path = Path(path)
    if not path.is_file():
        raise TraceError(f"{path}: no such file" if not path.exists() else f"{path}: not a regular file")
    try:
        blob = path.read_bytes()
    except OSError as err:
        raise TraceError(f"{path}: cannot be read ({err.strerror or err})") from err
    if blob.startswith(SEAL + b" "):  # a first line, then the payload
        line, newline, payload = blob.partition(b"\n")
        body = payload
    else:  # a zip: the seal is the archive comment
        at = blob.rfind(SEAL + b" ")
        line, body, newline = blob[at:], blob[:at], b"\n"
        if at < 22 or body[-22:-18] != _EOCD or int.from_bytes(body[-2:], "little") != len(line):
            raise TraceError(f"{path}: no seal (truncated, damaged, or not a file written by regutils)")
        payload = blob
    parts = line.split(b" ")
    if not newline or len(parts) != 3:
        raise TraceError(f"{path}: malformed seal (truncated or damaged)")
    stored_key = parts[1].decode("ascii", "replace")
    if not set(stored_key) <= _KEY_CHARS or _seal_line(stored_key, body) != line:
        raise TraceError(f"{path}: checksum mismatch: the file is damaged or was altered")
    if key is not None and stored_key != key:
        raise TraceError(f"{path}: belongs to run {stored_key!r}, not to {key!r} (copied or renamed)")
    return payload


def quarantine(path: str | os.PathLike, reason) -> Path | None:
    """Move an unusable cache file aside to ``<name>.corrupt-<UTC time>`` (never used again), with a warning.

    Returns the new path; None when the file is gone or cannot be moved (a read-only cache).
    """
    path = Path(path)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return None
    except OSError as err:
        warnings.warn(f"{reason}; could not move {path} aside ({err.strerror}); it is ignored", stacklevel=2)
        return None
    _fsync_dir(path.parent)
    warnings.warn(f"{reason}; moved aside to {aside.name}", stacklevel=2)
    return aside


# --- writing


def _umask() -> int:
    """The process's umask, read without changing it where /proc allows."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (file systems that cannot fsync a directory are skipped)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


SPACE_ERRORS = (errno.ENOSPC, errno.EDQUOT)


def atomic_write(path: Path, write) -> None:
    """Call ``write(file)`` on a temporary file next to ``path``, then rename it into place."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~_umask())  # mkstemp's 0600 would hide a shared cache from its users
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno in SPACE_ERRORS:
            raise OSError(err.errno, f"disk full: no space (or no free inode) left to write {path.name} in "
                                     f"{path.parent}; free space there or choose another cache directory") from err
        raise


def write_sealed(path: str | os.PathLike, payload: bytes, key: str | None = None) -> Path:
    """Write ``payload`` sealed for ``key`` (default: the key ``path`` is named after) atomically to ``path``."""
    path = Path(path)
    blob = seal(payload, key if key is not None else file_key(path))
    atomic_write(path, lambda f: f.write(blob))
    return path


# --- the trace file


def save(trace: Trace, path: str | os.PathLike, key: str | None = None) -> Path:
    """Write ``trace`` to ``path``, sealed for ``key`` (default: the key ``path`` is named after)."""
    path = Path(path)
    stored, shapes = {}, {}
    for name in ARRAYS + tuple(trace.scores()):
        a = np.asarray(getattr(trace, name))
        if name in PACKED:
            shapes[name] = a.shape
            stored[f"{name}.bits"] = np.packbits(a.astype(bool), axis=-1)
        else:
            stored[name] = a
    for k, v in trace.history.items():
        stored[f"history.{k}"] = np.asarray(v, dtype=np.float64)
    kept = {k: v for k, v in trace.meta.items() if k != "source"}  # where it was loaded from: not stored
    meta = dict(kept, format_version=FORMAT_VERSION, shapes=shapes)
    stored["meta"] = np.array(json.dumps(meta, default=str))
    buf = io.BytesIO()
    np.savez_compressed(buf, **stored)  # bit-packed records and small integers compress well
    return write_sealed(path, buf.getvalue(), key)


def load(path: str | os.PathLike, key: str | None = None) -> Trace:
    """The trace at ``path``, verified (:func:`verify`) against ``key`` when given; TraceError otherwise."""
    path = Path(path)
    if not path.exists():
        raise TraceError(f"no trace at {path}")
    payload = verify(path, key)
    try:  # a sealed file that does not parse was written by something else: refuse it whatever the error
        with np.load(io.BytesIO(payload), allow_pickle=False) as z:
            stored = {k: z[k] for k in z.files}
        meta = json.loads(str(stored.pop("meta")))
        shapes = meta.pop("shapes")
        arrays = {}
        for name in ARRAYS:
            if name in PACKED:
                shape = tuple(shapes[name])
                arrays[name] = np.unpackbits(stored[f"{name}.bits"], axis=-1, count=shape[-1]).astype(bool)
            else:
                arrays[name] = stored[name]
        if any(name in stored for name in SCORE_ARRAYS):  # all or none
            arrays.update({name: stored[name] for name in SCORE_ARRAYS})
        history = {k.split(".", 1)[1]: v for k, v in stored.items() if k.startswith("history.")}
        return Trace(**arrays, history=history, meta=meta)
    except Exception as err:  # noqa: BLE001
        raise TraceError(f"{path} is not a valid trace file ({type(err).__name__}: {err})") from err


# --- cache


def cache_key(config: dict, data_fingerprint: str) -> str:
    """Content address of a run: its full config and the data it trains on."""
    blob = json.dumps({"config": config, "data": data_fingerprint, "format": FORMAT_VERSION},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def config_dict(config) -> dict:
    """A dataclass config as plain JSON-ready data (nested dataclasses included)."""
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))
