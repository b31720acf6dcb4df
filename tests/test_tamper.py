"""The cache under tampering and damage: crafted pickles, flipped bytes, files under another key, checkpoints that
load partly, read-only caches, killed stacks, full disks and contended locks."""
import errno
import io
import os
import subprocess
import sys
import textwrap
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from regutils import loop, models, trace as trace_module, train as train_module
from regutils.data import DataConfig
from regutils.cache import Cache
from regutils.trace import ARRAYS, TraceError, seal, verify, write_sealed
from regutils.checkpoint import load_checkpoint, load_weights
from regutils.train import (RunConfig, get_run, get_runs, get_traces, run_key, seeds_of, train, train_runs,
                            trained_model)

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

TINY = RunConfig(DataConfig("digits", train_size=40, test_size=20), arch="mlp", epochs=2, batch_size=20,
                 schedule="constant")
STACKABLE = RunConfig(DataConfig("digits", train_size=60, test_size=20), arch="mlp", epochs=3, batch_size=20)


def same_record(a, b) -> bool:
    return all(np.array_equal(getattr(a, n), getattr(b, n)) for n in ARRAYS) and all(
        np.array_equal(a.history[k], b.history[k]) for k in ("loss", "train_acc", "test_acc", "lr"))


def moved_aside(root: Path) -> list[Path]:
    return sorted(root.glob("*.corrupt-*"))


# --- nothing from the cache is unpickled


class Payload:
    """Unpickling this runs ``open(marker, 'w')``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def pickled_payload(marker, like: dict | None = None) -> bytes:
    buf = io.BytesIO()
    torch.save({**(like or {}), "epoch": 1, "evil": Payload(marker)}, buf)
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["checkpoint", "weights", "stack checkpoint", "legacy checkpoint"])
def test_a_pickle_that_would_run_code_is_refused_without_running_it(kind, tmp_path):
    marker = tmp_path / "marker"
    cache = Cache(tmp_path / "cache")
    key = run_key(TINY)
    payload = pickled_payload(marker)
    if kind == "legacy checkpoint":  # the old format: an unkeyed digest line, then the pickle
        import hashlib
        cache.root.mkdir()
        cache.checkpoint_path(key).write_bytes(hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)
    elif kind == "weights":
        get_run(TINY, cache=cache, progress=False)
        write_sealed(cache.weights_path(key), payload)  # sealed correctly: the seal is no defence against this
    else:
        write_sealed(cache.checkpoint_path(key), payload)
    with pytest.raises(TraceError):
        (load_weights if kind == "weights" else load_checkpoint)(
            cache.weights_path(key) if kind == "weights" else cache.checkpoint_path(key))
    with pytest.warns(UserWarning, match="moved aside"):
        if kind == "weights":
            trained_model(TINY, cache=cache, device="cpu")
        elif kind == "stack checkpoint":
            get_traces(seeds_of(TINY, 2), cache=cache, device="cpu", progress=False, max_stack=2)
        else:
            get_run(TINY, cache=cache, progress=False)
    assert not marker.exists()
    assert len(moved_aside(cache.root)) == 1
    if kind != "stack checkpoint":  # a stack agrees with single runs up to rounding only
        assert same_record(cache.load(key), train(TINY, progress=False))
    assert cache.cached(key) is not None


# --- single-byte flips: refused (and recomputed), or identical; never a crash or a silent change

FLIPS = {"trace": 800, "checkpoint": 700, "weights": 600}  # offsets drawn per file, 2,100 in all
END_TO_END = 25  # every 25th flip also goes through get_run / trained_model: moved aside and recomputed


def flip(path: Path, offset: int, mask: int) -> None:
    blob = bytearray(path.read_bytes())
    blob[offset] ^= mask
    path.write_bytes(bytes(blob))


def same_state(a, b) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same_state(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same_state(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    return a == b


@pytest.mark.slow
def test_single_byte_flips_are_refused_and_recomputed(tmp_path, monkeypatch):
    monkeypatch.setattr(train_module, "progress_default", lambda: False)
    monkeypatch.setattr(trace_module.os, "fsync", lambda fd: None)  # durability is not under test: speed
    key = run_key(TINY)
    clean_cache = Cache(tmp_path / "clean")
    clean = get_run(TINY, cache=clean_cache)
    half = tmp_path / "half" / f"{key}.ckpt.pt"  # a checkpoint at epoch 1 of 2
    train(replace(TINY, epochs=1), checkpoint=half, progress=False)
    paths = {"trace": clean_cache.trace_path(key), "weights": clean_cache.weights_path(key), "checkpoint": half}
    files = {kind: path.read_bytes() for kind, path in paths.items()}
    loaders = {"trace": lambda p: trace_module.load(p, key), "weights": lambda p: load_weights(p, key),
               "checkpoint": lambda p: load_checkpoint(p, key)}
    originals = {kind: loaders[kind](path) for kind, path in paths.items()}
    equal = {"trace": same_record, "weights": same_state, "checkpoint": same_state}
    rng = np.random.default_rng(15)
    outcomes = {kind: dict.fromkeys(("refused", "identical", "crash", "silent change"), 0) for kind in FLIPS}
    recomputed = dict.fromkeys(FLIPS, 0)
    work = Cache(tmp_path / "work")
    work.root.mkdir()
    target = {"trace": work.trace_path(key), "weights": work.weights_path(key),
              "checkpoint": work.checkpoint_path(key)}
    for kind, count in FLIPS.items():
        offsets = rng.choice(len(files[kind]), size=count, replace=False)
        masks = rng.integers(1, 256, count)
        for i, (offset, mask) in enumerate(zip(offsets, masks)):
            target[kind].write_bytes(files[kind])
            flip(target[kind], int(offset), int(mask))
            try:
                got = loaders[kind](target[kind])
                outcome = "identical" if equal[kind](got, originals[kind]) else "silent change"
            except TraceError:
                outcome = "refused"
            except Exception:  # noqa: BLE001
                outcome = "crash"
            outcomes[kind][outcome] += 1
            if i % END_TO_END == 0:  # the engine moves the file aside and recomputes the run
                for p in work.root.iterdir():
                    p.unlink()
                work.trace_path(key).write_bytes(files["trace"])
                work.weights_path(key).write_bytes(files["weights"])
                if kind == "checkpoint":
                    work.trace_path(key).unlink()
                target[kind].write_bytes(files[kind])
                flip(target[kind], int(offset), int(mask))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    if kind == "weights":
                        model = trained_model(TINY, cache=work, device="cpu")
                        assert same_state(model.state_dict(), originals["weights"])
                    else:
                        assert same_record(get_run(TINY, cache=work), clean)
                assert verify(work.trace_path(key), key) and verify(work.weights_path(key), key)
                assert len(moved_aside(work.root)) == (outcome == "refused")
                recomputed[kind] += outcome == "refused"
    print(outcomes, "end to end, refused and recomputed:", recomputed)
    for kind, counts in outcomes.items():
        assert counts["crash"] == counts["silent change"] == 0, (kind, counts)
        assert recomputed[kind] >= counts["refused"] // END_TO_END
    assert sum(sum(c.values()) for c in outcomes.values()) >= 2000


def test_trace_load_turns_any_parse_error_into_trace_error(tmp_path):
    """A sealed file whose zip header or compressed data is damaged is refused (TraceError), not raised."""
    path = tmp_path / "k.npz"
    get = Cache(tmp_path / "c")
    t = get_run(TINY, cache=get, progress=False)
    trace_module.save(t, path)
    blob = bytearray(path.read_bytes()[:-len(trace_module._seal_line("k", b""))])
    blob[-2:] = b"\0\0"  # comment length 0: the unsealed zip
    central = bytes(blob).index(b"PK\x01\x02")  # the first central directory entry
    # the first member's compressed data: after the 30-byte local header, its name and extra field
    data = 30 + int.from_bytes(blob[26:28], "little") + int.from_bytes(blob[28:30], "little")
    for name, change in (("zip version", lambda b: b.__setitem__(central + 6, 99)),
                         ("zip flags: encrypted", lambda b: b.__setitem__(central + 8, b[central + 8] | 1)),
                         ("compression", lambda b: b.__setitem__(central + 10, 77)),
                         ("deflate stream", lambda b: b.__setitem__(data + 4, b[data + 4] ^ 0xFF))):
        bad = bytearray(blob)
        change(bad)
        path.write_bytes(seal(bytes(bad), "k"))  # sealed after the damage: only parsing can catch it
        with pytest.raises(TraceError, match="not a valid trace file"):
            trace_module.load(path, "k")
        assert name


# --- files under another run's key


@pytest.mark.parametrize("kind", ["trace", "checkpoint", "weights"])
def test_a_file_copied_under_another_key_is_refused(kind, tmp_path):
    cache = Cache(tmp_path)
    a, b = TINY, replace(TINY, seed=1)
    key_a, key_b = run_key(a), run_key(b)
    get_run(a, cache=cache, progress=False)
    if kind == "checkpoint":
        train(replace(a, epochs=1), checkpoint=cache.checkpoint_path(key_a), progress=False)
    source = {"trace": cache.trace_path, "checkpoint": cache.checkpoint_path, "weights": cache.weights_path}[kind]
    if kind == "weights":
        get_run(b, cache=cache, progress=False)
    source(key_b).write_bytes(source(key_a).read_bytes())
    with pytest.raises(TraceError, match=f"belongs to run '{key_a}', not to '{key_b}'"):
        verify(source(key_b), key_b)
    with pytest.warns(UserWarning, match="moved aside"):
        if kind == "weights":
            model = trained_model(b, cache=cache, device="cpu")
        else:
            got = get_run(b, cache=cache, progress=False)
    expected = train(b, progress=False)
    if kind == "weights":
        assert not all(torch.equal(v, load_weights(cache.weights_path(key_a))[k]) for k, v in model.state_dict().items())
    else:
        assert got.meta["resumed_from_epoch"] == 0 and same_record(got, expected)
    assert len(moved_aside(tmp_path)) == 1


# --- all or nothing


def broken_states(state: dict) -> dict:
    other = RunConfig(TINY.data, arch="small_cnn", epochs=2, batch_size=20, schedule="constant")
    torch.manual_seed(0)
    net = models.build("small_cnn", 1, 10)
    foreign_opt = loop.make_optimizer(other, net.parameters()).state_dict()
    return {
        "no scheduler (found after model and optimizer)": {k: v for k, v in state.items() if k != "scheduler"},
        "no generator": {k: v for k, v in state.items() if k != "generator"},
        "no step": {k: v for k, v in state.items() if k != "step"},
        "another model's optimizer": {**state, "optimizer": foreign_opt},
        "a record of other sizes": {**state, "rec": {k: v[:, :5] for k, v in state["rec"].items()}},
        "a bad torch RNG state": {**state, "torch_rng": torch.zeros(3, dtype=torch.uint8)},
        "an epoch beyond the run": {**state, "epoch": 99},
        "a model of another shape": {**state, "model": net.state_dict()},
    }


def test_a_partly_loading_checkpoint_applies_nothing(tmp_path):
    key = "run"
    path = tmp_path / f"{key}.ckpt.pt"
    config = replace(TINY, epochs=3)
    train(replace(config, epochs=1), checkpoint=path, progress=False)
    good = load_checkpoint(path, key)
    fresh = train(config, progress=False)
    for case, state in broken_states(good).items():
        for p in tmp_path.iterdir():
            p.unlink()
        buf = io.BytesIO()
        torch.save(state, buf)
        write_sealed(path, buf.getvalue())
        torch.manual_seed(1234)  # what a restored RNG would overwrite
        with pytest.warns(UserWarning, match="ignoring unusable checkpoint"):
            got = train(config, checkpoint=path, progress=False)
        assert got.meta["resumed_from_epoch"] == 0, case
        assert same_record(got, fresh), case  # nothing of the checkpoint reached model, optimizer or RNG
        assert len(moved_aside(tmp_path)) == 1, case  # kept for inspection, not tried again


def test_a_stack_with_one_bad_checkpoint_applies_nothing(tmp_path):
    configs = seeds_of(STACKABLE, 2)
    paths = [tmp_path / f"r{i}.ckpt.pt" for i in range(2)]
    train_runs([replace(c, epochs=1) for c in configs], checkpoints=paths, progress=False)
    state = load_checkpoint(paths[1])
    buf = io.BytesIO()
    torch.save({**state, "optimizer": {"state": {}, "param_groups": []}}, buf)
    write_sealed(paths[1], buf.getvalue())
    with pytest.warns(UserWarning, match="ignoring unusable checkpoint"):
        got = train_runs(configs, checkpoints=paths, progress=False)
    clean = train_runs(configs, progress=False)
    for a, b in zip(got, clean):
        assert a.meta["resumed_from_epoch"] == 0 and same_record(a, b)


# --- read-only caches, umask, fsync


def test_a_read_only_cache_serves_its_runs(tmp_path, monkeypatch, capsys):
    from regutils.cli import main

    monkeypatch.setenv("REGUTILS_PROGRESS", "0")
    cache = Cache(tmp_path)
    runs = get_runs(TINY, 2, cache=cache, progress=False)
    model = trained_model(TINY, cache=cache, device="cpu")

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path))

    monkeypatch.setattr(Cache, "lock", read_only)  # taking a lock opens a file for writing
    monkeypatch.setattr(trace_module, "atomic_write", read_only)
    monkeypatch.setattr(train_module, "train_runs", read_only)
    assert same_record(get_runs(TINY, 2, cache=cache, progress=False), runs)
    assert same_record(get_runs(TINY, 2, cache=cache, progress=False, stacked=True), runs)
    again = trained_model(TINY, cache=cache, device="cpu")
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in again.state_dict().items())
    argv = ["measures", "--train-size", "40", "--test-size", "20", "--arch", "mlp", "--epochs", "2",
            "--batch-size", "20", "--schedule", "constant", "--runs", "2", "--cache", str(tmp_path)]
    assert main(argv) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1 + 40 + 20
    with pytest.raises(SystemExit) as exit_info:  # a run it lacks: one line, no traceback
        main([*argv[:-4], "--runs", "3", "--cache", str(tmp_path)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("regutils: error: Read-only file system")


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_cache_files_follow_the_umask(umask, mode, tmp_path):
    old = os.umask(umask)
    try:
        get_run(TINY, cache=Cache(tmp_path), progress=False)
    finally:
        os.umask(old)
    files = [p for p in tmp_path.iterdir() if p.suffix != ".lock"]
    assert files and all(p.stat().st_mode & 0o777 == mode for p in files)


def test_the_directory_is_fsynced_after_each_rename(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(trace_module.os, "fsync", lambda fd: synced.append(os.path.isdir(f"/proc/self/fd/{fd}"))
                        or real_fsync(fd))
    write_sealed(tmp_path / "k.weights.pt", b"x")
    assert synced == [False, True]  # the file, then its directory


# --- killed stacks resume without leaks, whatever the resume does


def kill_at(point: str, monkeypatch):
    """Make the next stacked training die at ``point``; returns a function that undoes it."""
    calls = []
    real_save, real_cache_save, real_write = train_module.save_checkpoint, Cache.save, trace_module.atomic_write

    def save_checkpoint(path, state):
        calls.append(state["epoch"])
        if point == "inside a checkpoint write" and state["epoch"] == 2:
            def die(f):
                f.write(b"half a checkpoint")
                raise KeyboardInterrupt
            (path.parent / f".{path.name}.dead.tmp").write_bytes(b"left by a kill")  # as a SIGKILL leaves it
            real_write(path, die)
        real_save(path, state)
        if point == "after one run's checkpoint" and state["epoch"] == 2:
            raise KeyboardInterrupt
        if point == "after all checkpoints of an epoch" and len(calls) == 3:
            raise KeyboardInterrupt

    def cache_save(self, key, trace):
        real_cache_save(self, key, trace)
        if point == "after saving one run's trace":
            raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "save_checkpoint", save_checkpoint)
    monkeypatch.setattr(Cache, "save", cache_save)
    return lambda: (monkeypatch.setattr(train_module, "save_checkpoint", real_save),
                    monkeypatch.setattr(Cache, "save", real_cache_save))


@pytest.mark.parametrize("resume", ["--stack off", "more --runs", "fewer --runs"])
@pytest.mark.parametrize("point", ["inside a checkpoint write", "after one run's checkpoint",
                                   "after all checkpoints of an epoch", "after saving one run's trace"])
def test_a_killed_stack_resumes_without_leaks(point, resume, tmp_path, monkeypatch):
    cache = Cache(tmp_path)
    undo = kill_at(point, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        get_traces(seeds_of(STACKABLE, 3), cache=cache, device="cpu", progress=False, max_stack=3)
    undo()
    left = {p.name for p in tmp_path.glob("*.ckpt.pt")}
    assert left, "the kill left no checkpoint to resume from"
    runs = {"--stack off": 3, "more --runs": 4, "fewer --runs": 2}[resume]
    had_trace = {k for k in map(run_key, seeds_of(STACKABLE, 3)) if cache.has(k)}
    got = get_runs(STACKABLE, runs, cache=cache, device="cpu", progress=False, stacked=resume != "--stack off")
    assert got.runs == runs
    resumed = [m["resumed_from_epoch"] for m in got.meta["runs"]]
    keys = [run_key(c) for c in seeds_of(STACKABLE, runs)]
    for key, epoch in zip(keys, resumed):
        if f"{key}.ckpt.pt" in left and key not in had_trace:
            assert epoch > 0, "a checkpoint was left and not resumed from"
    assert list(tmp_path.glob(".*.tmp")) == []
    if resume != "fewer --runs":
        assert list(tmp_path.glob("*.ckpt.pt")) == []
    else:  # the third run's checkpoint waits, intact, for the call that asks for it
        assert {p.name for p in tmp_path.glob("*.ckpt.pt")} <= left
        all_three = get_runs(STACKABLE, 3, cache=cache, device="cpu", progress=False, stacked=True)
        assert all_three.runs == 3 and list(tmp_path.glob("*.ckpt.pt")) == []
    for key in keys:
        verify(cache.trace_path(key), key) and verify(cache.weights_path(key), key)


# --- full disks and contended locks


@pytest.mark.parametrize("where", ["creating the temporary file (no inode left)", "writing"])
def test_a_full_disk_gives_one_clear_line_and_a_consistent_cache(where, tmp_path, monkeypatch, capsys):
    from regutils.cli import main

    monkeypatch.setenv("REGUTILS_PROGRESS", "0")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    if where.startswith("creating"):
        monkeypatch.setattr(trace_module.tempfile, "mkstemp", full)
    else:
        monkeypatch.setattr(trace_module.os, "fsync", full)
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--train-size", "40", "--test-size", "20", "--arch", "mlp", "--epochs", "1", "--cache",
              str(tmp_path)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    assert err.startswith("regutils: error: disk full") and str(tmp_path) in err
    monkeypatch.undo()
    assert [p for p in tmp_path.iterdir() if p.suffix != ".lock"] == []


@pytest.mark.slow
def test_waiting_on_a_lock_says_who_holds_it(tmp_path, capfd):
    cache = Cache(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from filelock import FileLock
        with FileLock({str(cache.lock_path('k'))!r}):
            print("held", flush=True)
            time.sleep(2)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        start = time.monotonic()
        with cache.lock("k", notify_after=0.3):
            waited = time.monotonic() - start
    finally:
        holder.wait()
    err = capfd.readouterr().err
    assert waited > 0.3 and "waiting for run k" in err and f"process {holder.pid}" in err


def test_the_local_cluster_dashboard_listens_on_localhost_only(monkeypatch):
    from regutils import sweep

    seen = {}

    class Recorder:
        def __init__(self, **kwargs):
            seen.update(kwargs)
            raise RuntimeError("recorded")

    monkeypatch.setattr("dask.distributed.LocalCluster", Recorder)
    with pytest.raises(RuntimeError, match="recorded"):
        with sweep._client(None, None, 1):
            pass
    assert seen["dashboard_address"].startswith("127.0.0.1:") and seen["host"] == "127.0.0.1"


def test_a_directory_where_the_trace_belongs_is_moved_aside_before_training(tmp_path):
    cache = Cache(tmp_path)
    key = run_key(TINY)
    cache.trace_path(key).mkdir(parents=True)
    with pytest.warns(UserWarning, match="not a regular file; training the run again; moved aside"):
        got = get_run(TINY, cache=cache, progress=False)
    assert same_record(got, cache.load(key)) and len(moved_aside(tmp_path)) == 1
