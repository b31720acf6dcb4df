"""Speed and memory of the trace analysis at CIFAR-scale size.

Builds a synthetic trace of 10 runs x 200 epochs x 60,000 samples (bool
correctness from a persistent random walk, float16 true-class probability),
then times the analysis only: the per-sample measures, the density on the
run-averaged (CBTL, events) plane, and the angular binning.

Usage::

    .venv/bin/python bench/analysis_speed.py [--runs 10 --epochs 200 --samples 60000]

Time is the best of --repeat untraced passes (time.perf_counter). Memory is
the peak of allocations made during a stage, measured by tracemalloc (numpy
reports its array buffers to tracemalloc) in a separate traced pass; the
inputs allocated before the stage are not counted, and neither is the C++
kd-tree inside scipy's cKDTree (a few MB at this size).
Target: <= 2 s and <= 2 GiB for the whole analysis on 2 CPU cores.
"""
import argparse
import resource
import time
import tracemalloc

import numpy as np

from regutils import density, measures, sampling

TARGET_SECONDS = 2.0
TARGET_BYTES = 2 * 1024**3


def synthetic_trace(n_runs, n_epochs, n_samples, seed=0):
    """Correctness and true-class probability from a persistent random walk.

    Each sample has a learning time (a skewed, gamma-distributed fraction of
    training) and a transition whose width grows with it: easy samples flip
    to correct within an epoch or two, hard ones hesitate. Each epoch a
    sample keeps its state with probability 0.7 and otherwise redraws it
    from its current chance of being correct. This gives CIFAR-like counts:
    mean CBTL ~178 of 200, ~1 event per run, half the (run, sample) pairs
    without events, a tail up to ~15.
    """
    rng = np.random.default_rng(seed)
    learn_at = rng.gamma(1.0, 0.1, size=n_samples).astype(np.float32)
    width = 0.2 * learn_at + 0.002
    correct = np.empty((n_runs, n_epochs, n_samples), dtype=bool)
    prob = np.empty((n_runs, n_epochs, n_samples), dtype=np.float16)
    state = np.zeros((n_runs, n_samples), dtype=bool)
    for t in range(n_epochs):
        p_correct = 1.0 / (1.0 + np.exp(-((t + 1) / n_epochs - learn_at) / width))
        redraw = rng.random((n_runs, n_samples), dtype=np.float32) < 0.3
        fresh = rng.random((n_runs, n_samples), dtype=np.float32) < p_correct
        state = np.where(redraw, fresh, state)
        correct[:, t] = state
        noise = rng.random((n_runs, n_samples), dtype=np.float32)
        prob[:, t] = np.where(state, 0.5 + 0.5 * noise, 0.5 * noise)
    return correct, prob


def analysis_stages(correct, prob):
    """The analysis as (name, function) stages; results are passed along in `out`."""
    out = {}

    def all_measures():
        out["cbtl"] = measures.cbtl(correct)
        out["events"] = measures.forgetting_events(correct)
        out["first"] = measures.first_learned_epoch(correct)
        out["learnability"] = measures.learnability(prob)
        out["x"] = measures.average_over_runs(out["cbtl"])
        out["y"] = measures.average_over_runs(out["events"])

    def plane_density():
        out["density"] = density.density(out["x"], out["y"])

    def binning():
        out["bins"] = sampling.angular_bins(out["x"], out["y"])

    return out, [
        ("measures: cbtl", lambda: measures.cbtl(correct)),
        ("measures: events", lambda: measures.forgetting_events(correct)),
        ("measures: first learned", lambda: measures.first_learned_epoch(correct)),
        ("measures: learnability (f16)", lambda: measures.learnability(prob)),
        ("all measures + run averages", all_measures),
        ("density (run-averaged plane)", plane_density),
        ("angular binning", binning),
    ]


def best_time(fn, repeat):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def traced_peak(fn):
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--samples", type=int, default=60_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    start = time.perf_counter()
    correct, prob = synthetic_trace(args.runs, args.epochs, args.samples)
    print(
        f"trace {correct.shape}: correct {correct.nbytes / 2**20:.0f} MiB bool, "
        f"prob {prob.nbytes / 2**20:.0f} MiB float16 (inputs, not counted below); "
        f"generated in {time.perf_counter() - start:.1f} s"
    )

    out, stages = analysis_stages(correct, prob)
    rows = [(name, best_time(fn, args.repeat), traced_peak(fn)) for name, fn in stages]
    counted = [r for r in rows if not r[0].startswith("measures: ")]
    total_time = sum(r[1] for r in counted)
    total_peak = max(r[2] for r in counted)

    print(f"\n{'stage':32s} {'time (s)':>9s} {'peak (MiB)':>11s}")
    for name, seconds, peak in rows:
        print(f"{name:32s} {seconds:9.3f} {peak / 2**20:11.1f}")
    print(f"{'analysis total':32s} {total_time:9.3f} {total_peak / 2**20:11.1f}")
    print(
        f"{'ratio to target (2 s, 2 GiB)':32s} {total_time / TARGET_SECONDS:9.2f} "
        f"{total_peak / TARGET_BYTES:11.2f}"
    )
    print("(total = all measures + density + binning; the 'measures:' rows break down the first)")

    x, y = out["x"], out["y"]
    print(
        f"\nsanity: mean CBTL {x.mean():.1f}, mean events {y.mean():.2f}, max events {y.max():.1f}, "
        f"never learned {np.mean(out['cbtl'] == 0):.3%} of (run, sample), "
        f"bins {np.bincount(out['bins']).tolist()}"
    )
    maxrss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process peak RSS (ru_maxrss, generation included): {maxrss_mib:.0f} MiB")


if __name__ == "__main__":
    main()
