"""The trace cache: a directory of sealed run files, with file locks, that read-only bundles back up.

    from regutils.cache import Cache
    cache = Cache()                       # $REGUTILS_CACHE or ~/.cache/regutils; bundles from $REGUTILS_BUNDLE
    trace = cache.cached(key)             # the verified trace, or None
    with cache.lock(key):                 # one process trains a run; the others wait and load it
        ...

File formats and seals are :mod:`regutils.trace`'s (traces) and :mod:`regutils.checkpoint`'s
(checkpoints, final weights); bundles are :mod:`regutils.bundle`'s.
"""
from __future__ import annotations

import contextlib
import os
import sys
import warnings
from pathlib import Path

from .bundle import find, open_bundles
from .trace import Trace, TraceError, load, quarantine, save


def default_cache_dir() -> Path:
    return Path(os.environ.get("REGUTILS_CACHE") or Path.home() / ".cache" / "regutils")


class Cache:
    """A directory of traces (``<key>.npz``), final weights (``<key>.weights.pt``) and checkpoints.

    ``bundles``: read-only trace bundles (:mod:`regutils.bundle`) that serve, verified, the keys the
    directory lacks; None: ``$REGUTILS_BUNDLE``. A trace carries ``meta["source"]``: ``"cache"`` or
    ``"bundle:<dir>"`` (set when loaded, never stored).
    """

    def __init__(self, root: str | os.PathLike | None = None, bundles=None):
        self.root = Path(root) if root is not None else default_cache_dir()
        self.bundles = open_bundles(bundles)

    def bundled(self, key: str, kind: str = "trace"):
        """The first bundle listing ``key``'s ``kind`` file (trace, weights) when the directory lacks it, or None."""
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
        """The trace of ``key``: a bundle's once its checks pass (BundleError otherwise) where the directory lacks
        it, else the directory's, verified to be intact and to belong to ``key`` (TraceError otherwise)."""
        if (bundle := self.bundled(key)) is not None:
            return bundle.trace(key)
        trace = load(self.trace_path(key), key)
        trace.meta["source"] = "cache"
        return trace

    def save(self, key: str, trace: Trace) -> Path:
        return save(trace, self.trace_path(key), key)

    def cached(self, key: str, *, aside: bool = False) -> Trace | None:
        """The verified trace of ``key``, or None. ``aside`` (holding the key's lock): move an unusable file aside.

        A bundle serves a key the directory lacks; a refused bundle file is never moved (bundles are read-only)."""
        if not self.trace_path(key).exists():
            if self.bundled(key) is None:
                return None
            try:
                return self.load(key)
            except TraceError as err:
                warnings.warn(f"{err}; training the run again")
                return None
        try:
            return self.load(key)
        except TraceError as err:
            if aside:
                quarantine(self.trace_path(key), f"{err}; training the run again")
            return None

    def drop_stale_checkpoint(self, key: str) -> None:
        """Remove the checkpoint of a run whose trace is cached (left by a kill between saving and cleaning up)."""
        if self.checkpoint_path(key).exists():
            try:
                with self.lock(key):
                    self.checkpoint_path(key).unlink(missing_ok=True)
            except OSError:  # a read-only cache: the checkpoint is harmless where it is
                pass

    @contextlib.contextmanager
    def lock(self, key: str, notify_after: float = 5.0):
        """Hold the file lock of ``key``; after ``notify_after`` seconds of waiting, say who holds it."""
        from filelock import FileLock, Timeout

        path = self.lock_path(key)
        self.root.mkdir(parents=True, exist_ok=True)
        lock = FileLock(path)
        try:
            lock.acquire(timeout=notify_after)
        except Timeout:
            print(f"regutils: waiting for run {key}: {_lock_holder(path)} holds {path} (Ctrl-C to stop)",
                  file=sys.stderr, flush=True)
            lock.acquire()
        try:
            yield
        finally:
            lock.release()

    def remove_temporary(self, key: str) -> None:
        """Remove temporary files of ``key`` left by a process killed mid-write (call it holding the key's lock)."""
        for tmp in self.root.glob(f".{key}.*.tmp"):
            tmp.unlink(missing_ok=True)

    def keys(self) -> list[str]:
        return sorted(p.name[: -len(".npz")] for p in self.root.glob("*.npz"))


def _lock_holder(path: Path) -> str:
    """Who holds the flock on ``path``: the process and its command line, from /proc/locks (Linux)."""
    try:
        inode = os.stat(path).st_ino
        for line in Path("/proc/locks").read_text().splitlines():
            fields = line.split()
            if len(fields) > 5 and fields[5].rsplit(":", 1)[-1] == str(inode) and fields[4] != "-1":
                pid = fields[4]
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                return f"process {pid} ({cmd[:120]})" if cmd else f"process {pid}"
    except (OSError, ValueError):
        pass
    return "another process"
