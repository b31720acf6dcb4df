"""Command line: train runs into the cache, export per-sample measures, build the book.

    python -m regutils train --dataset digits --arch small_cnn --runs 10 --epochs 40
    python -m regutils train --dataset cifar10-subset --arch lenet     # real CIFAR-10 images, shipped
    python -m regutils train --dataset npz --data my_data.npz --arch lenet
    python -m regutils train --dataset digits --runs 10 --workers 2        # seeds in parallel (Dask)
    python -m regutils train --dataset cifar10 --runs 10 --scheduler tcp://head:8786
    python -m regutils measures --dataset digits --arch small_cnn --runs 10 --epochs 40 -o digits.csv
    python -m regutils measures --trace ~/.cache/regutils/<key>.npz -o run.csv --per-run
    python -m regutils book --profile default
    python -m regutils data cifar10-subset --from ~/cifar -o cifar10-subset.npz   # rebuild the shipped subset
    python -m regutils traces --profile default          # execute the book, export its runs to traces/default
    python -m regutils bundle verify traces/default      # check a trace bundle; non-zero exit on any failure
"""
from __future__ import annotations

import argparse
import errno
import json
import keyword
import os
import re
import sys
from pathlib import Path

import numpy as np

from . import measures, models
from .cache import Cache, default_cache_dir
from .data import DATASETS, SUBSET_MD5, DataConfig
from .loop import OPTIMIZERS, SCHEDULES, RunConfig, resolve_device, run_key
from .trace import TraceError, load
from .train import get_runs, seeds_of
from .validation import Int, check

MAX_WORKERS = 256


def _run_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default="digits", choices=DATASETS, help="data set (default: digits, embedded)")
    g.add_argument("--data", metavar="PATH", help="npz file for --dataset npz; torchvision root for cifar10/100 "
                   "(cifar10-subset ships with the project: no path)")
    g.add_argument("--download", action="store_true", help="let torchvision download CIFAR")
    g.add_argument("--augment", choices=("on", "off"), help="crop+flip augmentation (default: on for CIFAR, off for digits)")
    g.add_argument("--label-noise", type=float, default=0.0, help="fraction of training labels replaced (0..1)")
    g.add_argument("--random-inputs", action="store_true", help="replace training images by Gaussian noise")
    g.add_argument("--train-size", type=int, help="stratified training subset size")
    g.add_argument("--test-size", type=int, help="stratified test subset size")
    g.add_argument("--data-seed", type=int, default=0, help="seed of label noise and subsets")
    g = p.add_argument_group("training")
    g.add_argument("--arch", default="small_cnn", choices=models.names(), help="architecture")
    g.add_argument("--epochs", type=int, default=30, help="passes over the training set")
    g.add_argument("--runs", type=int, default=1, help="runs with seeds seed, seed+1, ...")
    g.add_argument("--seed", type=int, default=0, help="seed of the first run")
    g.add_argument("--batch-size", type=int, default=128, help="training samples per step")
    g.add_argument("--optimizer", default="sgd", choices=OPTIMIZERS, help="optimizer")
    g.add_argument("--lr", type=float, help="initial learning rate (default: 0.1 sgd, 0.01 adagrad, 0.002 adamax, 0.001 adam)")
    g.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    g.add_argument("--nesterov", action="store_true", help="Nesterov momentum")
    g.add_argument("--weight-decay", type=float, default=5e-4, help="L2 coefficient")
    g.add_argument("--schedule", default="multistep", choices=SCHEDULES,
                   help="multistep: /10 at 40.5%% and 61%% of training (epochs 81, 122 of 200); cosine; constant")
    g.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1, ...")
    g.add_argument("--stack", choices=("auto", "on", "off"), default="auto",
                   help="train the seeds at once as one stacked model (auto: on CUDA only)")
    g.add_argument("--cache", metavar="DIR", help="trace cache (default: $REGUTILS_CACHE or ~/.cache/regutils)")


def _config(a: argparse.Namespace) -> RunConfig:
    """The RunConfig of the flags, every value checked (runs, device and cache too) before any work."""
    augment = None if a.augment is None else a.augment == "on"
    data = DataConfig(a.dataset, path=a.data, download=a.download, augment=augment, label_noise=a.label_noise,
                      random_inputs=a.random_inputs, train_size=a.train_size, test_size=a.test_size,
                      data_seed=a.data_seed)
    config = RunConfig(data, arch=a.arch, epochs=a.epochs, batch_size=a.batch_size, optimizer=a.optimizer, lr=a.lr,
                       momentum=a.momentum, nesterov=a.nesterov, weight_decay=a.weight_decay, schedule=a.schedule,
                       seed=a.seed).validate()
    seeds_of(config, a.runs)
    resolve_device(a.device)
    _cache(a)
    return config


def _cache(a: argparse.Namespace) -> Cache:
    root = Path(a.cache) if a.cache else default_cache_dir()
    if root.exists() and not root.is_dir():
        raise ValueError(f"cache={str(root)!r} is not a directory; give a directory (it is created when missing)")
    return Cache(root)


def _check_output(output: str | None) -> None:
    """ValueError unless ``output`` (None or '-': standard output) is a file this process can write."""
    if output in (None, "-"):
        return
    path = Path(output)
    if path.is_dir():
        raise ValueError(f"output={output!r} is a directory; give a file name")
    if not path.parent.is_dir():
        raise ValueError(f"output={output!r}: the directory {str(path.parent)!r} does not exist")
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ValueError(f"output={output!r} is not writable")


def cmd_train(a) -> int:
    check("workers", a.workers, Int(1, MAX_WORKERS, none=True))
    if a.scheduler is not None and a.workers is not None:
        raise ValueError("--scheduler and --workers exclude each other: --workers starts a local cluster")
    config = _config(a)
    cache = _cache(a)
    if a.scheduler is not None or a.workers is not None:
        trace = _train_on_cluster(config, a, cache)
    else:
        stacked = {"auto": None, "on": True, "off": False}[a.stack]
        trace = get_runs(config, a.runs, cache=cache, device=a.device, stacked=stacked)
    keys = [run_key(c) for c in seeds_of(config, a.runs)]
    for k in keys:
        print(cache.trace_path(k))
    acc = trace.history["test_acc"][..., -1]
    print(f"{a.runs} run(s) in {cache.root}; final test accuracy {np.mean(acc):.4f} (min {np.min(acc):.4f})",
          file=sys.stderr)
    return 0


# --- train --scheduler / --workers: the seeds as a Dask sweep


def _cluster_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("cluster (runs in parallel through regutils.sweep)")
    g.add_argument("--scheduler", metavar="ADDRESS", help="address of a running Dask scheduler, e.g. tcp://head:8786")
    g.add_argument("--workers", type=int, metavar="N",
                   help="start a local Dask cluster of N single-threaded worker processes")


def _train_on_cluster(config: RunConfig, a: argparse.Namespace, cache: Cache):
    from .sweep import SweepError, sweep
    from .trace import stack

    try:
        traces = sweep(seeds_of(config, a.runs), scheduler=a.scheduler,
                       workers=a.workers if a.workers is not None else 2, cache=cache, device=a.device)
    except SweepError as err:
        raise SystemExit(f"error: {err}") from err
    return stack(traces)


def cmd_measures(a) -> int:
    _check_output(a.output)
    if a.trace:
        traces = [load(p) for p in a.trace]
        from .trace import stack

        trace = stack(traces) if len(traces) > 1 else traces[0]
    else:
        trace = get_runs(_config(a), a.runs, cache=_cache(a), device=a.device)
    table = measures.table(trace, per_run=a.per_run, never_learned=a.never_learned)
    if a.output in (None, "-"):
        table.to_csv(sys.stdout, index=False)
    else:
        table.to_csv(a.output, index=False)
        print(f"{len(table)} rows -> {a.output}", file=sys.stderr)
    return 0


def parse_parameters(items: list[str]) -> dict:
    """``NAME=VALUE`` strings as {name: value}: the value JSON when it parses, else the string; names checked."""
    overrides = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"-p {item!r}: expected NAME=VALUE")
        if not name.isidentifier() or keyword.iskeyword(name):
            raise ValueError(f"-p {item!r}: {name!r} is not a parameter name (letters, digits and _)")
        if name == "profile":
            raise ValueError(f"-p {item!r}: choose the profile with --profile, not -p")
        if name in overrides:
            raise ValueError(f"-p {item!r}: {name} is given twice")
        try:
            overrides[name] = json.loads(value)
        except json.JSONDecodeError:
            overrides[name] = value
    return overrides


def cmd_book(a) -> int:
    from .book import build

    build(a.profile, only=a.only, overrides=parse_parameters(a.param or []), html=not a.no_html, jobs=a.jobs,
          reuse=not a.force)
    return 0


def cmd_data(a) -> int:
    from . import cifar_subset

    digest = cifar_subset.rebuild(a.root, a.output)
    same = "identical to" if digest == SUBSET_MD5 else "differs from"
    print(f"{a.output}: md5 {digest}, {same} the shipped data/cifar10-subset.npz ({SUBSET_MD5})",
          file=sys.stderr)
    return 0


def cmd_traces(a) -> int:
    from .book import build, pretrain
    from .bundle import listed_runs, produce

    out = a.out or Path("traces") / a.profile
    if a.jobs > 1 and not a.only and (out / "manifest.json").is_file():
        # the bundle being made again lists its runs: train them first, all cores busy until the last one
        pretrain(listed_runs(out), a.jobs)

    def execute(profile, only):
        build(profile, only=only, html=False, jobs=a.jobs)

    produce(a.profile, out, execute, Cache(), only=a.only, jobs=a.jobs)
    return 0


def cmd_bundle_verify(a) -> int:
    from .bundle import Bundle, verify

    problems = verify(a.dir)
    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    if problems:
        print(f"{a.dir}: {len(problems)} problem(s); the refused files are never used", file=sys.stderr)
        return 1
    manifest = Bundle(a.dir).manifest
    print(f"{a.dir}: OK, {len(manifest['runs'])} runs, {manifest['total_bytes'] / 1e6:.2f} MB, every file "
          "matches the manifest and passes its checks", file=sys.stderr)
    return 0


def _flags(message: str, parser: argparse.ArgumentParser) -> str:
    """``name=value`` in a message as the command line's ``--flag value`` (``path=`` is ``--data``)."""
    flags = {"path": "--data", "output": "--output"}
    for sub in parser._subparsers._group_actions[0].choices.values() if parser._subparsers else ():
        for action in sub._actions:
            long = [o for o in action.option_strings if o.startswith("--")]
            if long and action.dest not in flags:
                flags[action.dest] = long[0]
    return re.sub(r"(?<![\w.-])([a-z_]+)=", lambda m: f"{flags[m[1]]} " if m[1] in flags else m[0], message)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m regutils", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train runs into the cache and print their trace files")
    _run_arguments(p)
    _cluster_arguments(p)
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("measures", help="write per-sample measures as CSV")
    _run_arguments(p)
    p.add_argument("--trace", nargs="+", metavar="FILE", help="trace file(s) to read instead of the run flags")
    p.add_argument("--per-run", action="store_true", help="one row per run instead of averages over runs")
    p.add_argument("--never-learned", default="zero", choices=measures.NEVER_LEARNED_CONVENTIONS,
                   help="events of never-learned samples: zero (the paper's definition) or max (T epochs)")
    p.add_argument("-o", "--output", help="CSV file (default: standard output)")
    p.set_defaults(func=cmd_measures)
    p = sub.add_parser("book", help="execute the chapters and build the HTML book")
    p.add_argument("--profile", default="default", help="smoke, default, digits or paper")
    p.add_argument("--only", nargs="+", metavar="CHAPTER", help="execute only these chapters")
    p.add_argument("-p", "--param", action="append", metavar="NAME=VALUE", help="override a parameter (JSON value)")
    p.add_argument("--no-html", action="store_true", help="execute only, do not run jupyter-book")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="chapters executed at once, each by a single-threaded process (default: 1)")
    p.add_argument("--force", action="store_true",
                   help="execute every chapter and build every page, reusing no earlier execution or page")
    p.set_defaults(func=cmd_book)
    p = sub.add_parser("data", help="rebuild a data set that ships with the project from its source")
    p.add_argument("name", choices=("cifar10-subset",), help="cifar10-subset: from torchvision's CIFAR-10 download")
    p.add_argument("--from", dest="root", required=True, metavar="ROOT",
                   help="torchvision CIFAR-10 root: the folder holding cifar-10-batches-py/")
    p.add_argument("-o", "--output", default="cifar10-subset.npz", help="npz file (default: %(default)s)")
    p.set_defaults(func=cmd_data)
    p = sub.add_parser("traces", help="execute the book and export the runs it uses as a trace bundle")
    p.add_argument("--profile", default="default", help="smoke, default, digits or paper")
    p.add_argument("--out", metavar="DIR", help="bundle directory (default: traces/PROFILE)")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="chapters executed at once, each by a single-threaded process (default: 1)")
    p.add_argument("--only", nargs="+", metavar="CHAPTER", help="execute only these chapters")
    p.set_defaults(func=cmd_traces)
    p = sub.add_parser("bundle", help="trace bundles: runs shipped with the project")
    bsub = p.add_subparsers(dest="action", required=True)
    q = bsub.add_parser("verify", help="check every file of a bundle against its manifest and the trace checks")
    q.add_argument("dir", help="bundle directory, e.g. traces/default")
    q.set_defaults(func=cmd_bundle_verify)
    a = parser.parse_args(argv)
    try:
        return a.func(a)
    except (ValueError, TraceError) as err:
        message = _flags(str(err), parser) if a.command != "book" else str(err)
    except OSError as err:  # a full disk, a read-only or inaccessible cache: one line, not a traceback
        if err.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT):
            raise
        message = f"{err.strerror}: {err.filename}" if err.filename else (err.strerror or str(err))
    parser.exit(2, f"regutils: error: {message}\n")
