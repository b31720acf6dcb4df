"""A small MLP trained on scikit-learn's digits with the Hugging Face Trainer, every sample recorded by regutils.

    pip install -e ".[huggingface]"
    python examples/huggingface_digits.py --out runs/            # writes runs/huggingface_digits.npz
    python examples/huggingface_digits.py --out runs/ --epochs 5

Prints the trace's path and the final train and test accuracy of the recorded eval pass. The
trace loads with ``regutils.trace.load``. Data: the 1,797 8x8 digits split 1,347 / 450 with a fixed
seed; model: 64-128-10 MLP returning ``{"loss", "logits"}`` like the library's classification models,
trained by the Trainer's default optimizer (AdamW, linear decay), batches of 64; seconds on one CPU core.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from transformers import Trainer, TrainingArguments

from regutils.huggingface import RecorderCallback
from regutils.trace import load

SEED, BATCH, LR, EVAL_BATCH = 0, 64, 3e-3, 512


def digits(seed: int = SEED) -> dict:
    """x_train (N, 64) float32 in [0, 1], y_train (N,), x_test (M, 64), y_test (M,), and each sample's row in
    ``load_digits()`` (index_train, index_test): a stratified 75 / 25 split."""
    d = load_digits()
    rows_train, rows_test = train_test_split(np.arange(len(d.target)), test_size=0.25, random_state=seed,
                                             stratify=d.target)
    x, y = torch.tensor(d.data / 16, dtype=torch.float32), torch.tensor(d.target)
    return {"x_train": x[rows_train], "y_train": y[rows_train], "x_test": x[rows_test], "y_test": y[rows_test],
            "index_train": rows_train, "index_test": rows_test}


class Digits(torch.utils.data.Dataset):
    """Items {"pixel_values": (64,), "labels": int, "idx": position}: "idx" is what the recorder needs."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict:
        return {"pixel_values": self.x[i], "labels": self.y[i], "idx": i}


class DigitsMLP(torch.nn.Module):
    """64 -> 128 -> 10; the same weights for the same seed. Returns {"loss", "logits"} as the Trainer expects."""

    def __init__(self, seed: int = SEED):
        super().__init__()
        torch.manual_seed(seed)
        self.net = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
        logits = self.net(pixel_values)
        return {"logits": logits} if labels is None else {"loss": F.cross_entropy(logits, labels), "logits": logits}


def arguments(out: Path, epochs: int, seed: int = SEED, **kwargs) -> TrainingArguments:
    """Quiet single-CPU arguments: no checkpoint, log or report; "idx" kept in the batches. ``kwargs`` override."""
    defaults = dict(output_dir=str(out), num_train_epochs=epochs, per_device_train_batch_size=BATCH,
                    per_device_eval_batch_size=EVAL_BATCH, learning_rate=LR, seed=seed, use_cpu=True,
                    remove_unused_columns=False, save_strategy="no", logging_strategy="no", report_to="none",
                    disable_tqdm=True)
    return TrainingArguments(**{**defaults, **kwargs})


def run(out: str | Path, epochs: int = 3, seed: int = SEED) -> dict:
    """Train and record; returns the trace's ``path``, the trained ``model``, the ``data`` and the optimizer ``steps``."""
    data = digits(seed)
    train_set, test_set = Digits(data["x_train"], data["y_train"]), Digits(data["x_test"], data["y_test"])
    model = DigitsMLP(seed)
    path = Path(out) / "huggingface_digits.npz"
    callback = RecorderCallback(train_set, test_set, data["y_train"], data["y_test"], path=path,
                                meta={"example": "huggingface_digits", "seed": seed},
                                index_train=data["index_train"], index_test=data["index_test"])
    trainer = Trainer(model, arguments(Path(out), epochs, seed), train_dataset=train_set, callbacks=[callback])
    trainer.train()
    return {"path": path, "model": model, "data": data, "steps": trainer.state.global_step}


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
