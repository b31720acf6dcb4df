"""A small MLP trained on scikit-learn's digits with Lightning, every sample recorded by regutils.

    pip install -e ".[lightning]"
    python examples/lightning_digits.py --out runs/              # writes runs/lightning_digits.npz
    python examples/lightning_digits.py --out runs/ --epochs 5

Prints the trace's path and the final train and test accuracy of the recorded eval pass. The
trace loads with ``regutils.trace.load``. Data: the 1,797 8x8 digits split 1,347 / 450 with a fixed
seed; model: 64-128-10 MLP, SGD with momentum, batches of 64; a few seconds on one CPU core.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader, TensorDataset

from regutils.lightning import RecorderCallback
from regutils.trace import load

SEED, BATCH, LR, MOMENTUM, EVAL_BATCH = 0, 64, 0.05, 0.9, 512


def digits(seed: int = SEED) -> dict:
    """x_train (N, 64) float32 in [0, 1], y_train (N,), x_test (M, 64), y_test (M,), and each sample's row in
    ``load_digits()`` (index_train, index_test): a stratified 75 / 25 split."""
    d = load_digits()
    rows_train, rows_test = train_test_split(np.arange(len(d.target)), test_size=0.25, random_state=seed,
                                             stratify=d.target)
    x, y = torch.tensor(d.data / 16, dtype=torch.float32), torch.tensor(d.target)
    return {"x_train": x[rows_train], "y_train": y[rows_train], "x_test": x[rows_test], "y_test": y[rows_test],
            "index_train": rows_train, "index_test": rows_test}


def mlp(seed: int = SEED) -> torch.nn.Sequential:
    """64 -> 128 -> 10; the same weights for the same seed."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))


def loader(data: dict, seed: int = SEED) -> DataLoader:
    """Shuffled batches (idx, x, y) of the training set: idx are the positions the recorder needs."""
    dataset = TensorDataset(torch.arange(len(data["y_train"])), data["x_train"], data["y_train"])
    return DataLoader(dataset, batch_size=BATCH, shuffle=True, generator=torch.Generator().manual_seed(seed))


class DigitsModule(pl.LightningModule):
    """``net`` trained on cross-entropy; ``training_step`` returns what the recorder reads."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        idx, x, y = batch
        logits = self(x)
        return {"loss": F.cross_entropy(logits, y), "logits": logits, "idx": idx, "y": y}

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=LR, momentum=MOMENTUM)


def trainer(out: Path, epochs: int, **kwargs) -> pl.Trainer:
    """A quiet single-CPU trainer: no logger, checkpoint, progress bar or summary."""
    return pl.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, default_root_dir=out, **kwargs)


def run(out: str | Path, epochs: int = 3, seed: int = SEED) -> dict:
    """Train and record; returns the trace's ``path``, the trained ``model``, the ``data`` and the optimizer ``steps``."""
    data = digits(seed)
    model = DigitsModule(mlp(seed))
    path = Path(out) / "lightning_digits.npz"
    callback = RecorderCallback(data["x_train"], data["y_train"], data["x_test"], data["y_test"], path=path,
                                meta={"example": "lightning_digits", "seed": seed}, eval_batch_size=EVAL_BATCH,
                                index_train=data["index_train"], index_test=data["index_test"])
    fit = trainer(Path(out), epochs, callbacks=[callback])
    fit.fit(model, loader(data, seed))
    return {"path": path, "model": model, "data": data, "steps": fit.global_step}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="directory of the trace")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    result = run(args.out, args.epochs, args.seed)
    history = load(result["path"]).history
    print(f"trace: {result['path']}")
    print(f"final train accuracy {history['train_acc'][-1]:.3f}, test accuracy {history['test_acc'][-1]:.3f}")


if __name__ == "__main__":
    main()
