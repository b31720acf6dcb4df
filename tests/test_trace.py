import io
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from regutils import trace as trace_module
from regutils.data import DataConfig
from regutils.cache import Cache
from regutils.trace import ARRAYS, SCORE_ARRAYS, Trace, TraceError, cache_key, load, save, seal, stack
from regutils.train import RunConfig, get_run, run_key


def random_trace(rng, epochs=4, n=13, m=7, labels_seed=0):
    labels = np.random.default_rng(labels_seed)
    return Trace(
        train_correct=rng.random((epochs, n)) < 0.6, test_correct=rng.random((epochs, m)) < 0.6,
        train_prob=rng.random((epochs, n)).astype(np.float16), test_prob=rng.random((epochs, m)).astype(np.float16),
        batch_correct=rng.random((epochs, n)) < 0.5,
        batch_step=rng.integers(0, 100, (epochs, n)).astype(np.int32),
        y_train=labels.integers(0, 10, n), y_test=labels.integers(0, 10, m),
        index_train=np.arange(n) * 3, index_test=np.arange(m) + 100, noisy_train=labels.random(n) < 0.3,
        history={"loss": rng.random(epochs), "test_acc": rng.random(epochs)},
        meta={"config": {"arch": "mlp", "epochs": epochs}, "note": "x"},
    )


def with_scores(trace: Trace, rng) -> Trace:
    """``trace`` with random margins, losses and EL2N of its shape (a run that recorded scores)."""
    for name in SCORE_ARRAYS:
        like = trace.train_prob if name.startswith("train") else trace.test_prob
        setattr(trace, name, rng.normal(size=like.shape).astype(np.float16))
    return trace


def assert_same(a: Trace, b: Trace):
    assert a.has_scores == b.has_scores
    for name in ARRAYS + (SCORE_ARRAYS if a.has_scores else ()):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        np.testing.assert_array_equal(x, y, err_msg=name)
    assert a.history.keys() == b.history.keys()
    for k in a.history.keys() - {"seconds", "eval_seconds"}:  # wall times differ between runs
        np.testing.assert_array_equal(a.history[k], b.history[k])


# --- file format


def test_round_trip_with_an_odd_sample_count(tmp_path):
    original = random_trace(np.random.default_rng(0), n=13, m=7)
    path = save(original, tmp_path / "t.npz")
    loaded = load(path)
    assert_same(original, loaded)
    assert loaded.meta["config"] == original.meta["config"] and loaded.meta["note"] == "x"
    assert loaded.epochs == 4 and loaded.runs == 1
    with np.load(path) as z:  # booleans stored as bits: 13 samples in 2 bytes per epoch
        assert z["train_correct.bits"].shape == (4, 2) and z["test_correct.bits"].shape == (4, 1)
        assert z["noisy_train.bits"].shape == (2,) and "train_correct" not in z.files
        np.testing.assert_array_equal(np.unpackbits(z["batch_correct.bits"], axis=-1)[:, :13],
                                      original.batch_correct)


@settings(max_examples=25, deadline=None)
@given(epochs=st.integers(1, 5), n=st.integers(1, 40), m=st.integers(1, 20), seed=st.integers(0, 2**16))
def test_round_trip_property(tmp_path_factory, epochs, n, m, seed):
    original = random_trace(np.random.default_rng(seed), epochs, n, m, labels_seed=seed)
    assert_same(original, load(save(original, tmp_path_factory.mktemp("p") / "t.npz")))


def member_data_offsets(path):
    """(name, first byte, length) of the stored data of each member of the zip at ``path``."""
    blob = path.read_bytes()
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
    out = []
    for info in infos:
        header = info.header_offset
        name_len = int.from_bytes(blob[header + 26:header + 28], "little")
        extra_len = int.from_bytes(blob[header + 28:header + 30], "little")
        out.append((info.filename, header + 30 + name_len + extra_len, info.compress_size))
    return out


def test_truncated_files_raise(tmp_path):
    path = save(random_trace(np.random.default_rng(1)), tmp_path / "t.npz")
    blob = path.read_bytes()
    for length in (0, 10, len(blob) // 2, len(blob) - 1):
        cut = tmp_path / f"cut{length}.npz"
        cut.write_bytes(blob[:length])
        with pytest.raises(TraceError):
            load(cut)


def test_one_flipped_byte_in_any_stored_array_raises(tmp_path):
    path = save(random_trace(np.random.default_rng(2)), tmp_path / "t.npz")
    blob = path.read_bytes()
    members = member_data_offsets(path)
    assert len(members) == len(ARRAYS) + 2 + 1  # arrays, two history columns, meta
    for name, start, length in members:
        bad = bytearray(blob)
        bad[start + length // 2] ^= 0x01
        broken = tmp_path / "bad.npz"
        broken.write_bytes(bytes(bad))
        with pytest.raises(TraceError):
            load(broken)


def test_altered_array_in_a_valid_zip_is_refused(tmp_path):
    path = save(random_trace(np.random.default_rng(3)), tmp_path / "t.npz")
    with np.load(path) as z:
        stored = {k: z[k] for k in z.files}
    stored["train_prob"] = stored["train_prob"].copy()
    stored["train_prob"][0, 0] += 1  # a different value, rewritten with correct zip CRCs
    np.savez(path, **stored)
    with pytest.raises(TraceError, match="no seal"):
        load(path)
    buf = io.BytesIO()
    np.savez(buf, **stored)
    path.write_bytes(seal(buf.getvalue(), "other"))  # sealed, but for another run
    with pytest.raises(TraceError, match="belongs to run 'other', not to 't'"):
        load(path, "t")


def test_missing_file_and_non_trace_raise(tmp_path):
    with pytest.raises(TraceError, match="no trace"):
        load(tmp_path / "absent.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(TraceError, match="no seal"):
        load(tmp_path / "other.npz")
    buf = io.BytesIO()
    np.savez(buf, a=np.zeros(3))
    (tmp_path / "sealed.npz").write_bytes(seal(buf.getvalue(), "sealed"))
    with pytest.raises(TraceError, match="not a valid trace file"):
        load(tmp_path / "sealed.npz")


def test_atomic_write_leaves_only_the_file(tmp_path, monkeypatch):
    first = random_trace(np.random.default_rng(4))
    save(first, tmp_path / "t.npz")
    save(random_trace(np.random.default_rng(5)), tmp_path / "t.npz")  # replaces in place
    assert [p.name for p in tmp_path.iterdir()] == ["t.npz"]

    def failing_savez(f, **arrays):
        f.write(b"partial")
        raise OSError("device went away")

    monkeypatch.setattr(trace_module.np, "savez_compressed", failing_savez)
    with pytest.raises(OSError, match="went away"):
        save(first, tmp_path / "t.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["t.npz"]
    monkeypatch.undo()
    assert_same(load(tmp_path / "t.npz"), random_trace(np.random.default_rng(5)))


# --- stacking


def test_stack_adds_a_run_axis_and_run_takes_it_off():
    rng = np.random.default_rng(6)
    runs = [random_trace(rng, epochs=3, n=13, m=7) for _ in range(4)]
    stacked = stack(runs)
    assert stacked.train_correct.shape == (4, 3, 13) and stacked.test_prob.shape == (4, 3, 7)
    assert stacked.batch_step.shape == (4, 3, 13) and stacked.history["loss"].shape == (4, 3)
    assert stacked.y_train.shape == (13,) and stacked.runs == 4 and stacked.epochs == 3
    for r, single in enumerate(runs):
        assert_same(stacked.run(r), single)
        assert stacked.run(r).meta == single.meta
    with pytest.raises(ValueError, match="single run"):
        runs[0].run(0)


def test_scores_round_trip_stack_and_unstack_and_are_dropped_unless_every_run_has_them(tmp_path):
    rng = np.random.default_rng(8)
    runs = [with_scores(random_trace(rng, epochs=3, n=13, m=7), rng) for _ in range(3)]
    loaded = load(save(runs[0], tmp_path / "scored.npz"))
    assert loaded.has_scores and set(loaded.scores()) == set(SCORE_ARRAYS)
    assert_same(loaded, runs[0])
    stacked = stack(runs)
    assert stacked.train_el2n.shape == (3, 3, 13) and stacked.test_margin.shape == (3, 3, 7)
    for r, single in enumerate(runs):
        assert_same(stacked.run(r), single)
    mixed = stack([runs[0], random_trace(rng, epochs=3, n=13, m=7)])
    assert not mixed.has_scores and mixed.train_margin is None and mixed.scores() == {}
    plain = load(save(random_trace(rng), tmp_path / "plain.npz"))
    assert not plain.has_scores and all(getattr(plain, name) is None for name in SCORE_ARRAYS)


def test_stack_refuses_different_data_or_lengths():
    rng = np.random.default_rng(7)
    a, b = random_trace(rng), random_trace(rng)
    b.y_train = b.y_train.copy()
    b.y_train[0] = (b.y_train[0] + 1) % 10
    with pytest.raises(ValueError, match="different y_train"):
        stack([a, b])
    with pytest.raises(ValueError, match="epochs"):
        stack([a, random_trace(rng, epochs=5)])
    with pytest.raises(ValueError, match="at least one"):
        stack([])


# --- cache


def test_cache_paths_and_keys(tmp_path):
    cache = Cache(tmp_path)
    trace = random_trace(np.random.default_rng(8))
    cache.save("abc", trace)
    assert cache.has("abc") and not cache.has("abd") and cache.keys() == ["abc"]
    assert_same(cache.load("abc"), trace)
    assert cache.checkpoint_path("abc").name == "abc.ckpt.pt"


def test_cache_key_depends_on_config_and_data():
    key = cache_key({"arch": "mlp", "seed": 0}, "f" * 64)
    assert key == cache_key({"seed": 0, "arch": "mlp"}, "f" * 64)  # order of fields does not matter
    assert key != cache_key({"arch": "mlp", "seed": 1}, "f" * 64)
    assert key != cache_key({"arch": "mlp", "seed": 0}, "e" * 64)


def test_default_cache_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("REGUTILS_CACHE", str(tmp_path))
    assert Cache().root == tmp_path


def test_corrupt_cached_trace_is_retrained(tmp_path, one_thread):
    config = RunConfig(DataConfig("digits", train_size=200, test_size=50), arch="mlp", epochs=2,
                       batch_size=64, schedule="constant")
    cache = Cache(tmp_path)
    first = get_run(config, cache=cache, progress=False)
    path = cache.trace_path(run_key(config))
    blob = bytearray(path.read_bytes())
    name, start, length = member_data_offsets(path)[0]
    blob[start + length // 2] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.warns(UserWarning, match="training the run again"):
        second = get_run(config, cache=cache, progress=False)
    assert second.meta["resumed_from_epoch"] == 0
    assert_same(first, second)
    assert_same(load(path), second)  # the cache holds a valid trace again
