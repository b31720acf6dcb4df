"""Sweeps on Dask, and the run cache under kills, concurrent callers, truncation, full disks and bad input."""
import errno
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import dask
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

import regutils.trace
import regutils.train
from regutils import models, profiles
from regutils.cli import main
from regutils.data import DATASETS, DataConfig
from regutils.sweep import SweepError, grid, sweep
from regutils.cache import Cache
from regutils.trace import ARRAYS, TraceError
from regutils.loop import OPTIMIZERS, SCHEDULES
from regutils.train import RunConfig, get_run, run_key, train

pytestmark = pytest.mark.slow  # every test here starts a Dask cluster or a second process

REPO = Path(__file__).resolve().parents[1]
BASE = RunConfig(DataConfig("digits"), arch="mlp", epochs=3)
CONFIGS = grid(BASE, seed=range(6))
RECORDS = ARRAYS[:6]  # what a run produced (the rest is the data)


def assert_same_runs(a, b):
    for name in RECORDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def python(script: str, *args, env=None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), *map(str, args)], cwd=REPO,
                            env={**os.environ, "REGUTILS_PROGRESS": "0", **(env or {})}, **kwargs)


def temporary_files(root: Path) -> list[Path]:
    return sorted(root.glob(".*.tmp"))


@pytest.fixture(scope="module")
def configs_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("configs") / "configs.pkl"
    path.write_bytes(pickle.dumps(CONFIGS))
    return path


@pytest.fixture(scope="module")
def sequential(configs_file, tmp_path_factory):
    """CONFIGS trained one after the other by plain train() calls, in a process with the workers' thread settings."""
    out = tmp_path_factory.mktemp("sequential")
    worker_env = {k: str(v) for k, v in dask.config.get("distributed.nanny.pre-spawn-environ").items()}
    proc = python("""
        import pickle, sys
        import numpy as np
        from regutils.train import train
        for i, config in enumerate(pickle.load(open(sys.argv[1], "rb"))):
            t = train(config, progress=False)
            np.savez(f"{sys.argv[2]}/{i}.npz", **{k: getattr(t, k) for k in sys.argv[3:]})
    """, configs_file, out, *RECORDS, env=worker_env)
    yield out, proc


def reference(sequential, i: int):
    out, proc = sequential
    assert proc.wait(timeout=300) == 0
    with np.load(out / f"{i}.npz") as z:
        return type("Run", (), {k: z[k] for k in z.files})


@pytest.fixture(scope="module")
def client():
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        with Client(cluster) as c:
            yield c


# --- grid


def test_grid_is_the_cartesian_product_in_order():
    configs = grid(BASE, arch=["mlp", "small_cnn"], optimizer=["sgd", "adam"], seed=range(3), label_noise=[0.0, 0.2])
    assert len(configs) == 2 * 2 * 3 * 2
    expected = [(a, o, s, n) for a in ("mlp", "small_cnn") for o in ("sgd", "adam")
                for s in range(3) for n in (0.0, 0.2)]
    assert [(c.arch, c.optimizer, c.seed, c.data.label_noise) for c in configs] == expected
    assert all(c.epochs == BASE.epochs and c.data.dataset == "digits" for c in configs)
    assert grid(BASE) == [BASE]


@pytest.mark.parametrize("axes, message", [
    (dict(depth=[1, 2]), "depth"), (dict(arch="mlp"), "arch"), (dict(seed=5), "seed"), (dict(seed=[]), "seed"),
    (dict(seed=[1, 1]), "seed"), (dict(arch=["mlp", "bogus"]), "arch"), (dict(label_noise=[0.1, 1.5]), "label_noise"),
    (dict(epochs=[3, 0]), "epochs"),
])
def test_grid_rejects_bad_axes(axes, message):
    with pytest.raises(ValueError, match=message):
        grid(BASE, **axes)


# --- sweeps on a 2-worker LocalCluster


def test_sweep_equals_sequential_runs_and_retrains_a_truncated_trace(client, sequential, tmp_path):
    cache = Cache(tmp_path)
    traces = sweep(CONFIGS, client=client, cache=cache, progress=False)
    assert len(traces) == len(CONFIGS)
    for i, t in enumerate(traces):
        assert_same_runs(t, reference(sequential, i))
        assert t.meta["config"]["seed"] == i
    assert sorted(cache.keys()) == sorted(run_key(c) for c in CONFIGS)
    assert temporary_files(tmp_path) == [] and list(tmp_path.glob("*.ckpt.pt")) == []

    # a truncated trace is not trusted: that run alone is trained again
    victim = cache.trace_path(run_key(CONFIGS[2]))
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    with pytest.raises(TraceError):
        cache.load(run_key(CONFIGS[2]))
    before = {k: cache.trace_path(k).stat().st_mtime_ns for k in cache.keys()}
    again = sweep(CONFIGS, client=client, cache=cache, progress=False)
    after = {k: cache.trace_path(k).stat().st_mtime_ns for k in cache.keys()}
    assert [k for k in before if before[k] != after[k]] == [run_key(CONFIGS[2])]
    assert_same_runs(again[2], reference(sequential, 2))


def test_killed_sweep_restarts_and_completes_every_run_once(client, sequential, configs_file, tmp_path):
    proc = python("""
        import pickle, sys
        from regutils.sweep import sweep
        from regutils.cache import Cache
        sweep(pickle.load(open(sys.argv[1], "rb")), cache=Cache(sys.argv[2]), progress=False)
    """, configs_file, tmp_path, start_new_session=True, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not list(tmp_path.glob("*.npz")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # the caller, the scheduler and both workers
    proc.wait()
    done_before = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*.npz")}
    assert 1 <= len(done_before) < len(CONFIGS), "the kill should land mid-sweep"
    unfinished = next(c for c in CONFIGS if f"{run_key(c)}.npz" not in done_before)
    # a trace write cut short by the kill, as mkstemp names it
    tmp_path.joinpath(f".{run_key(unfinished)}.npz.k1ll3d.tmp").write_bytes(b"PK\x03\x04 cut short")

    traces = sweep(CONFIGS, client=client, cache=Cache(tmp_path), progress=False)
    names = sorted(p.name for p in tmp_path.glob("*.npz"))
    assert names == sorted(f"{run_key(c)}.npz" for c in CONFIGS)  # each run once, nothing else
    assert all(tmp_path.joinpath(n).stat().st_mtime_ns == m for n, m in done_before.items())  # not retrained
    for i, t in enumerate(traces):
        assert_same_runs(t, reference(sequential, i))  # resumed runs included
    assert temporary_files(tmp_path) == [] and list(tmp_path.glob("*.ckpt.pt")) == []


def test_cli_train_with_scheduler_runs_the_seeds_on_the_cluster(client, sequential, tmp_path, capsys):
    args = ["train", "--dataset", "digits", "--arch", "mlp", "--epochs", "3", "--runs", "2", "--seed", "3",
            "--cache", str(tmp_path)]
    assert main(args + ["--scheduler", client.scheduler.address]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(Cache(tmp_path).trace_path(run_key(c))) for c in CONFIGS[3:5]]
    for i, path in zip((3, 4), printed):
        assert_same_runs(Cache(tmp_path).load(Path(path).stem), reference(sequential, i))
    with pytest.raises(SystemExit) as exit_:
        main(args + ["--scheduler", client.scheduler.address, "--workers", "2"])
    assert exit_.value.code == 2 and "exclude each other" in capsys.readouterr().err


# --- failures


def test_failing_run_is_retried_then_reported_while_the_others_complete(tmp_path, monkeypatch):
    from dask.distributed import Client, LocalCluster

    attempts = []
    real_train = regutils.train.train_runs

    def flaky_train(configs, *args, **kwargs):
        attempts.append(configs[0].seed)
        if configs[0].seed == 1:
            raise RuntimeError("simulated failure of seed 1")
        return real_train(configs, *args, **kwargs)

    monkeypatch.setattr(regutils.train, "train_runs", flaky_train)
    configs, cache = CONFIGS[:3], Cache(tmp_path)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster) as c:
        with pytest.raises(SweepError) as err:
            sweep(configs, client=c, cache=cache, retries=2, progress=False)
        assert sorted(attempts) == [0, 1, 1, 1, 2]  # seed 1: the first try and two retries
        assert [(cfg.seed, type(e)) for cfg, e in err.value.failures] == [(1, RuntimeError)]
        assert "1 of 3 runs failed" in str(err.value) and "seed=1" in str(err.value)
        assert "simulated failure of seed 1" in str(err.value)
        assert err.value.traces[1] is None
        assert [t.meta["config"]["seed"] for t in err.value.traces if t is not None] == [0, 2]
        assert sorted(cache.keys()) == sorted(run_key(configs[i]) for i in (0, 2))

        monkeypatch.undo()  # the cause is gone: the next sweep trains the failed run only
        attempts.clear()
        def counted_train(configs, *args, **kwargs):
            attempts.append(configs[0].seed)
            return real_train(configs, *args, **kwargs)

        monkeypatch.setattr(regutils.train, "train_runs", counted_train)
        traces = sweep(configs, client=c, cache=cache, retries=0, progress=False)
    assert attempts == [1]
    assert [t.meta["config"]["seed"] for t in traces] == [0, 1, 2]


# --- the cache under concurrency, truncation and a full disk


def test_concurrent_requests_for_one_run_train_it_once(configs_file, tmp_path, monkeypatch):
    """This process and a subprocess ask for the same run at once; the one that trains marks a file."""
    script = """
        import pickle, sys, time
        from pathlib import Path
        import numpy as np
        import regutils.train as T
        from regutils.cache import Cache
        config = pickle.load(open(sys.argv[1], "rb"))[0]
        root = Path(sys.argv[2])
        real_train = T.train_runs
        def counted_train(*args, **kwargs):
            with open(root / "trainings", "a") as f:
                f.write("subprocess\\n")
            time.sleep(2)  # hold the lock while the other process asks for the run
            return real_train(*args, **kwargs)
        T.train_runs = counted_train
        T.load_for(config.data, config.arch)  # data loaded before the barrier: both go straight for the lock
        (root / "ready-subprocess").touch()
        while not (root / "ready-test").exists():
            time.sleep(0.005)
        start = time.time()
        trace = T.get_run(config, cache=Cache(root / "cache"), progress=False)
        np.savez(root / "subprocess.npz", start=start, end=time.time(), prob=trace.train_prob)
    """
    real_train = regutils.train.train_runs

    def counted_train(*args, **kwargs):
        with open(tmp_path / "trainings", "a") as f:
            f.write("test\n")
        time.sleep(2)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(regutils.train, "train_runs", counted_train)
    config = CONFIGS[0]
    regutils.train.load_for(config.data, config.arch)
    proc = python(script, configs_file, tmp_path)
    deadline = time.monotonic() + 240
    while not (tmp_path / "ready-subprocess").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    (tmp_path / "ready-test").touch()
    start = time.time()
    trace = get_run(config, cache=Cache(tmp_path / "cache"), progress=False)
    end = time.time()
    assert proc.wait(timeout=300) == 0
    other = np.load(tmp_path / "subprocess.npz")

    trainers = (tmp_path / "trainings").read_text().split()
    assert len(trainers) == 1  # one training, whichever process took the lock first
    waiter_start, trainer_end = (start, other["end"]) if trainers == ["subprocess"] else (other["start"], end)
    assert waiter_start < trainer_end  # the requests overlapped: the waiter was held by the lock
    np.testing.assert_array_equal(trace.train_prob, other["prob"])


def test_truncated_trace_is_detected_and_retrained_with_a_warning(tmp_path):
    cache, key = Cache(tmp_path), run_key(CONFIGS[0])
    first = get_run(CONFIGS[0], cache=cache, progress=False)
    path = cache.trace_path(key)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(TraceError, match="truncated|corrupt"):
        cache.load(key)
    with pytest.warns(UserWarning, match="training the run again"):
        second = get_run(CONFIGS[0], cache=cache, progress=False)
    assert_same_runs(second, first)
    assert_same_runs(cache.load(key), first)


def test_full_disk_gives_a_clear_error_and_leaves_the_cache_consistent(tmp_path, monkeypatch):
    cache, config = Cache(tmp_path / "cache"), CONFIGS[1]
    key = run_key(config)

    real_write = regutils.trace.atomic_write

    def full_disk_for_traces(path, write):  # checkpoints fit, the trace does not
        def write_on_full_disk(f):
            f.write(b"PK\x03\x04 the first bytes of a zip")
            raise OSError(errno.ENOSPC, "No space left on device")

        return real_write(path, write_on_full_disk if path.suffix == ".npz" else write)

    monkeypatch.setattr(regutils.trace, "atomic_write", full_disk_for_traces)
    with pytest.raises(OSError) as err:
        get_run(config, cache=cache, progress=False)
    monkeypatch.undo()
    assert err.value.errno == errno.ENOSPC
    assert "disk full" in str(err.value) and str(cache.root) in str(err.value)
    assert not cache.has(key) and cache.keys() == []
    assert temporary_files(cache.root) == []

    trace = get_run(config, cache=cache, progress=False)  # space again: resumes from the last checkpoint
    assert trace.meta["resumed_from_epoch"] == config.epochs
    assert_same_runs(trace, train(config, progress=False))
    assert_same_runs(cache.load(key), trace)
    assert temporary_files(cache.root) == [] and not cache.checkpoint_path(key).exists()


# --- bad parameters fail before any training


def _unknown(allowed):
    return st.text(min_size=1, max_size=8).filter(lambda s: s not in allowed)


non_positive = st.integers(max_value=0)
outside_unit = (st.floats(max_value=0, exclude_max=True) | st.floats(min_value=1, exclude_min=True)
                | st.just(float("nan")))

BAD_RUN = st.one_of(
    st.tuples(st.just("epochs"), non_positive), st.tuples(st.just("batch_size"), non_positive),
    st.tuples(st.just("lr"), st.floats(max_value=0) | st.just(float("nan"))),
    st.tuples(st.just("momentum"), st.floats(min_value=1) | st.floats(max_value=0, exclude_max=True)),
    st.tuples(st.just("weight_decay"), st.floats(max_value=0, exclude_max=True) | st.just(float("nan"))),
    st.tuples(st.just("arch"), _unknown(models.names())),
    st.tuples(st.just("optimizer"), _unknown(OPTIMIZERS)), st.tuples(st.just("schedule"), _unknown(SCHEDULES)),
)
BAD_DATA = st.one_of(
    st.tuples(st.just("label_noise"), outside_unit), st.tuples(st.just("train_size"), non_positive),
    st.tuples(st.just("test_size"), non_positive), st.tuples(st.just("dataset"), _unknown(DATASETS)),
)
BAD_SETTINGS = st.one_of(
    *(st.tuples(st.just(n), non_positive) for n in ("epochs", "runs", "batch_size", "robustness_runs", "sync_runs")),
    st.tuples(st.just("prune_fractions"), st.lists(outside_unit | st.just(1.0), min_size=1, max_size=3).map(tuple)),
    st.tuples(st.just("prune_radii"), st.lists(st.floats(max_value=0), min_size=1, max_size=3).map(tuple)),
    st.tuples(st.just("subset_n"), st.lists(non_positive, min_size=1, max_size=3).map(tuple)),
    st.tuples(st.just("arch"), _unknown(models.names())),
    st.tuples(st.just("optimizer"), _unknown(OPTIMIZERS)), st.tuples(st.just("dataset"), _unknown(DATASETS)),
)


class NoClient:
    """Stands for a cluster: any use of it means a run was submitted."""

    def submit(self, *args, **kwargs):
        raise AssertionError("a run was submitted")


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(where=st.sampled_from(["run", "data", "settings"]), run=BAD_RUN, data=BAD_DATA, bad_settings=BAD_SETTINGS)
def test_bad_parameters_raise_naming_the_parameter_before_training(where, run, data, bad_settings):
    calls = []
    with pytest.MonkeyPatch.context() as mp, tempfile.TemporaryDirectory() as root:
        mp.setattr(regutils.train, "train_runs", lambda *a, **k: calls.append(a))
        if where == "settings":
            name, value = bad_settings
            with pytest.raises(ValueError, match=f"{name}="):
                profiles.settings("smoke", **{name: value})
        else:
            name, value = run if where == "run" else data
            if where == "run":
                config = replace(BASE, **{name: value})
            else:
                config = replace(BASE, data=replace(BASE.data, **{name: value}))
            with pytest.raises(ValueError, match=f"{name}="):
                get_run(config, cache=Cache(root), progress=False)
            with pytest.raises(ValueError, match=f"{name}="):
                sweep([BASE, config], client=NoClient(), cache=Cache(root), progress=False)
            assert list(Path(root).iterdir()) == []
    assert calls == []


def test_unknown_profile_and_sweep_options_are_rejected():
    with pytest.raises(ValueError, match="profile="):
        profiles.settings("huge")
    for kwargs, name in ((dict(retries=-1), "retries="), (dict(workers=0), "workers="),
                         (dict(client=NoClient(), scheduler="tcp://x:1"), "not both")):
        with pytest.raises(ValueError, match=name):
            sweep([BASE], **kwargs)
