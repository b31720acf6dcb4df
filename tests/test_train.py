import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from regutils import loop, models
from regutils import train as train_module
from regutils.data import SHIPPED_SUBSET, DataConfig, load
from regutils.cache import Cache
from regutils.trace import ARRAYS, TraceError
from regutils.checkpoint import load_checkpoint, load_weights
from regutils.loop import evaluate, minibatches
from regutils.train import (RunConfig, add_dropout, fgsm_input, get_run, get_runs, inference_copy, load_for, run_key,
                            train)

REPO = Path(__file__).resolve().parents[1]
SMALL_DIGITS = DataConfig("digits", train_size=200, test_size=60)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def assert_same_record(a, b):
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for column in ("loss", "train_acc", "test_acc", "lr"):
        np.testing.assert_array_equal(a.history[column], b.history[column], err_msg=column)


# --- the per-epoch record


def reference_evaluation(model, x, y):
    """Correctness, label probability and top-two margin of each sample, from a plain loop."""
    model.eval()
    with torch.no_grad():
        logits = model(x).double().numpy()
    correct, prob, margin = [], [], []
    for row, label in zip(logits, y.numpy()):
        correct.append(int(np.argmax(row)) == label)
        prob.append(np.exp(row[label] - row.max()) / np.exp(row - row.max()).sum())
        top = np.sort(row)
        margin.append(top[-1] - top[-2])
    return np.array(correct), np.array(prob), np.array(margin)


def test_epoch_record_equals_reevaluated_checkpoints(tmp_path, monkeypatch):
    save_checkpoint = train_module.save_checkpoint

    def save_and_keep_a_copy(path, state):
        save_checkpoint(path, state)
        shutil.copyfile(path, tmp_path / f"epoch{state['epoch']}.pt")

    monkeypatch.setattr(train_module, "save_checkpoint", save_and_keep_a_copy)
    config = RunConfig(DataConfig("digits", train_size=600, test_size=200), arch="small_cnn", epochs=3, batch_size=64)
    trace = train(config, checkpoint=tmp_path / "run.ckpt.pt", progress=False)
    data = load_for(config.data, config.arch)
    assert (trace.train_prob[0] != trace.train_prob[1]).any()  # the epochs do differ

    for epoch in (1, 2):
        state = load_checkpoint(tmp_path / f"epoch{epoch}.pt")
        assert state["epoch"] == epoch
        model = models.build(config.arch, 1, 10)
        model.load_state_dict(state["model"])
        for split, x, y in (("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)):
            correct, prob, margin = reference_evaluation(model, x, y)
            recorded = getattr(trace, f"{split}_correct")[epoch - 1]
            # only a float tie (top-two logits within rounding) may flip a bit
            assert not (recorded != correct)[margin > 1e-4].any()
            np.testing.assert_allclose(getattr(trace, f"{split}_prob")[epoch - 1], prob, atol=6e-4)
            assert trace.history[f"{split}_acc"][epoch - 1] == recorded.mean()
            np.testing.assert_array_equal(state["rec"][f"{split}_correct"], getattr(trace, f"{split}_correct")[:epoch])


# --- the per-minibatch record


def expected_batch_sizes(n, batch_size):
    full, rest = divmod(n, batch_size)
    if rest == 1 and full:
        return [batch_size] * (full - 1) + [batch_size + 1]
    return [batch_size] * full + ([rest] if rest else [])


def test_batches_merge_a_last_batch_of_one():
    assert [len(c) for c in minibatches(torch.arange(257), 64)] == [64, 64, 64, 65]
    assert [len(c) for c in minibatches(torch.arange(256), 64)] == [64] * 4
    assert [len(c) for c in minibatches(torch.arange(129), 128)] == [129]
    assert [len(c) for c in minibatches(torch.arange(1), 128)] == [1]


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 400), batch_size=st.integers(1, 130))
def test_batches_property(n, batch_size):
    order = torch.randperm(n)
    chunks = minibatches(order, batch_size)
    assert torch.equal(torch.cat(chunks), order)
    assert [len(c) for c in chunks] == expected_batch_sizes(n, batch_size)
    assert n == 1 or batch_size == 1 or min(len(c) for c in chunks) >= 2


def test_batch_record_holds_each_sample_once_per_epoch(monkeypatch):
    batches, train_mode_predictions = [], []
    real_batches, real_build = train_module.minibatches, models.build

    def spy_batches(order, batch_size):
        chunks = real_batches(order, batch_size)
        batches.append([c.clone() for c in chunks])
        return chunks

    def spy_build(*args):
        net = real_build(*args)
        net.register_forward_hook(
            lambda mod, inp, out: train_mode_predictions.append(out.argmax(1)) if mod.training else None)
        return net

    monkeypatch.setattr(train_module, "minibatches", spy_batches)
    monkeypatch.setattr(models, "build", spy_build)
    config = RunConfig(DataConfig("digits", train_size=257, test_size=50), arch="mlp", epochs=3, batch_size=64)
    trace = train(config, progress=False)
    y = load_for(config.data, config.arch).y_train

    assert len(batches) == 3 and len(train_mode_predictions) == 12
    assert trace.batch_step.shape == trace.batch_correct.shape == (3, 257)
    for epoch, chunks in enumerate(batches):
        assert [len(c) for c in chunks] == [64, 64, 64, 65]
        assert torch.equal(torch.cat(chunks).sort().values, torch.arange(257))  # each sample once
        steps = trace.batch_step[epoch]
        np.testing.assert_array_equal(np.unique(steps), np.arange(4 * epoch, 4 * epoch + 4))
        np.testing.assert_array_equal(np.bincount(steps - 4 * epoch), [64, 64, 64, 65])
        for j, idx in enumerate(chunks):
            step = 4 * epoch + j
            np.testing.assert_array_equal(np.flatnonzero(steps == step), np.sort(idx.numpy()))
            np.testing.assert_array_equal(trace.batch_correct[epoch, idx], train_mode_predictions[step] == y[idx])
    assert 0 < trace.batch_correct.mean() < 1


def test_untracked_records_are_empty():
    config = RunConfig(SMALL_DIGITS, arch="mlp", epochs=2, batch_size=50)
    trace = train(config, track_epochs=False, track_batches=False, progress=False)
    assert not trace.train_correct.any() and not trace.batch_correct.any() and (trace.batch_step == -1).all()
    assert trace.history["loss"][-1] < trace.history["loss"][0]


# --- resuming


RESUMABLE = RunConfig(DataConfig("digits", augment=True, train_size=300, test_size=100), arch="mlp",
                      epochs=5, batch_size=32, schedule="cosine", seed=3)

KILLABLE = """
import sys, time, torch
torch.set_num_threads(1)
from regutils import train
from regutils.data import DataConfig, load
from regutils.train import RunConfig
from regutils.cache import Cache
save_checkpoint = train.save_checkpoint
def save_then_pause(path, state):  # a pause after each checkpoint, so the kill lands between epochs too
    save_checkpoint(path, state)
    time.sleep(0.3)
train.save_checkpoint = save_then_pause
train.get_run(eval(sys.argv[2]), cache=Cache(sys.argv[1]), progress=False)
"""


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_trace(tmp_path):
    killed_cache, clean_cache = Cache(tmp_path / "killed"), Cache(tmp_path / "clean")
    checkpoint = killed_cache.checkpoint_path(run_key(RESUMABLE))
    proc = subprocess.Popen([sys.executable, "-c", KILLABLE, str(killed_cache.root), repr(RESUMABLE)], cwd=REPO)
    try:
        deadline = time.monotonic() + 120
        while not (checkpoint.is_file() and load_checkpoint(checkpoint)["epoch"] >= 2):
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no checkpoint of epoch 2 within 120 s"
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    killed_at = load_checkpoint(checkpoint)["epoch"]
    assert 2 <= killed_at < RESUMABLE.epochs and not killed_cache.has(run_key(RESUMABLE))

    resumed = get_run(RESUMABLE, cache=killed_cache, progress=False)
    assert resumed.meta["resumed_from_epoch"] == killed_at
    uninterrupted = get_run(RESUMABLE, cache=clean_cache, progress=False)
    assert uninterrupted.meta["resumed_from_epoch"] == 0
    assert_same_record(resumed, uninterrupted)
    assert not checkpoint.exists() and list(killed_cache.root.glob("*.tmp")) == []


def test_corrupt_checkpoint_is_ignored(tmp_path):
    config = RunConfig(SMALL_DIGITS, arch="mlp", epochs=2, batch_size=50)
    path = tmp_path / "run.ckpt.pt"
    train(replace(config, epochs=1), checkpoint=path, progress=False)
    blob = bytearray(path.read_bytes())
    blob[-100] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(TraceError, match="checksum"):
        load_checkpoint(path)
    with pytest.warns(UserWarning, match="unusable checkpoint"):
        trace = train(config, checkpoint=path, progress=False)
    assert trace.meta["resumed_from_epoch"] == 0
    assert_same_record(trace, train(config, progress=False))


# --- bad input


def write_npz(path, x_train=None, y_train=None, x_test=None, y_test=None, drop=(), **extra):
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (20, 8, 8), dtype=np.uint8), "y_train": np.arange(20) % 10,
              "x_test": rng.integers(0, 256, (10, 8, 8), dtype=np.uint8), "y_test": np.arange(10) % 10}
    given_arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test, **extra}
    arrays.update({k: v for k, v in given_arrays.items() if v is not None})
    np.savez(path, **{k: v for k, v in arrays.items() if k not in drop})
    return str(path)


BAD = {
    "unknown dataset": (lambda p: RunConfig(DataConfig("mnist")), r"dataset='mnist' must be one of digits, cifar10"),
    "npz without path": (lambda p: RunConfig(DataConfig("npz")), "needs path="),
    "npz file missing": (lambda p: RunConfig(DataConfig("npz", path=str(p / "absent.npz"))), "does not exist"),
    "npz keys missing": (lambda p: RunConfig(DataConfig("npz", path=write_npz(p / "a.npz", drop=("y_test",)))),
                         r"missing arrays \['y_test'\]"),
    "image channels": (lambda p: RunConfig(DataConfig("npz", path=write_npz(
        p / "a.npz", x_train=np.zeros((20, 8, 8, 2), np.uint8)))), r"x_train has shape \(20, 8, 8, 2\)"),
    "flat images": (lambda p: RunConfig(DataConfig("npz", path=write_npz(
        p / "a.npz", x_test=np.zeros((10, 64), np.uint8)))), r"x_test has shape \(10, 64\)"),
    "train and test sizes differ": (lambda p: RunConfig(DataConfig("npz", path=write_npz(
        p / "a.npz", x_test=np.zeros((10, 9, 9), np.uint8)))), "differ in shape"),
    "label count": (lambda p: RunConfig(DataConfig("npz", path=write_npz(
        p / "a.npz", y_train=np.arange(19) % 10))), r"y_train has shape \(19,\)"),
    "non-integer labels": (lambda p: RunConfig(DataConfig("npz", path=write_npz(
        p / "a.npz", y_train=np.arange(20) % 10 + 0.0))), "y_train has dtype float64; expected integers"),
    "label out of range": (lambda p: RunConfig(DataConfig("npz", path=write_npz(
        p / "a.npz", y_test=np.arange(10) + 1, classes=np.array(list("abcdefghij"))))),
        r"y_test holds labels outside 0..9 \(min 1, max 10\)"),
    "negative label": (lambda p: RunConfig(DataConfig("npz", path=write_npz(
        p / "a.npz", y_train=np.arange(20) % 10 - 1))), r"y_train holds labels outside .*min -1"),
    "label noise above 1": (lambda p: RunConfig(DataConfig("digits", label_noise=1.5)), "label_noise=1.5"),
    "label noise below 0": (lambda p: RunConfig(DataConfig("digits", label_noise=-0.1)), "label_noise=-0.1"),
    "train size 0": (lambda p: RunConfig(DataConfig("digits", train_size=0)), "train_size=0"),
    "test size negative": (lambda p: RunConfig(DataConfig("digits", test_size=-5)), "test_size=-5"),
    "train size too large": (lambda p: RunConfig(DataConfig("digits", train_size=2000)),
                             "train_size=2000 exceeds the 1347"),
    "test size too large": (lambda p: RunConfig(DataConfig("digits", test_size=451)), "test_size=451 exceeds the 450"),
    "unknown arch": (lambda p: RunConfig(arch="resnet7"), "arch='resnet7' must be one of resnet20"),
    "unknown optimizer": (lambda p: RunConfig(optimizer="rmsprop"), "optimizer='rmsprop' must be one of sgd, adagrad, adamax, adam"),
    "unknown schedule": (lambda p: RunConfig(schedule="step"), "schedule='step' must be one of multistep"),
    "zero epochs": (lambda p: RunConfig(epochs=0), "epochs=0 must be a positive integer"),
    "negative epochs": (lambda p: RunConfig(epochs=-3), "epochs=-3"),
    "fractional epochs": (lambda p: RunConfig(epochs=2.5), "epochs=2.5"),
    "zero batch size": (lambda p: RunConfig(batch_size=0), "batch_size=0"),
    "negative lr": (lambda p: RunConfig(lr=-0.1), "lr=-0.1"),
    "momentum 1": (lambda p: RunConfig(momentum=1.0), "momentum=1.0"),
    "negative weight decay": (lambda p: RunConfig(weight_decay=-1e-4), "weight_decay=-0.0001"),
    "dropout 1": (lambda p: RunConfig(dropout=1.0), r"dropout=1.0 must be a finite number in \[0, 1\)"),
    "negative dropout": (lambda p: RunConfig(dropout=-0.1), "dropout=-0.1"),
    "negative adversarial eps": (lambda p: RunConfig(adversarial_eps=-0.1),
                                 "adversarial_eps=-0.1 must be a non-negative finite number"),
    "nan adversarial eps": (lambda p: RunConfig(adversarial_eps=float("nan")), "adversarial_eps=nan"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_raises_before_training(case, tmp_path, monkeypatch):
    build = mock.Mock(side_effect=AssertionError("a model was built"))
    monkeypatch.setattr(models, "build", build)
    make_config, message = BAD[case]
    config = make_config(tmp_path)
    with pytest.raises(ValueError, match=message):
        get_run(config, cache=Cache(tmp_path / "cache"), progress=False)
    with pytest.raises(ValueError, match=message):
        train(config, progress=False)
    build.assert_not_called()
    assert not list((tmp_path / "cache").glob("*.npz"))


def test_runs_must_be_positive():
    with pytest.raises(ValueError, match="runs=0"):
        get_runs(RunConfig(), runs=0)


# --- the cache


def test_cache_hit_trains_nothing(tmp_path, monkeypatch):
    config = RunConfig(SMALL_DIGITS, arch="mlp", epochs=2, batch_size=50)
    cache = Cache(tmp_path)
    first = get_run(config, cache=cache, progress=False)
    assert cache.keys() == [run_key(config)] and not cache.checkpoint_path(run_key(config)).exists()

    trained = []

    def refuse(configs, *args, **kwargs):
        trained.append(configs[0].seed)
        raise AssertionError(f"trained seed {configs[0].seed}")

    monkeypatch.setattr(train_module, "train_runs", refuse)
    assert_same_record(get_run(config, cache=cache, progress=False), first)
    assert run_key(replace(config, seed=1)) != run_key(config)
    with pytest.raises(AssertionError, match="trained seed 1"):
        get_runs(config, runs=2, cache=cache, progress=False)
    assert trained == [1]  # seed 0 came from the cache


def test_get_runs_stacks_seeds(tmp_path):
    config = RunConfig(SMALL_DIGITS, arch="mlp", epochs=2, batch_size=50, seed=4)
    runs = get_runs(config, runs=2, cache=Cache(tmp_path), progress=False)
    assert runs.train_correct.shape == (2, 2, 200) and runs.test_prob.shape == (2, 2, 60)
    assert [m["config"]["seed"] for m in runs.meta["runs"]] == [4, 5]
    assert_same_record(runs.run(1), get_run(replace(config, seed=5), cache=Cache(tmp_path), progress=False))
    assert not np.array_equal(runs.train_prob[0], runs.train_prob[1])


def test_key_holds_the_data_not_its_location(tmp_path):
    same_a, same_b = write_npz(tmp_path / "a.npz"), write_npz(tmp_path / "b.npz")
    other = write_npz(tmp_path / "c.npz", y_train=(np.arange(20) + 1) % 10)
    key = run_key(RunConfig(DataConfig("npz", path=same_a), arch="mlp"))
    assert key == run_key(RunConfig(DataConfig("npz", path=same_b), arch="mlp"))
    assert key != run_key(RunConfig(DataConfig("npz", path=other), arch="mlp"))
    assert key != run_key(RunConfig(DataConfig("npz", path=same_a), arch="mlp", lr=0.05))


def test_regularizers_enter_the_key_only_when_on():
    config = RunConfig(SMALL_DIGITS, arch="mlp")
    assert not {"dropout", "adversarial_eps"} & set(config.key_dict())  # the keys of earlier runs stay valid
    for field, value in (("dropout", 0.5), ("adversarial_eps", 0.1)):
        changed = replace(config, **{field: value})
        assert changed.key_dict()[field] == value
        assert {k: v for k, v in changed.key_dict().items() if k != field} == config.key_dict()
        assert run_key(changed) != run_key(config)
    assert run_key(replace(config, dropout=0.0, adversarial_eps=0.0)) == run_key(config)


# --- regularizers


def test_dropout_acts_on_the_last_linear_layer_in_train_mode_only():
    torch.manual_seed(0)
    model = models.build("small_cnn", 1, 10).eval()
    x = torch.randn(8, 1, 8, 8)
    with torch.no_grad():
        clean = model(x)
        handle = add_dropout(model, 0.5)
        inputs = []  # what the last layer sees: pre-hooks run in order, so after the dropout
        model.linear.register_forward_pre_hook(lambda layer, args: inputs.append(args[0].clone()))
        assert torch.equal(model(x), clean)  # eval mode: no dropout
        model.train()
        a, b = model(x), model(x)
    assert not torch.equal(a, b) and not torch.allclose(a, clean)
    features, dropped = inputs[0], inputs[1] == 0
    assert 0.3 < dropped[features != 0].float().mean() < 0.7  # about half of the non-zero features
    torch.testing.assert_close(inputs[1][~dropped], 2 * features[~dropped])  # the kept ones scaled by 1 / (1 - p)
    handle.remove()
    with torch.no_grad():
        assert torch.equal(model(x), clean)  # train mode without the hook: no batch statistics in small_cnn


def test_dropout_needs_a_classifier_layer():
    with pytest.raises(ValueError, match="nn.Linear nor a 1x1"):
        add_dropout(torch.nn.Conv2d(1, 2, 3), 0.5)


def test_dropout_reaches_a_conv_classifier():
    torch.manual_seed(0)
    model = models.build("nin", 3, 10)
    x = torch.randn(4, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        clean = model(x)
    add_dropout(model, 0.5)
    with torch.no_grad():
        assert torch.equal(model(x), clean)  # eval mode: no dropout
        model.train()
        assert not torch.allclose(model(x), model(x))  # train mode: fresh masks on every pass


def test_fgsm_input_is_the_signed_gradient_step():
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 3)
    x, y = torch.randn(6, 5, requires_grad=True), torch.randint(0, 3, (6,))
    loss = torch.nn.functional.cross_entropy(model(x), y)
    xa = fgsm_input(x, loss, 0.25)
    assert not xa.requires_grad
    assert (xa - x).abs().max().item() == pytest.approx(0.25)  # on the L-inf sphere of radius eps
    (grad,) = torch.autograd.grad(loss, x, retain_graph=True)  # the graph of the clean loss is still there
    torch.testing.assert_close(xa - x.detach(), 0.25 * grad.sign())
    with torch.no_grad():
        assert torch.nn.functional.cross_entropy(model(xa), y) > loss  # the step raises the loss


def test_regularized_training_changes_the_weights(tmp_path):
    config = RunConfig(SMALL_DIGITS, arch="small_cnn", epochs=1, batch_size=50, optimizer="adam")
    weights = {}
    for name, changes in (("plain", {}), ("dropout", dict(dropout=0.5)), ("adversarial", dict(adversarial_eps=0.1))):
        trace = train(replace(config, **changes), weights=tmp_path / f"{name}.pt", progress=False)
        weights[name] = load_weights(tmp_path / f"{name}.pt")
        assert trace.meta["config"].get("dropout", 0.0) == changes.get("dropout", 0.0)
    for name in ("dropout", "adversarial"):
        assert not torch.equal(weights[name]["linear.weight"], weights["plain"]["linear.weight"]), name
    again = train(replace(config, adversarial_eps=0.1), weights=tmp_path / "again.pt", progress=False)
    assert torch.equal(load_weights(tmp_path / "again.pt")["linear.weight"],
                       weights["adversarial"]["linear.weight"])  # still deterministic for a seed
    assert 0 < again.batch_correct.mean() <= 1


# --- evaluation


def plain_evaluation(model, x, y, batch_size=1000):
    """The straightforward eval pass: batches in order, full softmax."""
    model.eval()
    correct, prob = [], []
    with torch.no_grad():
        for start in range(0, len(y), batch_size):
            logits = model(x[start:start + batch_size])
            yb = y[start:start + batch_size]
            correct.append(logits.argmax(1) == yb)
            prob.append(logits.softmax(1).gather(1, yb[:, None]).squeeze(1))
    return torch.cat(correct).numpy(), torch.cat(prob).numpy()


@pytest.mark.parametrize("arch", ["small_cnn", "mlp", "resnet20"])
def test_fast_evaluation_gives_the_plain_correctness_bits(arch):
    torch.manual_seed(0)
    data = load(DataConfig("digits", train_size=200, test_size=50), image_size=min(models.input_size(arch), 16))
    model = models.build(arch, 1, 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    for idx in minibatches(torch.randperm(200), 40):  # a few steps: BatchNorm statistics and confident logits
        loss = torch.nn.functional.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    expected_correct, expected_prob = plain_evaluation(model, data.x_train, data.y_train)
    assert 0 < expected_correct.mean() < 1
    for net, channels_last in ((model, False), (inference_copy(model), True)):
        correct, prob = evaluate(net, data.x_train, data.y_train, batch_size=64, channels_last=channels_last)
        assert correct.dtype == torch.bool and prob.dtype == torch.float16
        np.testing.assert_array_equal(correct.numpy(), expected_correct)
        np.testing.assert_allclose(prob.numpy(), expected_prob, atol=6e-4)


# BatchNorm layers left after folding. Every one follows a conv except in the Wide ResNet's pre-activation
# blocks: there the second BatchNorm of each of the 6 blocks folds, and the first block's first folds into
# the stem conv (its only reader, as that block's shortcut reads the pre-activated input).
UNFOLDED = {"resnet20": lambda n: 0, "mobilenet": lambda n: 0, "nin": lambda n: 0, "wrn16_8": lambda n: n - 7}


@pytest.mark.parametrize("arch", list(UNFOLDED))
def test_inference_copy_folds_batchnorm_and_keeps_the_function(arch):
    torch.manual_seed(0)
    model = models.build(arch, 3, 10)
    batchnorms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for bn in batchnorms:  # non-trivial statistics
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    net = inference_copy(model)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()) == UNFOLDED[arch](len(batchnorms))
    x = torch.randn(4, 3, 8, 8)
    with torch.no_grad():
        np.testing.assert_allclose(net(x).numpy(), model.eval()(x).numpy(), rtol=1e-4, atol=1e-4)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())  # the original is untouched


# --- a real run


@pytest.mark.slow
def test_real_run_on_the_cifar10_subset(tmp_path):
    config = RunConfig(DataConfig("cifar10-subset", train_size=500, test_size=200), arch="lenet",
                       epochs=5, batch_size=25, optimizer="adam", schedule="constant")
    trace = get_run(config, cache=Cache(tmp_path), progress=False)
    data = load_for(config.data, config.arch)
    assert trace.train_correct.shape == trace.batch_correct.shape == (5, 500)
    assert trace.test_correct.shape == trace.test_prob.shape == (5, 200)
    with np.load(SHIPPED_SUBSET) as z:
        for split, size in (("train", 500), ("test", 200)):
            index, source_index = getattr(trace, f"index_{split}"), z[f"index_{split}"]
            row_of = {i: row for row, i in enumerate(source_index)}
            rows = [row_of[i] for i in index]  # KeyError: an index the file does not hold
            assert len(set(rows)) == size
            np.testing.assert_array_equal(getattr(trace, f"y_{split}"), z[f"y_{split}"][rows])
            np.testing.assert_array_equal(getattr(data, f"images_{split}"), z[f"x_{split}"][rows])
            share = np.bincount(z[f"y_{split}"], minlength=10) * size / len(source_index)
            assert np.abs(np.bincount(getattr(trace, f"y_{split}"), minlength=10) - share).max() <= 1
        assert trace.meta["classes"] == list(z["classes"])
    assert data.x_train.shape == (500, 3, 32, 32) and data.augment
    assert trace.history["loss"][-1] < trace.history["loss"][0]
    assert trace.history["test_acc"][-1] > 0.15  # chance is 0.1; seeds 0-4 reach 0.265-0.31


# --- the one-cycle schedule


def one_cycle_reference(peak, epochs):
    """The stated curve by hand: steps 0..epochs of a one-cycle over epochs + 1 steps, the rate of each epoch."""
    total, top = epochs + 1, 0.3 * (epochs + 1) - 1  # OneCycleLR's phase boundary (pct_start 0.3)
    start, floor = peak / 25, peak / 25 / 1e4

    def cos(a, b, frac):  # from a to b along half a cosine
        return b + (a - b) / 2 * (1 + np.cos(np.pi * frac))

    return np.array([cos(start, peak, e / top) if e <= top else cos(peak, floor, (e - top) / (total - 1 - top))
                     for e in range(epochs)])


@pytest.mark.parametrize("epochs", [1, 6, 15])
def test_one_cycle_rate_follows_the_stated_curve(epochs):
    config = RunConfig(SMALL_DIGITS, arch="mlp", epochs=epochs, lr=0.05, schedule="onecycle", nesterov=True)
    opt = loop.make_optimizer(config, [torch.zeros(1, requires_grad=True)])
    sched = loop.make_scheduler(config, opt)
    rates = []
    for _ in range(epochs):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    np.testing.assert_allclose(rates, one_cycle_reference(0.05, epochs), rtol=1e-9)
    assert opt.param_groups[0]["nesterov"] and opt.param_groups[0]["momentum"] == 0.9  # no momentum cycling
    if epochs >= 6:
        assert rates[0] == pytest.approx(0.05 / 25) and max(rates) <= 0.05 and max(rates) > 0.9 * 0.05
        peak = int(np.argmax(rates))
        assert np.all(np.diff(rates[:peak + 1]) > 0) and np.all(np.diff(rates[peak:]) < 0)
        assert rates[-1] > 0.05 / 25e4  # the last epoch trains above the floor


def test_one_cycle_run_records_its_rates_and_resumes(tmp_path):
    config = RunConfig(SMALL_DIGITS, arch="mlp", epochs=4, batch_size=50, lr=0.05, schedule="onecycle", nesterov=True)
    whole = train(config, progress=False)
    np.testing.assert_allclose(whole.history["lr"], one_cycle_reference(0.05, 4), rtol=1e-6)
    saves, save = [], train_module.save_checkpoint

    def save_twice_then_stop(path, state):  # the run is stopped in its third epoch
        if len(saves) == 2:
            raise KeyboardInterrupt
        saves.append(state["epoch"])
        save(path, state)

    checkpoint = tmp_path / "run.ckpt.pt"
    with mock.patch.object(train_module, "save_checkpoint", save_twice_then_stop), pytest.raises(KeyboardInterrupt):
        train(config, checkpoint=checkpoint, progress=False)
    assert saves == [1, 2]
    resumed = train(config, checkpoint=checkpoint, progress=False)
    assert resumed.meta["resumed_from_epoch"] == 2
    assert_same_record(resumed, whole)


def test_recording_scores_adds_margins_losses_and_el2n_and_changes_nothing_else():
    from regutils.trace import SCORE_ARRAYS

    config = RunConfig(SMALL_DIGITS, arch="mlp", epochs=2, batch_size=64)
    plain, scored = (train(replace(config, record_scores=flag), progress=False) for flag in (False, True))
    assert not plain.has_scores and plain.scores() == {} and scored.has_scores
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(plain, name), getattr(scored, name), err_msg=name)
    for column in ("loss", "train_acc", "test_acc", "lr"):
        np.testing.assert_array_equal(plain.history[column], scored.history[column])
    for name in SCORE_ARRAYS:
        n = len(scored.y_train) if name.startswith("train") else len(scored.y_test)
        assert getattr(scored, name).shape == (2, n) and getattr(scored, name).dtype == np.float16
    np.testing.assert_array_equal(scored.train_margin > 0, scored.train_correct)
    np.testing.assert_allclose(np.exp(-scored.test_loss.astype(float)), scored.test_prob.astype(float), atol=2e-3)
    # the flag is part of the key only when on: runs cached before it keep their keys
    assert "record_scores" not in config.key_dict() and run_key(config) != run_key(replace(config, record_scores=True))


def test_a_run_recording_scores_resumes_to_the_same_scores(tmp_path):
    from regutils.trace import SCORE_ARRAYS

    config = RunConfig(SMALL_DIGITS, arch="mlp", epochs=3, batch_size=64, record_scores=True)
    path = tmp_path / "run.ckpt.pt"
    train(config, checkpoint=path, stop_after=1, progress=False)  # stops after epoch 1, its checkpoint kept
    resumed = train(config, checkpoint=path, progress=False)
    assert resumed.meta["resumed_from_epoch"] == 1
    uninterrupted = train(config, progress=False)
    assert_same_record(resumed, uninterrupted)
    for name in SCORE_ARRAYS:
        np.testing.assert_array_equal(getattr(resumed, name), getattr(uninterrupted, name), err_msg=name)
