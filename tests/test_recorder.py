import numpy as np
import pytest
import torch
import torch.nn.functional as F

from regutils import models
from regutils.data import DataConfig, augment
from regutils.loop import load_for, make_optimizer, make_scheduler, minibatches
from regutils.recorder import Recorder
from regutils.trace import ARRAYS, SCORE_ARRAYS, TraceError, load
from regutils.train import RunConfig, train

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

N, M, D, C, EPOCHS, BATCH = 200, 60, 8, 3, 3, 32


def toy_data(seed=0):
    g = torch.Generator().manual_seed(seed)
    x_tr, x_te = torch.randn(N, D, generator=g), torch.randn(M, D, generator=g)
    w = torch.randn(D, C, generator=g)
    y_tr, y_te = (x_tr @ w).argmax(1), (x_te @ w).argmax(1)
    y_tr[:20] = torch.randint(0, C, (20,), generator=g)  # some noise: samples that flip
    return x_tr, y_tr, x_te, y_te


def mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(D, 16), torch.nn.ReLU(), torch.nn.Linear(16, C))


def reference(model, x, y):
    """Eval-mode correctness, label probability, margin, loss and EL2N, computed directly."""
    with torch.no_grad():
        z = model.eval()(x)
    order = z.sort(1, descending=True).values
    label = z[torch.arange(len(y)), y]
    other = torch.where(label == order[:, 0], order[:, 1], order[:, 0])
    p = z.softmax(1)
    error = p.clone()
    error[torch.arange(len(y)), y] -= 1
    return ((z.argmax(1) == y).numpy(), p[torch.arange(len(y)), y].half().numpy(),
            (label - other).half().numpy(), F.cross_entropy(z, y, reduction="none").half().numpy(),
            error.pow(2).sum(1).sqrt().half().numpy())


def user_loop(eval_path="epoch_end", drop_last=False, epochs=EPOCHS):
    """A plain training loop instrumented by a recorder; also returns a reference record made by hand."""
    x_tr, y_tr, x_te, y_te = toy_data()
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    rec = Recorder(n_train=N, n_test=M, y_train=y_tr.numpy(), y_test=y_te.numpy(), optimizer=opt)
    ref = {k: [] for k in ("train_correct", "test_correct", "train_prob", "test_prob", "train_margin",
                           "train_loss", "train_el2n", "batch_correct", "batch_step")}
    g, step = torch.Generator().manual_seed(1), 0
    for _ in range(epochs):
        batch_correct, batch_step = np.zeros(N, bool), np.full(N, -1, np.int32)
        chunks = torch.randperm(N, generator=g).split(BATCH)
        for idx in chunks[:-1] if drop_last else chunks:
            model.train()
            logits = model(x_tr[idx])
            rec.on_batch(idx, logits, y_tr[idx])
            batch_correct[idx] = (logits.argmax(1) == y_tr[idx]).numpy()
            batch_step[idx] = step
            step += 1
            loss = F.cross_entropy(logits, y_tr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.train()
        if eval_path == "epoch_end":
            rec.on_epoch_end(model, x_tr, x_te, batch_size=64)
            assert model.training  # the mode is restored
        else:  # a loop that evaluates itself, in its own order and batches
            model.eval()
            with torch.no_grad():
                for split, x in (("train", x_tr), ("test", x_te)):
                    for part in torch.randperm(len(x), generator=torch.Generator().manual_seed(5)).split(50):
                        rec.on_eval(split, part.numpy(), model(x[part]))
            rec.end_epoch()
        for split, x, y in (("train", x_tr, y_tr), ("test", x_te, y_te)):
            correct, prob, margin, loss, el2n = reference(model, x, y)
            ref[f"{split}_correct"].append(correct)
            ref[f"{split}_prob"].append(prob)
            if split == "train":
                ref["train_margin"].append(margin)
                ref["train_loss"].append(loss)
                ref["train_el2n"].append(el2n)
        ref["batch_correct"].append(batch_correct)
        ref["batch_step"].append(batch_step)
    return rec, {k: np.stack(v) for k, v in ref.items()}


def test_recorder_matches_a_direct_reference():
    rec, ref = user_loop()
    trace = rec.trace(meta={"arch": "toy mlp"})
    assert trace.train_correct.shape == (EPOCHS, N) and trace.test_correct.shape == (EPOCHS, M)
    assert trace.train_prob.dtype == np.float16 and trace.batch_step.dtype == np.int32
    for name in ("train_correct", "test_correct", "train_prob", "test_prob", "batch_correct", "batch_step"):
        np.testing.assert_array_equal(getattr(trace, name), ref[name], err_msg=name)
    np.testing.assert_array_equal(trace.train_margin, ref["train_margin"])
    for name in ("train_loss", "train_el2n"):
        np.testing.assert_allclose(getattr(trace, name).astype(float), ref[name].astype(float), rtol=1e-3, atol=1e-3)
    assert trace.test_margin.shape == trace.test_loss.shape == trace.test_el2n.shape == (EPOCHS, M)
    assert all(getattr(trace, name).dtype == np.float16 for name in SCORE_ARRAYS)
    # the margin is positive exactly where the sample is correct (no ties in float32 logits)
    np.testing.assert_array_equal(trace.train_margin > 0, trace.train_correct)
    # EL2N lies in [1 - p, sqrt(2) (1 - p)] for the probability p of the label
    p = trace.train_prob.astype(float)
    assert ((trace.train_el2n >= (1 - p) - 2e-3) & (trace.train_el2n <= np.sqrt(2) * (1 - p) + 2e-3)).all()
    steps_per_epoch = -(-N // BATCH)
    assert trace.batch_step.min() == 0 and trace.batch_step.max() == EPOCHS * steps_per_epoch - 1
    assert rec.step == EPOCHS * steps_per_epoch
    np.testing.assert_array_equal(trace.history["train_acc"], ref["train_correct"].mean(1))
    np.testing.assert_array_equal(trace.history["lr"], 0.5)
    assert trace.history["loss"][-1] < trace.history["loss"][0]
    assert trace.meta["arch"] == "toy mlp" and trace.meta["recorder"]["steps"] == rec.step
    assert 0 < trace.train_correct[-1].mean() <= 1


def test_on_eval_path_equals_on_epoch_end_path():
    a, _ = user_loop("epoch_end")
    b, _ = user_loop("on_eval")
    ta, tb = a.trace(), b.trace()
    for name in ARRAYS + SCORE_ARRAYS:
        np.testing.assert_array_equal(getattr(ta, name), getattr(tb, name), err_msg=name)


def test_dropped_samples_keep_the_engine_initial_record():
    rec, ref = user_loop(drop_last=True, epochs=2)
    trace = rec.trace()
    dropped = trace.batch_step == -1
    assert dropped.sum(1).tolist() == [N % BATCH] * 2
    assert not trace.batch_correct[dropped].any()
    np.testing.assert_array_equal(trace.batch_step, ref["batch_step"])


def test_save_load_round_trip(tmp_path):
    rec, _ = user_loop(epochs=2)
    path = rec.save(tmp_path / "mine.npz", meta={"note": "user loop"})
    loaded = load(path, "mine")
    trace = rec.trace()
    for name in ARRAYS + SCORE_ARRAYS:
        np.testing.assert_array_equal(getattr(loaded, name), getattr(trace, name), err_msg=name)
        assert getattr(loaded, name).dtype == getattr(trace, name).dtype
    for k, v in trace.history.items():
        np.testing.assert_array_equal(loaded.history[k], v)
    assert loaded.meta["note"] == "user loop"
    with pytest.raises(TraceError, match="belongs to run"):
        load(path, "another")



def test_on_epoch_end_restores_each_submodule_mode():
    x_tr, y_tr, x_te, y_te = toy_data()
    model = mlp()
    model.train()
    model[0].eval()  # a frozen part stays frozen
    rec = Recorder(N, M, y_tr, y_te)
    rec.on_epoch_end(model, x_tr, x_te)
    assert model.training and not model[0].training and model[2].training
    assert rec.epochs == 1 and (rec.trace().batch_step == -1).all()


@pytest.mark.parametrize("call, message", [
    (lambda r: r.on_batch([0, 1], torch.zeros(2, C, 1)), r"shape \(B, C\)"),
    (lambda r: r.on_batch([0, 1], torch.zeros(2, 1)), "C >= 2"),
    (lambda r: r.on_batch([0, 1], torch.zeros(3, C)), r"idx must have shape \(3,\)"),
    (lambda r: r.on_batch([0, N], torch.zeros(2, C)), "outside the train set"),
    (lambda r: r.on_batch([-1, 0], torch.zeros(2, C)), "outside the train set"),
    (lambda r: r.on_batch([0.0, 1.0], torch.zeros(2, C)), "integer positions"),
    (lambda r: r.on_batch([0, 1], torch.zeros(2, C), torch.zeros(3, dtype=torch.long)), r"shape \(2,\)"),
    (lambda r: r.on_batch([0, 1], torch.zeros(2, C), torch.tensor([2, 2])), "differs from y_train"),
    (lambda r: r.on_batch([0, 1], torch.zeros(2, C, dtype=torch.long)), "floating point"),
    (lambda r: r.on_batch([0, 1], np.zeros((2, C))), "torch.Tensor"),
    (lambda r: r.on_eval("valid", [0], torch.zeros(1, C)), "split='valid' must be one of train, test"),
    (lambda r: r.on_eval("test", [M], torch.zeros(1, C)), "outside the test set"),
    (lambda r: r.end_epoch(), "were not evaluated"),
    (lambda r: r.trace(), "no epoch recorded"),
    (lambda r: r.on_epoch_end(mlp(), torch.zeros(N - 1, D), torch.zeros(M, D)), "x_train must be a tensor"),
])
def test_bad_inputs_raise_value_error(call, message):
    rec = Recorder(N, M, torch.zeros(N, dtype=torch.long), torch.zeros(M, dtype=torch.long))
    with pytest.raises(ValueError, match=message):
        call(rec)


def test_bad_construction_and_unfinished_epochs():
    with pytest.raises(ValueError, match="n_train=0 must be a positive integer"):
        Recorder(0, 1, [], [0])
    with pytest.raises(ValueError, match=r"y_train must have shape \(3,\)"):
        Recorder(3, 1, [0, 1], [0])
    with pytest.raises(ValueError, match="integer class labels"):
        Recorder(2, 1, [0.5, 1.0], [0])
    with pytest.raises(ValueError, match="negative label"):
        Recorder(2, 1, [0, -1], [0])
    rec = Recorder(2, 1, [0, 5], [0])
    with pytest.raises(ValueError, match="holds label 5"):
        rec.on_batch([0, 1], torch.zeros(2, C))
    rec = Recorder(2, 1, [0, 1], [0])
    rec.on_batch([0, 1], torch.zeros(2, C))
    with pytest.raises(ValueError, match="logits have 4 classes"):
        rec.on_batch([0, 1], torch.zeros(2, 4))
    with pytest.raises(ValueError, match="in progress"):
        rec.trace()


@pytest.mark.parametrize("augmented", [False, True])
def test_recorder_reproduces_the_engine_bit_for_bit(augmented):
    """The engine's run replayed in a user loop: same seeding, sample order, augmentation and optimizer."""
    config = RunConfig(DataConfig("digits", augment=augmented, train_size=200, test_size=60), arch="mlp",
                       epochs=2, batch_size=32, record_scores=True)
    engine = train(config, device="cpu", progress=False)
    assert engine.has_scores

    data = load_for(config.data, config.arch)
    torch.manual_seed(config.seed)  # as the engine before it builds the model
    model = models.build(config.arch, data.in_channels, data.num_classes)
    opt = make_optimizer(config, model.parameters())
    sched = make_scheduler(config, opt)
    g = torch.Generator().manual_seed(config.seed)  # sample order and augmentation
    n = len(data.y_train)
    rec = Recorder(n, len(data.y_test), data.y_train, data.y_test, index_train=data.index_train,
                   index_test=data.index_test, noisy_train=data.noisy_train, optimizer=opt)
    for _ in range(config.epochs):
        for idx in minibatches(torch.randperm(n, generator=g), config.batch_size):
            x, y = data.x_train[idx], data.y_train[idx]
            if data.augment:
                x = augment(x, g)
            model.train()
            logits = model(x)
            rec.on_batch(idx, logits, y)
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(logits, y).backward()
            opt.step()
        sched.step()
        rec.on_epoch_end(model, data.x_train, data.x_test)
    mine = rec.trace()
    for name in ARRAYS + SCORE_ARRAYS:
        np.testing.assert_array_equal(getattr(mine, name), getattr(engine, name), err_msg=name)
    for column in ("train_acc", "test_acc", "lr"):
        np.testing.assert_array_equal(mine.history[column], engine.history[column], err_msg=column)
    np.testing.assert_allclose(mine.history["loss"], engine.history["loss"], rtol=1e-6)


def test_a_run_without_test_set(tmp_path):
    x_tr, y_tr, _, _ = toy_data()
    model = mlp()
    rec = Recorder(N, 0, y_tr, [])
    for idx in torch.arange(N).split(BATCH):
        rec.on_batch(idx, model(x_tr[idx]))
    rec.on_epoch_end(model, x_tr)
    loaded = load(rec.save(tmp_path / "alone.npz"))
    assert loaded.test_correct.shape == (1, 0) and loaded.train_correct.shape == (1, N)
    assert np.isnan(loaded.history["test_acc"]).all() and (loaded.batch_step[0] >= 0).all()
