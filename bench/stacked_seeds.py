"""Many seeds on one GPU: R runs trained as one stacked model against the same R runs one after another.

    python bench/stacked_seeds.py                         # CUDA when present, else a short CPU check
    python bench/stacked_seeds.py --runs 4 8 16 --epochs 3 --arch resnet20

Data: the real CIFAR-10 subset that ships with the project
(``DataConfig("cifar10-subset")``, 5,085 / 1,017 images of 32x32 RGB, 10
classes). Augmentation (crop and flip) is on, as in the paper.

For each R the sequential time is that of R single runs (seeds 0..R-1,
:func:`regutils.train.train`) and the stacked time that of one
:func:`regutils.train.train_runs` call for the same seeds; both include
the eval-mode pass over every sample at every epoch. A one-epoch warm-up of each
mode and stack size comes first. Also printed: how far the stacked traces agree with the single
ones (identical sample order; on CUDA bf16 rounding makes a few predictions
differ) and the final test accuracies of both.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import torch

from regutils.data import DataConfig
from regutils.train import RunConfig, load_for, seeds_of, train, train_runs


def timed(fn):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="resnet20")
    parser.add_argument("--runs", type=int, nargs="+", default=None, help="stack sizes R (default 4 8 16; CPU: 2)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per run (default 3; CPU: 1)")
    parser.add_argument("--train-size", type=int, default=None, help="training samples (default all; CPU: 256)")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    runs = args.runs or ([4, 8, 16] if cuda else [2])
    epochs = args.epochs or (3 if cuda else 1)
    data = DataConfig("cifar10-subset")
    if args.train_size or not cuda:
        data = replace(data, train_size=args.train_size or 256, test_size=None if cuda else 64)
    base = RunConfig(data, arch=args.arch, epochs=epochs)
    loaded = load_for(base.data, base.arch)
    where = torch.cuda.get_device_name() if cuda else "CPU (stacking is meant for a GPU)"
    print(f"torch {torch.__version__}, {where}; {args.arch}, {len(loaded.y_train)} train / {len(loaded.y_test)} "
          f"test images of {tuple(loaded.x_train.shape[1:])}, batch {base.batch_size}, {epochs} epochs per run, "
          "the real CIFAR-10 subset")

    warm = replace(base, epochs=1)  # first calls of each shape: allocator, kernel selection
    train(warm, loaded, progress=False)
    for r in runs:
        train_runs(seeds_of(warm, r), loaded, progress=False)

    largest = max(runs)
    configs = seeds_of(base, largest)
    single_seconds, singles = [], []
    for c in configs:
        seconds, trace = timed(lambda c=c: train(c, loaded, progress=False))
        single_seconds.append(seconds)
        singles.append(trace)
    header = (f"{'R':>3s} {'sequential s':>12s} {'stacked s':>9s} {'speed-up':>8s} {'run-epochs/s':>12s} "
              f"{'agree':>6s} {'test acc single':>15s} {'test acc stacked':>16s}")
    print(header)
    print("-" * len(header))
    for r in sorted(runs):
        seconds, stacked = timed(lambda r=r: train_runs(configs[:r], loaded, progress=False))
        sequential = sum(single_seconds[:r])
        agree = np.mean([(a.train_correct == b.train_correct).mean() for a, b in zip(stacked, singles)])
        acc_single = np.mean([t.meta["final_test_acc"] for t in singles[:r]])
        acc_stacked = np.mean([t.meta["final_test_acc"] for t in stacked])
        print(f"{r:>3d} {sequential:12.1f} {seconds:9.1f} {sequential / seconds:7.2f}x {r * epochs / seconds:12.2f} "
              f"{agree:6.3f} {acc_single:15.3f} {acc_stacked:16.3f}", flush=True)
    print("speed-up = sequential / stacked wall time for the same R runs; agree = share of (epoch, sample) "
          "correctness bits equal in the stacked and single traces")


if __name__ == "__main__":
    main()
