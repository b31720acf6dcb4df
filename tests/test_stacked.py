"""Stacked seeds: one vmap-ed model for many runs gives the single runs' traces, resumes and caches like them."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from regutils import models
from regutils import train as train_module
from regutils.data import DataConfig
from regutils.loop import load_for
from regutils.stacked import Stack, check_stackable
from regutils.cache import Cache
from regutils.trace import ARRAYS
from regutils.train import RunConfig, get_run, get_runs, get_traces, seeds_of, train, train_runs, trained_model

SMALL_DIGITS = DataConfig("digits", train_size=200, test_size=60)
CONFIG = RunConfig(SMALL_DIGITS, arch="small_cnn", epochs=3, batch_size=32, lr=0.01)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def tiny_colour_npz(path, n=96, m=32):
    """32x32 RGB images, so the CIFAR augmentation (crop and flip) is on."""
    rng = np.random.default_rng(1)
    np.savez(path, x_train=rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), y_train=np.arange(n) % 10,
             x_test=rng.integers(0, 256, (m, 32, 32, 3), dtype=np.uint8), y_test=np.arange(m) % 10)
    return str(path)


def assert_like_single_runs(stacked_traces, single_traces):
    for a, b in zip(stacked_traces, single_traces, strict=True):
        for name in ARRAYS:
            x, y = getattr(a, name), getattr(b, name)
            assert x.dtype == y.dtype and x.shape == y.shape, name
        # the same samples in the same minibatches at the same steps: order and augmentation draws agree
        np.testing.assert_array_equal(a.batch_step, b.batch_step)
        for name in ("y_train", "y_test", "index_train", "index_test", "noisy_train"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        # the same function up to float rounding (a stacked convolution is a grouped one), which
        # training amplifies: close, not equal
        for name in ("train_correct", "test_correct", "batch_correct"):
            assert (getattr(a, name) == getattr(b, name)).mean() >= 0.97, name
        assert np.abs(a.train_prob.astype(float) - b.train_prob.astype(float)).mean() < 0.01
        assert set(a.history) == set(b.history) and set(a.meta) == set(b.meta) | {"stacked_runs"}
        assert a.meta["config"] == b.meta["config"] and a.meta["stacked_runs"] == len(stacked_traces)


def test_stacked_runs_are_the_single_runs():
    configs = seeds_of(CONFIG, 3)
    assert_like_single_runs(train_runs(configs, progress=False), [train(c, progress=False) for c in configs])


def test_stacked_runs_with_augmentation_are_the_single_runs(tmp_path):
    config = RunConfig(DataConfig("npz", path=tiny_colour_npz(tmp_path / "c.npz")), arch="lenet", epochs=2,
                       batch_size=32, lr=0.01)
    configs = seeds_of(config, 2)
    assert_like_single_runs(train_runs(configs, progress=False), [train(c, progress=False) for c in configs])



@pytest.mark.slow
def test_stacked_one_cycle_runs_are_the_single_runs(tmp_path):
    config = RunConfig(DataConfig("npz", path=tiny_colour_npz(tmp_path / "c.npz")), arch="convnet3", epochs=3,
                       batch_size=32, lr=0.05, nesterov=True, schedule="onecycle")
    configs = seeds_of(config, 2)
    stacked = train_runs(configs, progress=False)
    assert_like_single_runs(stacked, [train(c, progress=False) for c in configs])
    np.testing.assert_array_equal(stacked[0].history["lr"], train(configs[0], progress=False).history["lr"])

# wrn28_10 and densenet_bc_160_24 share the code of smaller ones; get_runs never stacks a stochastic model
@pytest.mark.parametrize("arch", [a for a in models.names()
                                  if a not in ("wrn28_10", "densenet_bc_160_24") and not models.stochastic(a)])
@pytest.mark.slow
def test_every_architecture_stacks(arch):
    """Train-mode logits and BatchNorm statistics of the stack equal those of each model alone."""
    side = models.input_size(arch)
    nets = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        nets.append(models.build(arch, 3, 10))
    stack = Stack(nets)
    x = torch.randn(2, 4, 3, side, side, generator=torch.Generator().manual_seed(0))
    logits = stack.train_logits(x)
    for r, net in enumerate(nets):
        torch.testing.assert_close(logits[r], net.train()(x[r]), rtol=1e-4, atol=1e-4)
        for name, buffer in net.named_buffers():
            torch.testing.assert_close(stack.buffers[name][r], buffer, rtol=1e-4, atol=1e-5)


def test_killed_stack_resumes_to_the_same_traces(tmp_path, monkeypatch):
    configs = seeds_of(replace(CONFIG, epochs=4), 2)
    clean = train_runs(configs, progress=False)

    def die_after_epoch_2(epoch):
        if epoch == 2:
            raise KeyboardInterrupt  # killed right after the checkpoints of epoch 2

    ckpts = [tmp_path / f"run{r}.ckpt.pt" for r in range(len(configs))]
    with pytest.raises(KeyboardInterrupt):
        train_runs(configs, checkpoints=ckpts, progress=False, on_epoch=die_after_epoch_2)
    resumed = train_runs(configs, checkpoints=ckpts, progress=False)
    for a, b in zip(resumed, clean):
        assert a.meta["resumed_from_epoch"] == 2
        for name in ARRAYS:
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        np.testing.assert_array_equal(a.history["loss"], b.history["loss"])


def test_corrupt_stack_checkpoint_is_ignored(tmp_path):
    configs = seeds_of(replace(CONFIG, epochs=2), 2)
    ckpts = [tmp_path / "a.ckpt.pt", tmp_path / "b.ckpt.pt"]
    for ckpt in ckpts:
        ckpt.write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="ignoring unusable checkpoint"):
        traces = train_runs(configs, checkpoints=ckpts, progress=False)
    clean = train_runs(configs, progress=False)
    for a, b in zip(traces, clean):
        assert a.meta["resumed_from_epoch"] == 0
        np.testing.assert_array_equal(a.train_correct, b.train_correct)
    assert len(list(tmp_path.glob("*.corrupt-*"))) == 2  # moved aside, kept for inspection


def test_get_runs_stacks_only_what_the_cache_lacks(tmp_path, monkeypatch):
    cache = Cache(tmp_path)
    first = get_run(CONFIG, cache=cache, progress=False)  # seed 0 trained alone
    sizes = []
    real = train_module.train_runs

    def spy(configs, *args, **kwargs):
        sizes.append([c.seed for c in configs])
        return real(configs, *args, **kwargs)

    monkeypatch.setattr(train_module, "train_runs", spy)
    runs = get_runs(CONFIG, 3, cache=cache, progress=False, stacked=True)
    assert sizes == [[1, 2]] and runs.train_correct.shape == (3, 3, 200)
    np.testing.assert_array_equal(runs.run(0).train_correct, first.train_correct)
    again = get_runs(CONFIG, 3, cache=cache, progress=False, stacked=True)
    assert sizes == [[1, 2]]  # everything cached now
    np.testing.assert_array_equal(again.train_correct, runs.train_correct)
    assert not list(tmp_path.glob("*.ckpt.pt"))
    # each run's final weights are cached as a single model's: they reproduce its last epoch
    data_x = load_for(CONFIG.data, CONFIG.arch).x_train
    model = trained_model(replace(CONFIG, seed=2), cache=cache, device="cpu")
    with torch.no_grad():
        pred = model(data_x).argmax(1).numpy()
    assert (pred == runs.y_train).mean() == pytest.approx(runs.train_correct[2, -1].mean(), abs=0.01)


def test_max_stack_splits_the_runs(tmp_path, monkeypatch):
    sizes = []
    real = train_module.train_runs
    monkeypatch.setattr(train_module, "train_runs", lambda cs, *a, **k: sizes.append(len(cs)) or real(cs, *a, **k))
    get_traces(seeds_of(replace(CONFIG, epochs=1), 5), cache=Cache(tmp_path), progress=False, max_stack=2)
    assert sizes == [2, 2, 1]


def test_cpu_runs_stay_sequential(tmp_path, monkeypatch):
    sizes, real = [], train_module.train_runs
    monkeypatch.setattr(train_module, "train_runs", lambda cs, *a, **k: sizes.append(len(cs)) or real(cs, *a, **k))
    runs = get_runs(replace(CONFIG, epochs=1), 2, cache=Cache(tmp_path), device="cpu", progress=False)
    assert runs.runs == 2 and sizes == [1, 1]


@pytest.mark.parametrize("configs, message", [
    ([], "at least one"),
    ([CONFIG, replace(CONFIG, seed=1, arch="mlp")], "differ in their seed only"),
    ([CONFIG, replace(CONFIG, seed=1, lr=0.1)], "differ in their seed only"),
    ([CONFIG, CONFIG], "distinct seeds"),
    ([replace(CONFIG, epochs=0)], "epochs=0"),
    (seeds_of(replace(CONFIG, dropout=0.5), 2), "neither dropout nor adversarial"),
    (seeds_of(replace(CONFIG, adversarial_eps=0.1), 2), "neither dropout nor adversarial"),
])
def test_bad_stacks_raise(configs, message):
    with pytest.raises(ValueError, match=message):
        check_stackable(configs)


def test_bad_stack_arguments_raise(tmp_path):
    with pytest.raises(ValueError, match="max_stack=0"):
        get_traces([CONFIG], cache=Cache(tmp_path), max_stack=0)
    with pytest.raises(ValueError, match="one path per run"):
        train_runs(seeds_of(CONFIG, 2), weights=[tmp_path / "w.pt"], progress=False)
    with pytest.raises(ValueError, match="one path per run"):
        train_runs(seeds_of(CONFIG, 2), checkpoints=tmp_path / "c.ckpt.pt", progress=False)


def test_cli_stack_flag_trains_the_seeds_as_one_stack(tmp_path, capsys):
    from regutils.cli import main

    argv = ["train", "--train-size", "200", "--test-size", "60", "--epochs", "1", "--runs", "2", "--device", "cpu",
            "--cache", str(tmp_path)]
    assert main([*argv, "--stack", "on"]) == 0
    paths = capsys.readouterr().out.split()
    assert len(paths) == 2 and all(Cache(tmp_path).load(p.split("/")[-1][:-4]).meta["stacked_runs"] == 2
                                   for p in paths)
