"""The cache of executed chapters: a chapter whose inputs have not changed is not executed again.

    from regutils.executed import Execution, chapter_key, lookup, store
    key = chapter_key(name, source, parameters, context)      # before the chapter runs
    execution, why = lookup(directory, key, cache)            # None and the reason: execute it
    store(directory, key, Execution(...))                     # after it ran

A chapter's execution is found by a key computed before it runs (:func:`chapter_key`): the
chapter's name and notebook source, its parameters (profile, overrides), and the build-wide
``context`` that :mod:`regutils.book` gathers (the package source, the data the chapter's settings
name, installed distributions, the hardware, the bundles' manifests, the ``REGUTILS_*`` settings
the kernel reads). What the chapter reads while it runs is checked when it is looked up: every run
file it was served (``$REGUTILS_RUN_LOG``), by the file that serves it now and its sha256. A run
served from another file or with another content, or gone, means executing again.

An :class:`Execution` holds the executed notebook, the chapter's side outputs (its scorecard
rows, the files of its own ``book/generated/<chapter>/`` folder), the runs it read, and when and
how long it ran. It is stored as ``<directory>/<key>.json``, sealed for its key like every cache
file (:func:`regutils.trace.write_sealed`). A cache is written by others: an entry is JSON only,
its seal is verified, every field checked and the notebook validated with nbformat before it is
used, side-output paths must stay inside their folder, and an entry that fails any check is moved
aside (:func:`regutils.trace.quarantine`) and the chapter executed again. Each chapter keeps its
:data:`KEEP` most recently stored or reused executions (:func:`prune`).
"""
from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

from .bundle import KINDS
from .trace import TraceError, quarantine, verify, write_sealed

FORMAT = 1  # of an entry; part of every key
KEEP = 3  # executions kept per chapter, the most recently used: a few branches or profiles reuse theirs
AREAS = ("scorecard", "own")  # side outputs: the scorecard folder, the chapter's own folder


class ExecutionError(TraceError):
    """A stored execution that is damaged, altered or malformed: refused, the chapter is executed again."""


@dataclass(frozen=True)
class Execution:
    """One execution of a chapter.

    Attributes
    ----------
    notebook : str
        The executed notebook, as ipynb JSON text.
    outputs : dict
        Side outputs by area (:data:`AREAS`): {area: {relative POSIX path: base64 content}}.
    runs : tuple
        (kind, key, file, sha256) of every run file the chapter was served, in first-served order.
    seconds : float
        Wall time of the execution.
    executed : str
        When it ended (UTC, ISO 8601).
    commit : str
        The commit of the tree that executed it (:func:`regutils.book.commit`).
    """

    notebook: str
    outputs: dict
    runs: tuple
    seconds: float
    executed: str
    commit: str

    def to_json(self) -> bytes:
        return json.dumps(dict(asdict(self), format=FORMAT), sort_keys=True).encode()

    @classmethod
    def from_json(cls, payload: bytes, where: str) -> "Execution":
        """The execution ``payload`` holds once every field is checked; ExecutionError naming ``where`` otherwise."""
        try:
            entry = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ExecutionError(f"{where}: not JSON ({err})") from err
        fields = {"notebook", "outputs", "runs", "seconds", "executed", "commit", "format"}
        if not isinstance(entry, dict) or set(entry) != fields or entry["format"] != FORMAT:
            raise ExecutionError(f"{where}: not an execution of format {FORMAT}")
        if not all(isinstance(entry[f], str) for f in ("notebook", "executed", "commit")):
            raise ExecutionError(f"{where}: notebook, executed and commit must be strings")
        if not isinstance(entry["seconds"], (int, float)) or not entry["seconds"] >= 0:
            raise ExecutionError(f"{where}: seconds must be a number >= 0")
        check_notebook(entry["notebook"], where)
        check_outputs(entry["outputs"], where)
        runs = entry["runs"]
        if not isinstance(runs, list) or not all(
                isinstance(r, list) and len(r) == 4 and all(isinstance(x, str) for x in r) and r[0] in KINDS
                for r in runs):
            raise ExecutionError(f"{where}: runs must be [kind, key, file, sha256] lists")
        entry["runs"] = tuple(tuple(r) for r in runs)
        del entry["format"]
        return cls(**entry)


def check_notebook(text: str, where: str) -> None:
    """ExecutionError unless ``text`` is a valid version-4 notebook."""
    import nbformat

    try:
        nbformat.validate(nbformat.reads(text, as_version=4))
    except Exception as err:  # noqa: BLE001  nbformat raises many kinds; any of them refuses the entry
        raise ExecutionError(f"{where}: the notebook is not valid ({type(err).__name__}: {str(err)[:200]})") from err


def check_outputs(outputs, where: str) -> None:
    """ExecutionError unless ``outputs`` maps areas to {safe relative path: base64}."""
    if not isinstance(outputs, dict) or not set(outputs) <= set(AREAS):
        raise ExecutionError(f"{where}: outputs must be a dict over the areas {', '.join(AREAS)}")
    for area, files in outputs.items():
        if not isinstance(files, dict):
            raise ExecutionError(f"{where}: outputs[{area!r}] must be a dict")
        for name, content in files.items():
            if not isinstance(name, str) or not safe_relative(name):
                raise ExecutionError(f"{where}: output path {name!r} leaves its folder")
            try:
                base64.b64decode(content, validate=True)
            except (TypeError, binascii.Error) as err:
                raise ExecutionError(f"{where}: output {name!r} is not base64") from err


def safe_relative(name: str) -> bool:
    """Whether ``name`` is a relative POSIX path that stays inside the folder it is joined to."""
    path = PurePosixPath(name)
    return bool(name) and not path.is_absolute() and "\\" not in name and all(
        part not in ("", ".", "..") for part in name.split("/"))


# --- the key


def digest(*parts) -> str:
    """sha256 of ``parts`` as sorted-key JSON."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def chapter_key(name: str, source: str, parameters: dict, context: dict) -> str:
    """The key of the chapter ``name``'s execution: its notebook ``source``, ``parameters`` and the build's ``context``.

    ``parameters``: what is injected into the notebook (profile, overrides). ``context``: every other input
    that is read before it runs, as JSON-able values (:func:`regutils.book.context`).
    """
    return f"{name}-{digest(FORMAT, name, source, parameters, context)[:32]}"


def package_digest(package: Path) -> str:
    """sha256 of every ``*.py`` file under ``package``, with its relative path."""
    h = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        h.update(path.relative_to(package).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def distributions() -> tuple[str, ...]:
    """``name==version`` of every installed distribution, sorted (read once per process)."""
    from importlib import metadata

    return tuple(sorted({f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions()}))


# --- the runs a chapter read

_DIGESTS: dict[tuple, str] = {}  # (path, size, mtime, inode) -> sha256: a file shared by chapters is read once


def file_digest(path: Path) -> str:
    """sha256 of the file at ``path`` (remembered while the file's size, time and inode stay the same)."""
    st = path.stat()
    memo = (str(path), st.st_size, st.st_mtime_ns, st.st_ino)
    if memo not in _DIGESTS:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _DIGESTS[memo] = h.hexdigest()
    return _DIGESTS[memo]


def serving_file(kind: str, key: str, cache) -> Path | None:
    """The file that serves run ``key``'s ``kind`` file now: the cache directory's, else a bundle's; None: neither."""
    own = cache.trace_path(key) if kind == "trace" else cache.weights_path(key)
    if own.is_file():
        return own
    bundle = cache.bundled(key, kind)
    return None if bundle is None else bundle.root / f"{key}{KINDS[kind]}"


def served_runs(log: str, cache) -> tuple:
    """(kind, key, file, sha256) of each distinct ``<kind> <key>`` line of a run log; file and sha256 "" when gone."""
    runs = []
    for line in dict.fromkeys(log.splitlines()):
        kind, _, key = line.partition(" ")
        if kind not in KINDS or not key:
            raise ValueError(f"run log line {line!r}: expected '<trace|weights> <key>'")
        path = serving_file(kind, key, cache)
        runs.append((kind, key, "", "") if path is None else (kind, key, str(path), file_digest(path)))
    return tuple(runs)


def changed_runs(runs, cache) -> list[str]:
    """The runs of ``runs`` that another file now serves, whose content changed, or that are gone."""
    changed = []
    for kind, key, file, sha in runs:
        path = serving_file(kind, key, cache)
        if path is None or str(path) != file or file_digest(path) != sha:
            changed.append(f"{kind} {key}")
    return changed


def written_since(runs, since: float) -> bool:
    """Whether a file of ``runs`` was written at or after ``since`` (a run trained during the execution), or is gone."""
    return any(not file or Path(file).stat().st_mtime >= since for _, _, file, _ in runs)


def run_log(runs) -> str:
    """The run-log lines of ``runs``, as the chapter appended them (:func:`regutils.bundle.record_served`)."""
    return "".join(f"{kind} {key}\n" for kind, key, _, _ in runs)


# --- side outputs


def read_tree(directory: Path) -> dict[str, str]:
    """Every file under ``directory`` as {relative POSIX path: base64 content}; {} when it does not exist."""
    if not directory.is_dir():
        return {}
    return {p.relative_to(directory).as_posix(): base64.b64encode(p.read_bytes()).decode()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def write_if_changed(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path`` unless it holds it already (an unchanged file keeps its time for Sphinx)."""
    if path.is_file() and path.stat().st_size == len(content) and path.read_bytes() == content:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def write_tree(directory: Path, files: dict[str, str], replace: bool) -> None:
    """Write ``files`` ({relative path: base64}) under ``directory``; ``replace``: remove every other file there."""
    if replace and directory.is_dir():
        for stale in [p for p in directory.rglob("*") if p.is_file() and p.relative_to(directory).as_posix()
                      not in files]:
            stale.unlink()
    for name, content in files.items():
        if not safe_relative(name):
            raise ExecutionError(f"output path {name!r} leaves {directory}")
        write_if_changed(directory / name, base64.b64decode(content))


def restore(execution: Execution, notebook: Path, folders: dict[str, Path]) -> None:
    """Put what ``execution`` produced in place: the notebook at ``notebook``, each area's files in ``folders[area]``.

    The scorecard folder is shared by the chapters: files are added. The chapter's own folder is
    its alone: it ends up holding exactly the execution's files.
    """
    write_if_changed(notebook, execution.notebook.encode())
    for area in AREAS:
        write_tree(folders[area], execution.outputs.get(area, {}), replace=area == "own")


# --- the store


def entry_path(directory: Path, key: str) -> Path:
    return Path(directory) / f"{key}.json"


def store(directory: Path, key: str, execution: Execution, keep: int = KEEP) -> Path:
    """Write ``execution`` sealed for ``key`` to ``<directory>/<key>.json`` (atomically), then :func:`prune`."""
    path = write_sealed(entry_path(directory, key), execution.to_json(), key)
    prune(directory, key.rsplit("-", 1)[0], keep)
    return path


def prune(directory: Path, chapter: str, keep: int = KEEP) -> None:
    """Remove all but the ``keep`` most recently stored or reused executions of ``chapter``."""
    pattern = re.compile(rf"{re.escape(chapter)}-[0-9a-f]{{32}}\.json")
    entries = [p for p in Path(directory).glob(f"{chapter}-*.json") if pattern.fullmatch(p.name)]
    for old in sorted(entries, key=lambda p: p.stat().st_mtime, reverse=True)[keep:]:
        old.unlink(missing_ok=True)


def mark_used(path: Path) -> None:
    """Give a reused execution the current time, so that :func:`prune` keeps it (a read-only cache: left as is)."""
    try:
        os.utime(path)
    except OSError:
        pass


def load(directory: Path, key: str) -> Execution:
    """The execution stored for ``key``: its seal verified and every field checked; ExecutionError otherwise."""
    path = entry_path(directory, key)
    try:
        payload = verify(path, key)
    except TraceError as err:
        raise ExecutionError(str(err)) from err
    return Execution.from_json(payload, str(path))


def lookup(directory: Path, key: str, cache) -> tuple[Execution | None, str]:
    """The stored execution of ``key`` when it can be reused, else None and why it cannot.

    A damaged or malformed entry is moved aside (with a warning); an entry whose runs changed
    (:func:`changed_runs`) is left for the new execution to replace.
    """
    path = entry_path(directory, key)
    if not path.exists():
        return None, "no execution with these inputs"
    try:
        execution = load(directory, key)
    except ExecutionError as err:
        quarantine(path, f"{err}; executing the chapter again")
        return None, "its stored execution was refused"
    changed = changed_runs(execution.runs, cache)
    if changed:
        more = f" and {len(changed) - 1} more" if len(changed) > 1 else ""
        return None, f"a run it read changed ({changed[0]}{more})"
    mark_used(path)
    return execution, "inputs unchanged"


def folder(cache_root: Path) -> Path:
    """Where executions live in a cache directory."""
    return Path(cache_root) / "chapters"


def environment_settings(prefix: str = "REGUTILS_", places=("CACHE", "BUNDLE", "RUN_LOG", "SCORECARD_DIR")) -> dict:
    """The ``REGUTILS_*`` variables a kernel reads, less those naming where things are (checked otherwise)."""
    return {k: v for k, v in sorted(os.environ.items()) if k.startswith(prefix) and k[len(prefix):] not in places}
