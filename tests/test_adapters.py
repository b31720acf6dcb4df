"""regutils.lightning and regutils.huggingface: the examples record valid traces, equal to a hand-written loop's.

The frameworks are optional extras (``make test`` installs them); without one its tests are skipped.
"""
import copy
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from regutils.recorder import Recorder
from regutils.trace import ARRAYS, load

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
EPOCHS = 3
RECORDED = ARRAYS[:6]  # per epoch and sample: train/test correct and prob, batch_correct, batch_step


def example(name: str, framework: str):
    """The script examples/<name>.py as a module (examples/ is no package); skipped without its framework."""
    pytest.importorskip(framework)
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def single_threaded(run, *args):
    """``run(*args)`` on one torch thread: module-scoped fixtures run outside the one_thread fixture."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run(*args)
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def lightning_example():
    return example("lightning_digits", "lightning")


@pytest.fixture(scope="module")
def huggingface_example():
    return example("huggingface_digits", "transformers")


@pytest.fixture(scope="module")
def lightning_run(lightning_example, tmp_path_factory):
    return single_threaded(lightning_example.run, tmp_path_factory.mktemp("lightning"), EPOCHS)


@pytest.fixture(scope="module")
def huggingface_run(huggingface_example, tmp_path_factory):
    return single_threaded(huggingface_example.run, tmp_path_factory.mktemp("huggingface"), EPOCHS)


def step_sizes(n: int, batch: int, epochs: int) -> list[int]:
    """Samples per optimizer step: every sample once per epoch, the epoch's last batch the rest."""
    full, rest = divmod(n, batch)
    return ([batch] * full + ([rest] if rest else [])) * epochs


def check_trace(result: dict, forward, batch: int) -> None:
    """The trace of an example run against its data, its optimizer steps, and an eval pass of its final model."""
    trace, data = load(result["path"]), result["data"]
    n, m = len(data["y_train"]), len(data["y_test"])
    assert trace.train_correct.shape == trace.batch_step.shape == (EPOCHS, n) and trace.test_correct.shape == (EPOCHS, m)
    for split in ("train", "test"):
        np.testing.assert_array_equal(getattr(trace, f"y_{split}"), data[f"y_{split}"].numpy())
        np.testing.assert_array_equal(getattr(trace, f"index_{split}"), data[f"index_{split}"])
        model = result["model"].eval()
        with torch.no_grad():  # the recorder's eval batches: no argmax can move with the batch shape
            logits = torch.cat([forward(model, x) for x in data[f"x_{split}"].split(512)])
        np.testing.assert_array_equal(getattr(trace, f"{split}_correct")[-1],
                                      (logits.argmax(1) == data[f"y_{split}"]).numpy(), err_msg=split)
    # every step of the optimizer holds one minibatch, every sample is in one step per epoch
    assert result["steps"] == len(step_sizes(n, batch, EPOCHS)) == trace.meta["recorder"]["steps"]
    assert (trace.batch_step >= 0).all()
    assert np.bincount(trace.batch_step.ravel()).tolist() == step_sizes(n, batch, EPOCHS)
    per_epoch = result["steps"] // EPOCHS
    assert trace.batch_step.min(1).tolist() == [t * per_epoch for t in range(EPOCHS)]
    assert 0.5 < trace.history["test_acc"][-1] and trace.history["loss"][-1] < trace.history["loss"][0]


def assert_same_record(adapter, hand) -> None:
    for name in RECORDED:
        np.testing.assert_array_equal(getattr(adapter, name), getattr(hand, name), err_msg=name)
    np.testing.assert_array_equal(adapter.history["lr"], hand.history["lr"])


def hand_recorder(data: dict, optimizer) -> Recorder:
    return Recorder(n_train=len(data["y_train"]), n_test=len(data["y_test"]), y_train=data["y_train"],
                    y_test=data["y_test"], optimizer=optimizer)


@pytest.mark.parametrize("name, framework", [("lightning_digits", "lightning"),
                                             ("huggingface_digits", "transformers")])
def test_example_scripts_print_their_trace_and_accuracy(name, framework, tmp_path, capsys):
    example(name, framework).main(["--out", str(tmp_path / "runs"), "--epochs", "1"])
    lines = capsys.readouterr().out.splitlines()
    path = tmp_path / "runs" / f"{name}.npz"
    assert f"trace: {path}" in lines
    history = load(path).history
    assert (f"final train accuracy {history['train_acc'][-1]:.3f}, test accuracy {history['test_acc'][-1]:.3f}"
            in lines)


# ---- Lightning

def test_lightning_example_records_a_valid_trace(lightning_example, lightning_run):
    check_trace(lightning_run, lambda model, x: model(x), lightning_example.BATCH)
    np.testing.assert_array_equal(load(lightning_run["path"]).history["lr"], lightning_example.LR)


def test_lightning_callback_records_what_a_hand_written_loop_records(lightning_example, lightning_run):
    """The example's seeded model, data, batches and optimizer, trained by a plain loop that calls the Recorder."""
    ex, data = lightning_example, lightning_run["data"]
    net = ex.mlp(ex.SEED)
    opt = torch.optim.SGD(net.parameters(), lr=ex.LR, momentum=ex.MOMENTUM)
    rec = hand_recorder(data, opt)
    batches = ex.loader(data, ex.SEED)  # the same seeded shuffling as the Trainer's loader
    for _ in range(EPOCHS):
        for idx, x, y in batches:
            net.train()
            logits = net(x)
            rec.on_batch(idx=idx, logits=logits, y=y)
            opt.zero_grad()
            F.cross_entropy(logits, y).backward()
            opt.step()
        rec.on_epoch_end(net, data["x_train"], data["x_test"], batch_size=ex.EVAL_BATCH)
    assert_same_record(load(lightning_run["path"]), rec.trace())


def test_lightning_gradient_accumulation_records_one_minibatch_per_optimizer_step(lightning_example, tmp_path):
    ex = lightning_example
    data = ex.digits()
    callback = ex.RecorderCallback(data["x_train"], data["y_train"], data["x_test"], data["y_test"])
    fit = ex.trainer(tmp_path, 1, callbacks=[callback], accumulate_grad_batches=3)
    fit.fit(ex.DigitsModule(ex.mlp()), ex.loader(data))
    trace = callback.recorder.trace()
    assert callback.recorder.step == fit.global_step == 8  # 22 batches: 7 steps of 3, the last of 1
    assert np.bincount(trace.batch_step[0]).tolist() == [3 * ex.BATCH] * 7 + [len(data["y_train"]) - 21 * ex.BATCH]


def test_lightning_step_output_without_logits_and_idx_says_what_is_missing(lightning_example, tmp_path):
    ex = lightning_example

    class LossOnly(ex.DigitsModule):
        def training_step(self, batch, batch_idx):
            return super().training_step(batch, batch_idx)["loss"]

    data = ex.digits()
    callback = ex.RecorderCallback(data["x_train"], data["y_train"], data["x_test"], data["y_test"])
    with pytest.raises(ValueError, match=r"lacks 'logits' and 'idx' \(it holds \['loss'\]\)"):
        ex.trainer(tmp_path, 1, callbacks=[callback]).fit(LossOnly(ex.mlp()), ex.loader(data))
    with pytest.raises(ValueError, match=r"x_test must be a tensor with one row per label of y_test \(450\)"):
        ex.RecorderCallback(data["x_train"], data["y_train"], data["x_test"][:-1], data["y_test"])


# ---- Hugging Face

def test_huggingface_example_records_a_valid_trace(huggingface_example, huggingface_run):
    ex = huggingface_example
    check_trace(huggingface_run, lambda model, x: model(pixel_values=x)["logits"], ex.BATCH)
    # the rate each epoch's first step used: the Trainer's linear decay, read before the scheduler steps
    total, per_epoch = huggingface_run["steps"], huggingface_run["steps"] // EPOCHS
    np.testing.assert_allclose(load(huggingface_run["path"]).history["lr"],
                               ex.LR * (1 - np.arange(EPOCHS) * per_epoch / total), rtol=1e-12)


def test_huggingface_callback_records_what_a_hand_written_loop_records(huggingface_example, tmp_path):
    """The example's seeded model and data under SGD, the Trainer's batch order replayed by a plain loop.

    The Trainer shuffles with a sampler of its own; a collator notes the order, which the plain loop replays.
    """
    from transformers import Trainer, default_data_collator

    ex = huggingface_example
    data = ex.digits()
    train_set, test_set = ex.Digits(data["x_train"], data["y_train"]), ex.Digits(data["x_test"], data["y_test"])
    order = []

    def collate(items):
        order.append(torch.tensor([item["idx"] for item in items]))
        return default_data_collator(items)

    model = ex.DigitsMLP()
    start = copy.deepcopy(model.state_dict())
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    callback = ex.RecorderCallback(train_set, test_set, data["y_train"], data["y_test"])
    args = ex.arguments(tmp_path, EPOCHS, max_grad_norm=0.0)  # no clipping: plain SGD steps
    Trainer(model, args, train_dataset=train_set, data_collator=collate, callbacks=[callback],
            optimizers=(opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0))).train()

    net = ex.DigitsMLP()
    net.load_state_dict(start)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    rec = hand_recorder(data, opt)
    per_epoch = len(order) // EPOCHS
    assert per_epoch * EPOCHS == len(order) == callback.recorder.step
    for epoch in range(EPOCHS):
        for idx in order[epoch * per_epoch:(epoch + 1) * per_epoch]:
            net.train()
            out = net(pixel_values=data["x_train"][idx], labels=data["y_train"][idx])
            rec.on_batch(idx=idx, logits=out["logits"], y=data["y_train"][idx])
            opt.zero_grad()
            out["loss"].backward()
            opt.step()
        rec.on_epoch_end(net.net, data["x_train"], data["x_test"], batch_size=args.per_device_eval_batch_size)
    assert_same_record(callback.recorder.trace(), rec.trace())


def test_huggingface_gradient_accumulation_records_one_minibatch_per_optimizer_step(huggingface_example, tmp_path):
    from transformers import Trainer

    ex = huggingface_example
    data = ex.digits()
    train_set, test_set = ex.Digits(data["x_train"], data["y_train"]), ex.Digits(data["x_test"], data["y_test"])
    callback = ex.RecorderCallback(train_set, test_set, data["y_train"], data["y_test"])
    trainer = Trainer(ex.DigitsMLP(), ex.arguments(tmp_path, 1, gradient_accumulation_steps=3),
                      train_dataset=train_set, callbacks=[callback])
    trainer.train()
    assert callback.recorder.step == trainer.state.global_step == 8  # 22 batches: 7 steps of 3, the last of 1
    counts = np.bincount(callback.recorder.trace().batch_step[0]).tolist()
    assert counts == [3 * ex.BATCH] * 7 + [len(data["y_train"]) - 21 * ex.BATCH]


def test_huggingface_missing_idx_or_logits_say_what_is_missing(huggingface_example, tmp_path):
    from transformers import Trainer

    ex = huggingface_example
    data = ex.digits()
    train_set, test_set = ex.Digits(data["x_train"], data["y_train"]), ex.Digits(data["x_test"], data["y_test"])

    class TupleOutput(ex.DigitsMLP):
        def forward(self, pixel_values, labels=None):
            out = super().forward(pixel_values, labels)
            return out["loss"], out["logits"]

    cases = [(ex.DigitsMLP(), {"remove_unused_columns": True}, r"no 'idx'.*remove_unused_columns=False"),
             (TupleOutput(), {}, r"dict or ModelOutput with 'logits' \(B, C\).*got tuple")]
    for model, overrides, message in cases:
        callback = ex.RecorderCallback(train_set, test_set, data["y_train"], data["y_test"])
        args = ex.arguments(tmp_path, 1, **overrides)
        with pytest.raises(ValueError, match=message):
            Trainer(model, args, train_dataset=train_set, callbacks=[callback]).train()
