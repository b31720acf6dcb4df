"""What recording every sample costs: training time with and without the records.

    python bench/tracking_overhead.py                  # 2 threads, 3 repeats
    python bench/tracking_overhead.py --threads 1 --repeats 5
    python bench/tracking_overhead.py --device cuda    # on a GPU: ResNet-20 and ResNet-110 too

Each workload trains the same run (config, seed, data) in three modes, in one
process, interleaved and repeated:

=======  ==================================================================
none     ``track_epochs=False, track_batches=False``: plain training
batches  the per-minibatch record only (train-mode correctness, step)
full     both records: per-minibatch, and the eval-mode pass over all
         training and all test samples at the end of every epoch
=======  ==================================================================

The least wall time of each mode is kept (on a shared machine the least
disturbed repeat is the best estimate of the cost) and divided by that of
``none``; the same for the process's CPU time, which other processes on a
loaded machine disturb less (with several threads it also counts their
spin-waits). Targets on 2 CPU cores: full <= 1.35x, batches <= 1.05x. The
``eval share`` column is the eval pass's part of a full run, from the run's
own ``history['eval_seconds']`` and ``history['seconds']`` (median over the repeats).

Workloads: the digits with ``small_cnn`` (20 epochs), and ``resnet20`` on a
stratified 1,500 / 300 part of the real CIFAR-10 subset that ships with the
project (``DataConfig("cifar10-subset")``, 2 epochs, the
5:1 train:test proportion of CIFAR-10). On CUDA, ResNet-20 and ResNet-110 on the
whole subset (5,085 / 1,017) too, with their training images per second.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from regutils.data import DataConfig
from regutils.train import RunConfig, load_for, train

MODES = {"none": dict(track_epochs=False, track_batches=False),
         "batches": dict(track_epochs=False, track_batches=True),
         "full": dict(track_epochs=True, track_batches=True)}
TARGETS = {"batches": 1.05, "full": 1.35}


def workloads(cuda: bool) -> dict[str, RunConfig]:
    out = {"digits small_cnn 20 ep": RunConfig(DataConfig("digits"), arch="small_cnn", epochs=20)}
    part = DataConfig("cifar10-subset", train_size=1500, test_size=300)
    out["cifar10-subset resnet20 2 ep"] = RunConfig(part, arch="resnet20", epochs=2)
    if cuda:
        whole = DataConfig("cifar10-subset")
        out["cifar10-subset resnet20 5 ep"] = RunConfig(whole, arch="resnet20", epochs=5)
        out["cifar10-subset resnet110 3 ep"] = RunConfig(whole, arch="resnet110", epochs=3)
    return out


def measure(config: RunConfig, repeats: int, device: str) -> dict:
    """Least wall and CPU seconds of each mode, and the median eval share of the full runs."""
    data = load_for(config.data, config.arch)
    train(RunConfig(config.data, config.arch, epochs=1), data, device=device, progress=False)  # warm-up
    seconds = {(clock, mode): [] for clock in ("wall", "cpu") for mode in MODES}
    eval_share = []
    for _ in range(repeats):
        for mode, switches in MODES.items():
            wall, cpu = time.perf_counter(), time.process_time()
            trace = train(config, data, device=device, progress=False, **switches)
            seconds["wall", mode].append(time.perf_counter() - wall)
            seconds["cpu", mode].append(time.process_time() - cpu)
            if mode == "full":
                h = trace.history
                eval_share.append(h["eval_seconds"].sum() / (h["seconds"].sum() + h["eval_seconds"].sum()))
    best = {key: min(times) for key, times in seconds.items()}
    return {"n": (len(data.y_train), len(data.y_test)), "best": best, "eval_share": float(np.median(eval_share))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each mode (default 3)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cuda = torch.device(args.device).type == "cuda"
    where = torch.cuda.get_device_name() if cuda else f"{args.threads} CPU threads"
    print(f"torch {torch.__version__}, {where}, {args.repeats} repeats; least seconds of each mode")
    header = (f"{'workload':29s} {'train/test':>10s} {'clock':>5s} {'none s':>7s} {'batches s':>9s} {'full s':>7s} "
              f"{'batches/none':>12s} {'full/none':>9s} {'eval share':>10s} {'img/s full':>10s}")
    print(header)
    print("-" * len(header))
    for name, config in workloads(cuda).items():
        r = measure(config, args.repeats, args.device)
        images = config.epochs * r["n"][0]  # training images per run
        for clock in ("wall", "cpu"):
            b = {mode: r["best"][clock, mode] for mode in MODES}
            print(f"{name:29s} {r['n'][0]:>5d}/{r['n'][1]:<4d} {clock:>5s} {b['none']:7.2f} {b['batches']:9.2f} "
                  f"{b['full']:7.2f} {b['batches'] / b['none']:12.3f} {b['full'] / b['none']:9.3f} "
                  f"{r['eval_share']:10.1%} {images / b['full']:10.0f}", flush=True)
    print(f"targets: batches/none <= {TARGETS['batches']}, full/none <= {TARGETS['full']} (wall, 2 CPU cores); "
          "cpu = process CPU time, steadier than wall on a loaded machine")


if __name__ == "__main__":
    main()
