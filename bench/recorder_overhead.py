"""What the recorder costs a user's own training loop: the same loop timed with and without it.

    python bench/recorder_overhead.py                       # 1 thread, 3 repeats
    python bench/recorder_overhead.py --threads 2 --repeats 5 --samples 20000

The workload is a plain CPU loop: an MLP (64 -> 256 -> 256 -> 10) on random inputs with labels
from a random linear map, SGD, minibatches of 128, 3 epochs. Two modes, interleaved in one
process and repeated:

=========  =====================================================================
plain      the loop alone
recorded   the same loop with :meth:`Recorder.on_batch` at every step and
           :meth:`Recorder.on_epoch_end` (eval pass over all training and all test
           samples) at the end of every epoch
=========  =====================================================================

The least wall time and the least process CPU time of each mode are kept (the least disturbed
repeat on a shared machine; CPU time is disturbed less by other processes) and the ratios
recorded / plain printed, with the time the recorded run spent in on_batch and in the eval pass.
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from regutils.recorder import Recorder


def make_data(n_train: int, n_test: int, dim: int = 64, classes: int = 10):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(dim, classes, generator=g)
    x_tr, x_te = torch.randn(n_train, dim, generator=g), torch.randn(n_test, dim, generator=g)
    return x_tr, (x_tr @ w).argmax(1), x_te, (x_te @ w).argmax(1)


def run(data, epochs: int, record: bool, batch_size: int = 128) -> dict:
    x_tr, y_tr, x_te, y_te = data
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(x_tr.shape[1], 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                                torch.nn.ReLU(), torch.nn.Linear(256, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    rec = Recorder(len(y_tr), len(y_te), y_tr, y_te, optimizer=opt) if record else None
    g = torch.Generator().manual_seed(1)
    on_batch = eval_pass = 0.0
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(y_tr), generator=g).split(batch_size):
            logits = model(x_tr[idx])
            if rec is not None:
                t = time.perf_counter()
                rec.on_batch(idx, logits, y_tr[idx])
                on_batch += time.perf_counter() - t
            loss = F.cross_entropy(logits, y_tr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if rec is not None:
            t = time.perf_counter()
            rec.on_epoch_end(model, x_tr, x_te)
            eval_pass += time.perf_counter() - t
    return {"wall": time.perf_counter() - start, "cpu": time.process_time() - cpu, "on_batch": on_batch,
            "eval": eval_pass}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5000, help="training samples (test: a fifth)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (more oversubscribe a loaded machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = make_data(args.samples, args.samples // 5)
    run(data, 1, True)  # warm up: first calls allocate and load kernels
    results = {"plain": [], "recorded": []}
    for _ in range(args.repeats):
        for mode in results:  # interleaved: a slow spell of the machine hits both modes
            results[mode].append(run(data, args.epochs, mode == "recorded"))
    plain, recorded = ({k: min(r[k] for r in rs) for k in rs[0]} for rs in results.values())
    print(f"MLP on {args.samples} random samples, {args.epochs} epochs, {args.threads} threads, "
          f"best of {args.repeats}")
    print(f"plain     wall {plain['wall']:.3f} s, cpu {plain['cpu']:.3f} s")
    print(f"recorded  wall {recorded['wall']:.3f} s, cpu {recorded['cpu']:.3f} s  "
          f"(on_batch {recorded['on_batch']:.3f} s, eval pass {recorded['eval']:.3f} s)")
    print(f"ratio recorded / plain: wall {recorded['wall'] / plain['wall']:.3f}x, "
          f"cpu {recorded['cpu'] / plain['cpu']:.3f}x")


if __name__ == "__main__":
    main()
