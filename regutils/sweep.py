"""Many runs at once: a list of RunConfigs executed on a Dask cluster, into the shared trace cache.

    from regutils.sweep import grid, sweep
    base = RunConfig(DataConfig("digits"), arch="mlp", epochs=30)
    configs = grid(base, arch=["mlp", "small_cnn"], optimizer=["sgd", "adamax"], seed=range(10))
    traces = sweep(configs)                              # a 2-worker LocalCluster on this machine
    traces = sweep(configs, scheduler="tcp://head:8786") # an existing cluster
    traces = sweep(configs, client=client)               # a dask.distributed.Client of your own

Each run is a task that calls :func:`regutils.train.get_run` on a worker: the
worker trains the run (resuming its checkpoint when one exists) and writes the
trace into the cache directory, which every worker and the caller must see
(one machine, or a shared file system). Only the cache key travels back
through the scheduler; the caller loads the trace from the cache. Runs whose
trace is already cached and loads cleanly are not submitted at all, so a
sweep that was killed is resumed by calling it again: finished runs are
loaded, interrupted ones continue from their last epoch, and the per-run file
lock of ``get_run`` makes sure no run is trained twice, even by two sweeps at
once. A run that raises is retried ``retries`` times (Dask's ``retries=``);
one that still fails is reported in a :class:`SweepError` raised after all
other runs finished, listing every failed config with its exception. Bad
configs raise ValueError before anything is submitted.

A worker process trains one run at a time, whatever its thread count, since
the seeds of a run live in process-wide random state. On the CPU a run is
deterministic for its seed and the thread settings of its process: Dask
starts workers with ``OMP_NUM_THREADS=1`` (``distributed.nanny.pre-spawn-environ``),
and a run trained in a process started that way matches a sweep's bit for
bit, while one trained with several BLAS threads may differ in the last bits
of ``*_prob``. A script that starts the default LocalCluster needs the
``if __name__ == "__main__":`` guard (workers are spawned processes).

One worker per GPU. Give every worker process its own ``CUDA_VISIBLE_DEVICES``
so that ``device="auto"`` resolves to that one GPU:

    # on each GPU machine, with dask-cuda installed: one worker per visible GPU
    dask scheduler --port 8786                         # once, on the head node
    dask cuda worker tcp://head:8786                   # dask-cuda's worker, pinned per GPU

    # without dask-cuda: one single-threaded worker per GPU by hand
    for gpu in 0 1 2 3; do
        CUDA_VISIBLE_DEVICES=$gpu dask worker tcp://head:8786 --nworkers 1 --nthreads 1 &
    done

    # in Python, on one machine: dask_cuda.LocalCUDACluster()
    from dask_cuda import LocalCUDACluster
    from dask.distributed import Client
    traces = sweep(configs, client=Client(LocalCUDACluster()))

Every worker needs regutils installed, the data (``DataConfig.path``) and the
cache directory at the same paths as the caller.
"""
from __future__ import annotations

import contextlib
import itertools
import threading
import uuid
from dataclasses import fields, replace

from tqdm import tqdm

from .cache import Cache
from .data import DataConfig
from .loop import RunConfig, progress_default, run_key
from .trace import Trace, TraceError
from .train import get_run
from .validation import Int, check

_ONE_RUN_PER_PROCESS = threading.Lock()  # torch.manual_seed and the RNG state are process-wide
SCHEDULER_TIMEOUT = 10.0  # seconds a scheduler has to answer


class SweepError(RuntimeError):
    """Runs of a sweep that failed after their retries; ``failures`` holds (config, exception) pairs.

    ``traces`` holds the runs that succeeded (None where a run failed), in the order of the configs.
    """

    def __init__(self, failures: list[tuple[RunConfig, BaseException]], traces: list[Trace | None]):
        self.failures, self.traces = failures, traces
        lines = [f"{len(failures)} of {len(traces)} runs failed (the others are cached):"]
        lines += [f"  {describe(c)}: {type(e).__name__}: {e}" for c, e in failures]
        super().__init__("\n".join(lines))


def describe(config: RunConfig) -> str:
    """A short, readable name of a run: the fields that differ from the defaults."""
    changed = [f"{f.name}={getattr(config, f.name)!r}" for f in fields(RunConfig)
               if f.name != "data" and getattr(config, f.name) != f.default]
    data = [f"{k}={v!r}" for k, v in config.data.key().items() if v != DataConfig.__dataclass_fields__[k].default]
    return f"RunConfig({config.data.dataset}; {', '.join(data + changed)})"


def grid(base: RunConfig, **axes) -> list[RunConfig]:
    """The cartesian product of ``axes`` applied to ``base`` (the last axis varies fastest).

    An axis is a RunConfig field (``arch``, ``optimizer``, ``seed``, ...) or a
    DataConfig field (``label_noise``, ``train_size``, ...) with a list of values.
    """
    run_fields = {f.name for f in fields(RunConfig)} - {"data"}
    data_fields = {f.name for f in fields(DataConfig)}
    for name, values in axes.items():
        if name not in run_fields | data_fields:
            raise ValueError(f"grid axis {name!r} is not a RunConfig or DataConfig field; allowed: "
                             f"{', '.join(sorted(run_fields | data_fields))}")
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise ValueError(f"grid axis {name}={values!r} must be a list of values, e.g. {name}=[{values!r}]")
    values = {name: list(v) for name, v in axes.items()}
    for name, v in values.items():
        if not v:
            raise ValueError(f"grid axis {name} is empty")
        if len(set(map(repr, v))) != len(v):
            raise ValueError(f"grid axis {name}={v!r} repeats a value")
    configs = []
    for combo in itertools.product(*values.values()):
        change = dict(zip(values, combo))
        data = replace(base.data, **{k: v for k, v in change.items() if k in data_fields})
        configs.append(replace(base, data=data, **{k: v for k, v in change.items() if k in run_fields}).validate())
    return configs


def _run_on_worker(config: RunConfig, root: str, device: str) -> str:
    """Train (or load) one run into the cache at ``root``; return its key, not the trace."""
    with _ONE_RUN_PER_PROCESS:
        cache = Cache(root)
        get_run(config, cache=cache, device=device, progress=False)
        return run_key(config)


def _load_cached(cache: Cache, key: str) -> Trace | None:
    """The verified trace of ``key``, or None (a worker retrains it; get_run moves a bad file aside)."""
    if (trace := cache.cached(key)) is not None:
        cache.drop_stale_checkpoint(key)
    return trace


def sweep(configs: list[RunConfig], *, client=None, scheduler: str | None = None, workers: int = 2,
          cache: Cache | None = None, retries: int = 2, device: str = "auto",
          progress: bool | None = None) -> list[Trace]:
    """The traces of ``configs`` (in their order): loaded from the cache, the rest trained on a Dask cluster.

    ``client``: a ``dask.distributed.Client``; ``scheduler``: the address of a
    running scheduler; neither: a LocalCluster of ``workers`` single-threaded
    processes, closed at the end. Raises :class:`SweepError` when runs still
    fail after ``retries`` retries, once all the others are done.
    """
    if client is not None and scheduler is not None:
        raise ValueError("pass client= or scheduler=, not both")
    check("retries", retries, Int(0))
    check("workers", workers, Int(1))
    if scheduler is not None:
        check_scheduler(scheduler)
    configs = [c.validate() for c in configs]
    progress = progress_default() if progress is None else progress
    cache = Cache((cache or Cache()).root.resolve())
    keys = [run_key(c) for c in configs]  # loads each data set once, here: bad data fails before submitting
    traces: dict[str, Trace] = {}
    for k in set(keys):
        if (t := _load_cached(cache, k)) is not None:
            traces[k] = t
    todo = {k: c for k, c in zip(keys, configs) if k not in traces}  # one task per distinct run
    failures: dict[str, BaseException] = {}
    if todo:
        with _client(client, scheduler, workers) as dask_client:
            _submit_and_collect(dask_client, todo, cache, retries, device, progress, len(set(keys)), traces, failures)
    result = [traces.get(k) for k in keys]
    if failures:
        raise SweepError([(todo[k], e) for k, e in failures.items()], result)
    return result


def _submit_and_collect(client, todo, cache, retries, device, progress, total, traces, failures) -> None:
    from dask.distributed import as_completed

    tag = uuid.uuid4().hex[:8]  # a fresh task name, so no result of an earlier sweep is reused
    futures = {client.submit(_run_on_worker, config, str(cache.root), device, retries=retries,
                             key=f"regutils-run-{key}-{tag}"): key for key, config in todo.items()}
    bar = tqdm(total=total, initial=total - len(todo), desc="runs", unit="run", disable=not progress)
    try:
        for future in as_completed(futures):
            key = futures[future]
            if future.status == "error":
                failures[key] = future.exception()
            elif (worker_key := future.result()) != key:
                failures[key] = RuntimeError(f"the worker trained run {worker_key} where {key} was expected: its data "
                                             "differ from this machine's (DataConfig.path)")
            else:
                try:
                    traces[key] = cache.load(key)
                except TraceError as err:
                    failures[key] = err
            bar.update()
            bar.set_postfix(failed=len(failures))
    finally:
        bar.close()
        for future in futures:
            future.release()


def check_scheduler(address: str, timeout: float = SCHEDULER_TIMEOUT) -> None:
    """ValueError unless a server listens at the ``tcp://host:port`` ``address`` within ``timeout`` seconds.

    Other protocols are left to the Client, which waits as long.
    """
    import socket
    from urllib.parse import urlsplit

    if not isinstance(address, str) or "://" not in address:
        raise ValueError(f"scheduler={address!r} is not an address like tcp://host:8786")
    url = urlsplit(address)
    if url.scheme != "tcp":
        return
    try:
        port = url.port or 8786
        socket.create_connection((url.hostname, port), timeout=timeout).close()
    except (OSError, ValueError) as err:
        raise ValueError(f"scheduler={address!r}: no Dask scheduler answered within {timeout:g} s "
                         f"({getattr(err, 'strerror', None) or err})") from err


@contextlib.contextmanager
def _client(client, scheduler: str | None, workers: int):
    """The Client to run on: the one given, one connected to ``scheduler``, or a new LocalCluster's."""
    if client is not None:
        yield client
        return
    from dask.distributed import Client, LocalCluster

    if scheduler is not None:
        with Client(scheduler, timeout=SCHEDULER_TIMEOUT) as c:
            yield c
        return
    # the dashboard on the loopback interface only: it shows configs and paths to whoever reaches it
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0",
                      host="127.0.0.1") as cluster, \
            Client(cluster) as c:
        yield c
