"""Trace bundles: runs trained once by this engine, shipped with the project, verified before every use.

    python -m regutils traces --profile default          # execute the book, export its runs to traces/default
    python -m regutils bundle verify traces/default      # every file against the manifest; non-zero on a failure
    REGUTILS_BUNDLE=traces/default python -m regutils book --profile default   # the book reads the runs

A bundle is a read-only directory of the engine's cache files, content-addressed
by run key: ``<key>.npz`` (a trace, :mod:`regutils.trace`), ``<key>.weights.pt``
(final weights, for the runs whose model a chapter needs) and ``manifest.json``::

    {"format": 1, "profile": ..., "created": ..., "command": ..., "hardware": ..., "versions": {...},
     "total_bytes": ...,
     "runs": {"<key>": {"files": {"trace": {"name": "<key>.npz", "sha256": ..., "bytes": ...},
                                  "weights": {...}},                      # weights only where needed
                        "config": {...}, "data_fingerprint": ...,
                        "provenance": {"environment": {...}, "train_seconds": ..., "eval_seconds": ...,
                                       "produced": <UTC date>, "command": ..., "hardware": ...}}}}

A :class:`regutils.cache.Cache` falls back to the bundles (``Cache(bundles=[...])``,
default ``$REGUTILS_BUNDLE``, directories separated by ``os.pathsep``) for a key
its own directory lacks. A bundled file is used only when its size and sha256
match the manifest, its name is the one its key gives, and, for a trace, the
trace's own checks pass and its config and data recompute its key; otherwise
:class:`BundleError` names the path and the reason, and the run is trained again
into the user's cache. Nothing is ever written or locked inside a bundle. A trace
served from a bundle carries ``meta["source"] = "bundle:<dir>"`` (set when loaded,
never stored); :func:`provenance` turns a chapter's runs into one sentence.

``$REGUTILS_RUN_LOG``: a file to which :func:`regutils.train.get_run` and
:func:`regutils.train.trained_model` append the key of every run they serve
(``trace <key>`` / ``weights <key>``); :func:`produce` executes the book with it
and exports exactly those runs.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
import shlex
import time
import warnings
from pathlib import Path

import numpy as np

from .trace import Trace, TraceError, atomic_write, cache_key, load

MANIFEST = "manifest.json"
FORMAT = 1
BUDGET_BYTES = 50_000_000  # a bundle is committed with the project: above this, the build warns
BUNDLE_ENV = "REGUTILS_BUNDLE"
RUN_LOG_ENV = "REGUTILS_RUN_LOG"
KINDS = {"trace": ".npz", "weights": ".weights.pt"}  # file kinds and the suffix after the key


class BundleError(TraceError):
    """A bundle file that is missing, damaged, altered or listed under the wrong key: refused, never used."""


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def bundle_dirs(bundles=None) -> list[Path]:
    """The bundle directories to search: ``bundles`` (a sequence of paths), or None for ``$REGUTILS_BUNDLE``."""
    if bundles is None:
        bundles = [p for p in os.environ.get(BUNDLE_ENV, "").split(os.pathsep) if p]
    elif isinstance(bundles, (str, os.PathLike)):
        raise ValueError(f"bundles={bundles!r} must be a sequence of directories, not one path")
    return [Path(b) for b in bundles]


class Bundle:
    """One bundle directory, read only; the manifest is read once, on first use."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self._manifest: dict | None = None

    def __repr__(self) -> str:
        return f"Bundle({str(self.root)!r})"

    @property
    def manifest(self) -> dict:
        """The parsed manifest; BundleError when it is missing or malformed."""
        if self._manifest is None:
            path = self.root / MANIFEST
            try:
                manifest = json.loads(path.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
                raise BundleError(f"bundle {self.root}: cannot read {MANIFEST} ({err})") from err
            if not isinstance(manifest, dict) or not isinstance(manifest.get("runs"), dict):
                raise BundleError(f"bundle {self.root}: {MANIFEST} has no 'runs' table")
            if manifest.get("format") != FORMAT:
                raise BundleError(f"bundle {self.root}: format {manifest.get('format')!r}, expected {FORMAT}")
            self._manifest = manifest
        return self._manifest

    def has(self, key: str, kind: str = "trace") -> bool:
        """Whether the manifest lists a ``kind`` file of ``key`` (an unreadable manifest: none, with a warning)."""
        try:
            runs = self.manifest["runs"]
        except BundleError as err:
            warnings.warn(f"{err}; its runs are not used", stacklevel=2)
            self._manifest = {"runs": {}}  # warn once
            return False
        return kind in (runs.get(key) or {}).get("files", {})

    def checked_file(self, key: str, kind: str) -> Path:
        """The path of ``key``'s ``kind`` file once its name, size and sha256 match the manifest; else BundleError."""
        entry = self.manifest["runs"].get(key, {}).get("files", {}).get(kind)
        if entry is None:
            raise BundleError(f"bundle {self.root}: no {kind} file listed for run {key}")
        path = self.root / f"{key}{KINDS[kind]}"
        if entry.get("name") != path.name:
            raise BundleError(f"{path} refused: the manifest lists {entry.get('name')!r} for run {key}")
        if not path.is_file():
            raise BundleError(f"{path} refused: the file is missing")
        size = path.stat().st_size
        if size != entry.get("bytes"):
            raise BundleError(f"{path} refused: {size} bytes, the manifest says {entry.get('bytes')}")
        if sha256_of(path) != entry.get("sha256"):
            raise BundleError(f"{path} refused: its sha256 differs from the manifest's (damaged or altered)")
        return path

    def trace(self, key: str) -> Trace:
        """The verified trace of ``key``, with ``meta["source"] = "bundle:<dir>"``; BundleError when refused."""
        path = self.checked_file(key, "trace")
        try:
            trace = load(path, key)
        except TraceError as err:
            raise BundleError(f"{path} refused: {err}") from err
        meta = trace.meta
        try:
            own_key = cache_key(meta["config"], meta["data_fingerprint"])
        except KeyError as err:
            raise BundleError(f"{path} refused: its metadata lacks {err}") from err
        if own_key != key:
            raise BundleError(f"{path} refused: it holds run {own_key}, not {key} (a file under another key)")
        meta["source"] = f"bundle:{self.root}"
        return trace

    def weights(self, key: str) -> Path:
        """The path of ``key``'s final weights after its checks (:meth:`checked_file`); BundleError when refused."""
        return self.checked_file(key, "weights")


def open_bundles(bundles=None) -> list[Bundle]:
    return [Bundle(d) for d in bundle_dirs(bundles)]


def find(bundles: list[Bundle], key: str, kind: str = "trace") -> Bundle | None:
    """The first bundle listing a ``kind`` file of ``key``."""
    return next((b for b in bundles if b.has(key, kind)), None)


# --- the run log, and the runs served in this process

# the metadata of every trace get_run / get_runs returned in this process, for provenance(); the metadata
# only, so that remembering a run does not keep its record arrays alive
_SERVED: list[dict] = []


def remember(trace: Trace) -> Trace:
    """Note ``trace`` as served in this process (:func:`provenance` without arguments reads them); returns it."""
    _SERVED.extend(trace.run_metas())
    return trace


def record_served(key: str, kind: str = "trace") -> None:
    """Append ``<kind> <key>`` to ``$REGUTILS_RUN_LOG`` when it is set (one short append: safe across processes)."""
    path = os.environ.get(RUN_LOG_ENV)
    if path:
        with open(path, "a") as f:
            f.write(f"{kind} {key}\n")


def read_run_log(path: str | os.PathLike) -> tuple[list[str], set[str]]:
    """The keys a run log names, in first-served order, and those whose weights were served."""
    keys, weights = {}, set()
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        kind, _, key = line.partition(" ")
        if kind not in KINDS or not key:
            raise ValueError(f"{path}, line {n}: expected '<trace|weights> <key>', got {line!r}")
        keys.setdefault(key)
        if kind == "weights":
            weights.add(key)
    return list(keys), weights


# --- export


def hardware() -> str:
    """This machine, in words: GPU if any, CPU cores."""
    import torch

    cpu = f"{os.cpu_count()} CPU cores ({platform.machine()})"
    return f"{torch.cuda.get_device_name(0)} GPU, {cpu}" if torch.cuda.is_available() else f"{cpu}, no GPU"


def _versions() -> dict:
    import torch

    from . import __version__

    return {"regutils": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def _utc(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _source(key: str, cache, kind: str) -> tuple[Path, dict | None]:
    """Where ``key``'s ``kind`` file is (the cache's own directory first), and the bundle's entry when it is bundled."""
    local = cache.trace_path(key) if kind == "trace" else cache.weights_path(key)
    if local.is_file():
        return local, None
    bundle = find(cache.bundles, key, kind)
    if bundle is None:
        raise BundleError(f"run {key}: no {kind} file in {cache.root} or its bundles; compute it first")
    return bundle.checked_file(key, kind), bundle.manifest["runs"][key]


def export(keys, cache, out: str | os.PathLike, *, weights=(), command: str = "", profile: str | None = None,
           budget: int = BUDGET_BYTES, progress: bool = True) -> dict:
    """Copy the runs ``keys`` (and the weights of the keys in ``weights``) from ``cache`` into the bundle ``out``.

    Every trace is checked (:func:`regutils.trace.load`, its key recomputed) before it is copied;
    a run that comes from another bundle keeps that bundle's provenance. The manifest is written
    last, then files of ``out`` that it does not list are removed. Returns the manifest; warns
    when the bundle exceeds ``budget`` bytes.
    """
    out = Path(out)
    keys = list(dict.fromkeys(keys))
    missing = set(weights) - set(keys)
    if missing:
        raise ValueError(f"weights={sorted(missing)} are not among the exported keys")
    out.mkdir(parents=True, exist_ok=True)
    now = _utc(time.time())
    here = hardware()
    runs = {}
    for i, key in enumerate(keys, 1):
        files, previous = {}, None
        for kind in ("trace", "weights") if key in weights else ("trace",):
            src, entry = _source(key, cache, kind)
            blob = src.read_bytes()
            digest = hashlib.sha256(blob).hexdigest()
            if kind == "trace":
                trace = load(src, key)  # the trace's own checks, its seal bound to the key
                if cache_key(trace.meta["config"], trace.meta["data_fingerprint"]) != key:
                    raise BundleError(f"{src}: holds another run than {key}; not exported")
                previous = entry
                produced = _utc(src.stat().st_mtime)
            dest = out / f"{key}{KINDS[kind]}"
            if not (dest.is_file() and dest.stat().st_size == len(blob) and sha256_of(dest) == digest):
                atomic_write(dest, lambda f, blob=blob: f.write(blob))
            files[kind] = {"name": dest.name, "sha256": digest, "bytes": len(blob)}
        meta = trace.meta
        provenance = previous["provenance"] if previous else {
            "environment": meta.get("environment", {}), "train_seconds": meta.get("train_seconds"),
            "eval_seconds": meta.get("eval_seconds"), "produced": produced, "command": command, "hardware": here}
        runs[key] = {"files": files, "config": meta["config"], "data_fingerprint": meta["data_fingerprint"],
                     "provenance": provenance}
        if progress:
            size = sum(f["bytes"] for f in files.values())
            print(f"  [{i}/{len(keys)}] {key} {'+'.join(files)} {size / 1e6:.2f} MB", flush=True)
    total = sum(f["bytes"] for r in runs.values() for f in r["files"].values())
    manifest = {"format": FORMAT, "profile": profile, "created": now, "command": command, "hardware": here,
                "versions": _versions(), "total_bytes": total, "runs": runs}
    atomic_write(out / MANIFEST, lambda f: f.write(json.dumps(manifest, indent=1, sort_keys=True).encode()))
    listed = {f["name"] for r in runs.values() for f in r["files"].values()} | {MANIFEST}
    for stale in out.iterdir():
        if stale.is_file() and stale.name not in listed and stale.name.endswith(tuple(KINDS.values())):
            stale.unlink()
    if total > budget:
        warnings.warn(f"bundle {out} holds {total / 1e6:.1f} MB, above the budget of {budget / 1e6:.0f} MB "
                      "for files committed with the project", stacklevel=2)
    return manifest


def produce(profile: str, out: str | os.PathLike, execute, cache, *, only=None, jobs: int = 1) -> dict:
    """Execute the book's chapters at ``profile`` logging the runs they use, then :func:`export` them.

    ``execute(profile, only)`` executes the chapters (the command line passes
    :func:`regutils.book.build` without HTML, ``jobs`` chapters at once). Resumable: runs already in
    the cache (or a bundle it reads) are loaded, and interrupted runs resume from their checkpoints,
    so running it again after an interruption continues. ``cache``: the :class:`regutils.cache.Cache`
    the chapters use (its directory also holds the run log).
    """
    cache.root.mkdir(parents=True, exist_ok=True)
    log = cache.root / f"runlog-{profile}-{os.getpid()}.txt"  # outside the bundle, one per process
    log.write_text("")
    before = os.environ.get(RUN_LOG_ENV)
    os.environ[RUN_LOG_ENV] = str(log)  # inherited by the chapters' kernels
    t0 = time.perf_counter()
    try:
        execute(profile, only)
        keys, weights = read_run_log(log)
    finally:
        log.unlink(missing_ok=True)
        if before is None:
            os.environ.pop(RUN_LOG_ENV, None)
        else:
            os.environ[RUN_LOG_ENV] = before
    print(f"chapters executed in {time.perf_counter() - t0:.0f} s; exporting {len(keys)} runs "
          f"({len(weights)} with weights) to {out}", flush=True)
    command = shlex.join(["python", "-m", "regutils", "traces", "--profile", profile, "--out", str(out),
                          *(["--only", *only] if only else []), *(["--jobs", str(jobs)] if jobs > 1 else [])])
    manifest = export(keys, cache, out, weights=weights, command=command, profile=profile)
    print(f"{out}: {len(keys)} runs, {manifest['total_bytes'] / 1e6:.1f} MB "
          f"(budget {BUDGET_BYTES / 1e6:.0f} MB)", flush=True)
    return manifest


def listed_runs(root: str | os.PathLike) -> list[tuple]:
    """The runs the manifest at ``root`` lists, as (key, config, seconds it took), longest first.

    The manifest is only read, nothing is loaded: a work list for training the runs of a bundle
    again (:func:`regutils.book.pretrain`). Seconds are the recorded training plus evaluation time
    (0 when not recorded). Runs on data that needs a path (a download) are left out, as are runs
    whose config no longer yields the listed key (the code that defines the keys changed).
    """
    from dataclasses import fields

    from .data import DataConfig
    from .loop import RunConfig, run_key

    def as_tuple(value):
        return tuple(value) if isinstance(value, list) else value

    known = {f.name for f in fields(RunConfig)}
    listed = []
    for key, entry in Bundle(root).manifest["runs"].items():
        config = dict(entry["config"])
        data = {k: as_tuple(v) for k, v in config.pop("data").items()}
        if data.get("dataset") not in ("digits", "cifar10-subset"):
            continue
        if set(config) - known:
            continue
        run = RunConfig(data=DataConfig(**data), **{k: as_tuple(v) for k, v in config.items()})
        try:
            if run_key(run.validate()) != key:
                continue
        except ValueError:
            continue
        seconds = sum(entry.get("provenance", {}).get(k) or 0.0 for k in ("train_seconds", "eval_seconds"))
        listed.append((key, run, float(seconds)))
    return sorted(listed, key=lambda item: -item[2])


# --- verification


def verify(root: str | os.PathLike) -> list[str]:
    """Every problem of the bundle at ``root``: files against the manifest, traces' own checks, weights' loading."""
    from .checkpoint import load_weights

    bundle = Bundle(root)
    try:
        runs = bundle.manifest["runs"]
    except BundleError as err:
        return [str(err)]
    problems = []
    for key in runs:
        for kind in runs[key].get("files", {}):
            try:
                if kind == "trace":
                    bundle.trace(key)
                elif kind == "weights":
                    load_weights(bundle.weights(key), key)
                else:
                    problems.append(f"bundle {bundle.root}: run {key} lists an unknown file kind {kind!r}")
            except BundleError as err:
                problems.append(str(err))
            except Exception as err:  # noqa: BLE001 - a weights file torch cannot read, whatever the error
                problems.append(f"{bundle.root / f'{key}{KINDS[kind]}'} refused: not loadable weights ({err})")
    listed = {f.get("name") for r in runs.values() for f in r.get("files", {}).values()} | {MANIFEST}
    problems += [f"{p} is not listed in the manifest" for p in sorted(bundle.root.iterdir())
                 if p.is_file() and p.name not in listed]
    total = sum(f.get("bytes", 0) for r in runs.values() for f in r.get("files", {}).values())
    if total != bundle.manifest.get("total_bytes"):
        problems.append(f"bundle {bundle.root}: total_bytes {bundle.manifest.get('total_bytes')} differs from "
                        f"the sum of its files' sizes, {total}")
    return problems


# --- provenance on the page


def _unique(metas: list[dict]) -> list[dict]:
    """Per-run metadata with a run used twice counted once."""
    unique = {}
    for m in metas:  # a run used twice counts once
        try:
            unique.setdefault(cache_key(m["config"], m["data_fingerprint"]), m)
        except KeyError:
            unique[id(m)] = m
    return list(unique.values())


def _shown(directory: str) -> str:
    """A bundle directory as a reader knows it: relative to the working directory when inside it."""
    rel = os.path.relpath(directory)
    return directory if rel.startswith("..") else rel


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} seconds"
    return f"{seconds / 60:.0f} minutes" if seconds < 7200 else f"{seconds / 3600:.1f} hours"


def provenance(runs=None) -> str:
    """One Markdown sentence: how many of ``runs`` (Traces, single or stacked) came from a bundle, and how made.

    ``runs`` None: every run served in this process (a chapter's kernel: the chapter's runs).
    Sources are read from ``meta["source"]``: ``bundle:<dir>`` (served from a bundle),
    ``cache`` (loaded from this machine's cache), absent (trained in this process). A run
    present twice (same config and data) counts once.
    """
    if runs is None and not _SERVED:
        return "This chapter uses no training run."
    if runs is None:
        metas = _unique(_SERVED)
    else:
        metas = _unique([m for t in ([runs] if isinstance(runs, Trace) else runs) for m in t.run_metas()])
    if not metas:
        raise ValueError("runs is empty: provenance needs at least one trace")
    sources = [str(m.get("source", "")) for m in metas]
    bundled = [m for m, s in zip(metas, sources) if s.startswith("bundle:")]
    cached = sources.count("cache")
    trained = len(metas) - len(bundled) - cached
    n = len(metas)
    parts = []
    if bundled:
        dirs = sorted({s.split(":", 1)[1] for s in sources if s.startswith("bundle:")})
        where = ", ".join(f"`{_shown(d)}`" for d in dirs)
        counted = f"all {n}" if len(bundled) == n and n > 1 else str(len(bundled))
        parts.append(f"{counted} {'comes' if len(bundled) == 1 else 'come'} from the verified trace "
                     f"bundle{'s' if len(dirs) > 1 else ''} {where}")
    if cached:
        parts.append(f"{cached} {'was' if cached == 1 else 'were'} loaded from this machine's trace cache")
    if trained:
        parts.append(f"{trained} {'was' if trained == 1 else 'were'} trained in this build")
    sentence = f"Of this chapter's {_count(n, 'run', 'runs')}, " + (
        parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1])
    if bundled:
        hardware_of, opened = set(), {d: Bundle(d) for d in dirs}
        for m in bundled:  # each run's hardware, as its bundle's manifest records it
            try:
                entry = opened[m["source"].split(":", 1)[1]].manifest["runs"][cache_key(m["config"],
                                                                                       m["data_fingerprint"])]
                hardware_of.add(entry["provenance"]["hardware"])
            except (BundleError, KeyError):
                hardware_of.add("unrecorded hardware")
        seconds = sum((m.get("train_seconds") or 0) + (m.get("eval_seconds") or 0) for m in bundled)
        one = len(bundled) == 1
        sentence += (f"; {'that run was' if one else 'those runs were'} trained once by this project's engine in "
                     f"{_duration(seconds)} on {' and '.join(sorted(hardware_of))}, and "
                     f"{'its' if one else 'their'} files were checked against the manifest's sha256 digests "
                     "before use")
    return sentence + "."
