"""Wall time of N small runs one after the other vs as a sweep on a local Dask cluster.

Trains N digits runs (seeds 0..N-1) three ways, each into its own empty
temporary cache, in one invocation so that the numbers are comparable:

- sequential: ``get_run`` in a loop in this process (what ``get_runs`` does);
- sweep, cold: ``sweep`` starting its own LocalCluster of --workers
  single-threaded processes (worker start-up and imports included);
- sweep, warm: the same on a cluster already started, its workers having
  imported regutils (the cost of the runs alone).

Usage::

    .venv/bin/python bench/sweep_scaling.py [--runs 6 --epochs 3 --arch mlp --workers 2]

Times are time.perf_counter wall seconds; the ratio is sequential / sweep, so
above 1 means the sweep is faster. On a CUDA device the stacked-seeds
comparison follows (``bench/stacked_seeds.py``: R seeds of ResNet-20 on
CIFAR-10-shaped data trained as one stacked model vs one after another).
"""
import argparse
import tempfile
import time

import torch

from regutils.data import DataConfig
from regutils.sweep import grid, sweep
from regutils.cache import Cache
from regutils.train import RunConfig, get_run, load_for


def _import_regutils():
    import regutils.train  # noqa: F401  (worker warm-up: imports and the data)
    from regutils.data import DataConfig
    from regutils.train import load_for

    load_for(DataConfig("digits"), "mlp")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=6)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--arch", default="mlp")
    p.add_argument("--workers", type=int, default=2)
    a = p.parse_args()
    configs = grid(RunConfig(DataConfig("digits"), arch=a.arch, epochs=a.epochs), seed=range(a.runs))
    load_for(configs[0].data, a.arch)  # the data load is not what is compared
    print(f"{a.runs} runs of digits / {a.arch} / {a.epochs} epochs; {torch.get_num_threads()} torch threads here")

    with tempfile.TemporaryDirectory() as root:
        t0 = time.perf_counter()
        for config in configs:
            get_run(config, cache=Cache(root), progress=False)
        sequential = time.perf_counter() - t0
    print(f"sequential                       {sequential:7.2f} s")

    with tempfile.TemporaryDirectory() as root:
        t0 = time.perf_counter()
        sweep(configs, workers=a.workers, cache=Cache(root), progress=False)
        cold = time.perf_counter() - t0
    print(f"sweep, {a.workers} workers, cold cluster     {cold:7.2f} s   ratio {sequential / cold:5.2f}")

    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=a.workers, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client, tempfile.TemporaryDirectory() as root:
        client.run(_import_regutils)
        t0 = time.perf_counter()
        sweep(configs, client=client, cache=Cache(root), progress=False)
        warm = time.perf_counter() - t0
    print(f"sweep, {a.workers} workers, warm cluster     {warm:7.2f} s   ratio {sequential / warm:5.2f}")

    if not torch.cuda.is_available():
        print("no CUDA device: stacked-seeds benchmark skipped (bench/stacked_seeds.py)")
    else:
        import runpy
        import sys
        from pathlib import Path

        sys.argv = [sys.argv[0]]  # the stacked benchmark's own defaults
        runpy.run_path(str(Path(__file__).with_name("stacked_seeds.py")), run_name="__main__")


if __name__ == "__main__":
    main()
