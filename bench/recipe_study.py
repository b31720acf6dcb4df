"""Choose the default profile's recipe by measurement: stability of the per-sample measures against cost.

    python bench/recipe_study.py                       # the grid below, 4 runs each, on the CPU
    python bench/recipe_study.py --archs convnet3 --epochs 20 60 --runs 8
    python bench/recipe_study.py --quick               # a tiny check (200 / 100 images, 3 epochs, 2 runs)

Each call adds its rows to the CSV, replacing those of the same config and number of runs.

Data: the real CIFAR-10 subset that ships with the project (``DataConfig("cifar10-subset")``,
5,085 / 1,017 images of 32x32 RGB, crop and flip on). Every candidate trains with Nesterov SGD
(momentum 0.9, weight decay 5e-4, batch 128) under a schedule of ``--schedules`` peaking at ``--lr``.

The grid (defaults): architectures ``convnet3`` (32/64/128, one conv per block), ``convnet3_w2``
(64/128/256) and ``convnet3x2`` (two convs per block) x epochs 20, 40, 60 x the ``onecycle``
schedule, ``--runs`` 4 runs each (seeds 0..R-1). Runs go through :func:`regutils.train.get_runs`
and its cache (``$REGUTILS_CACHE``), so an interrupted study continues where it stopped and a
second call only reads.

One row per candidate: the statistics of :func:`regutils.stability.summary` (the targets of
:data:`regutils.stability.TARGETS` and whether each is met), seconds per run (training plus
evaluation, from the traces: the seconds of the machine that trained them), the hours
``runs`` such runs take, and ``between_archs_density``: the smallest Pearson between the
architectures of the grid at the same epochs and schedule (Table 2,
:func:`regutils.stability.smallest_between_configs`; empty with one architecture). Written to ``bench/results/recipe_study.csv`` with the config of each
row; the split-half statistic against the number of runs (observed and Spearman-Brown) to
``bench/results/recipe_study_curve.csv``.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch

from regutils import measures, stability
from regutils.data import DataConfig
from regutils.loop import SCHEDULES
from regutils.train import RunConfig, get_runs

RESULTS = Path(__file__).resolve().parent / "results"
ARCHS = ("convnet3", "convnet3_w2", "convnet3x2")
EPOCHS = (20, 40, 60)


def candidates(archs, epochs, schedules, lr, batch_size, data: DataConfig) -> list[RunConfig]:
    """The grid as RunConfigs (seed 0: get_runs adds the seeds)."""
    return [RunConfig(data, arch=a, epochs=e, batch_size=batch_size, optimizer="sgd", lr=lr, momentum=0.9,
                      nesterov=True, weight_decay=5e-4, schedule=s)
            for a, e, s in itertools.product(archs, epochs, schedules)]


def study(configs: list[RunConfig], runs: int, device: str = "cpu", n_splits: int = 20):
    """The rows (one per config) and the grows-with-runs curves of the configs' ``runs`` runs."""
    rows, curves, traces = [], [], []
    for config in configs:
        trace = get_runs(config, runs, device=device)
        traces.append(trace)
        row = {"arch": config.arch, "epochs": config.epochs, "schedule": config.schedule, "lr": config.learning_rate,
               **stability.summary(trace, n_splits=n_splits)}
        row.update({f"met_{k}": v for k, v in stability.targets_met(row).items()})
        row["hours_for_runs"] = row["seconds_per_run"] * runs / 3600
        row["config"] = json.dumps(config.key_dict(), sort_keys=True, default=str)
        rows.append(row)
        for name, per_run in (("cbtl", measures.cbtl(trace.train_correct)),
                              ("events", measures.forgetting_events(trace.train_correct))):
            curve = stability.grows_with_runs(per_run, n_splits=n_splits)
            curves.append(curve.assign(arch=config.arch, epochs=config.epochs, schedule=config.schedule,
                                       measure=name))
    table = pd.DataFrame(rows)
    # Table 2: the candidates that differ only in architecture, against each other
    table["between_archs_density"] = float("nan")
    for (epochs, schedule), group in table.groupby(["epochs", "schedule"]):
        if group["arch"].nunique() >= 2:
            chosen = {i: traces[i] for i in group.index}
            table.loc[group.index, "between_archs_density"] = stability.smallest_between_configs(chosen)
    return table, pd.concat(curves, ignore_index=True)


def merged(new: pd.DataFrame, path: Path, keys: list[str]) -> pd.DataFrame:
    """``new`` with the rows of the CSV at ``path`` that it does not replace (same ``keys``): calls add up."""
    if not path.is_file():
        return new
    old = pd.read_csv(path)
    replaced = old.set_index(keys).index.isin(new.set_index(keys).index)
    return pd.concat([old[~replaced], new], ignore_index=True)


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", nargs="+", default=list(ARCHS))
    parser.add_argument("--epochs", type=int, nargs="+", default=list(EPOCHS))
    parser.add_argument("--schedules", nargs="+", default=["onecycle"], choices=SCHEDULES)
    parser.add_argument("--runs", type=int, default=4, help="runs per candidate (at least 2)")
    parser.add_argument("--lr", type=float, default=0.1, help="peak (onecycle) or initial learning rate")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="cpu", help="the cost is measured on the CPU (default)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (the two cores of the target)")
    parser.add_argument("--out", type=Path, default=RESULTS / "recipe_study.csv")
    parser.add_argument("--quick", action="store_true",
                        help="a tiny check: convnet3, 200 / 100 images, 3 epochs, 2 runs (overrides the grid)")
    args = parser.parse_args(argv)
    if args.runs < 2:
        parser.error(f"--runs {args.runs}: the statistics compare runs, at least 2 are needed")
    return args


def main(argv=None) -> pd.DataFrame:
    args = parse(argv)
    torch.set_num_threads(args.threads)
    data = DataConfig("cifar10-subset")
    archs, epochs, runs = args.archs, args.epochs, args.runs
    if args.quick:
        data = replace(data, train_size=200, test_size=100)
        archs, epochs, runs = ["convnet3"], [3], 2
    configs = candidates(archs, epochs, args.schedules, args.lr, args.batch_size, data)
    print(f"{len(configs)} candidates x {runs} runs on {data.dataset}"
          f"{' (quick: 200 / 100 images)' if args.quick else ''}, device {args.device}, {args.threads} threads",
          flush=True)
    table, curves = study(configs, runs, device=args.device)
    shown = ["arch", "epochs", "schedule", "runs", "test_acc", *stability.TARGETS, "between_archs_density",
             "seconds_per_run",
             "hours_for_runs", "runs_for_cbtl", "runs_for_events"]
    with pd.option_context("display.width", 250, "display.max_columns", None, "display.precision", 3):
        print(table[shown].to_string(index=False))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    curve_out = args.out.with_name(args.out.stem + "_curve.csv")
    merged(table, args.out, ["config", "runs"]).to_csv(args.out, index=False)
    merged(curves, curve_out, ["arch", "epochs", "schedule", "measure", "runs"]).to_csv(curve_out, index=False)
    print(f"wrote {args.out} and {args.out.with_name(args.out.stem + '_curve.csv')}", file=sys.stderr)
    return table


if __name__ == "__main__":
    main()
