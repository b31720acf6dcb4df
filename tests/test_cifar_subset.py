import hashlib
import io
import pickle
import re
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from regutils import cifar_subset, data
from regutils.cli import main
from regutils.data import DataConfig, DataError, load
from regutils.profiles import settings

REPO = Path(__file__).resolve().parents[1]
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
FLAT = 3 * 32 * 32


def write_batch(path: Path, batch) -> None:
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=4)


class Py2Pickler(pickle._Pickler):
    """Pickles as Python 2 did the original batches: text as ``str`` (BINSTRING), numpy.core's array constructor."""

    def save_bytes(self, obj):
        size = len(obj)
        head = pickle.SHORT_BINSTRING + bytes([size]) if size < 256 else pickle.BINSTRING + struct.pack("<i", size)
        self.write(head + obj)
        self.memoize(obj)

    def save_str(self, obj):
        self.save_bytes(obj.encode("latin1"))

    def save_global(self, obj, name=None):
        if getattr(obj, "__name__", None) == "_reconstruct":  # numpy 1 named its module numpy.core
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
        else:
            super().save_global(obj, name)

    dispatch = {**pickle._Pickler.dispatch, bytes: save_bytes, str: save_str}


def write_py2_batch(path: Path, batch: dict) -> None:
    with open(path, "wb") as f:
        Py2Pickler(f, protocol=2).dump(batch)


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory):
    """A fake torchvision CIFAR-10 root: six full-size python batches of random pixels, and the meta file,
    pickled in the originals' Python 2 format.

    Returns the root and the (data, labels) of each batch, training batches first.
    """
    root = tmp_path_factory.mktemp("cifar")
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    batches = []
    for name in (*cifar_subset.TRAIN_BATCHES, cifar_subset.TEST_BATCH):
        data = rng.integers(0, 256, (10000, FLAT), dtype=np.uint8)
        labels = rng.integers(0, 10, 10000).tolist()  # a list of ints, as in the original batches
        write_py2_batch(folder / name, {"batch_label": name, "labels": labels, "data": data,
                                        "filenames": ["x.png"] * 10000})
        batches.append((data, np.array(labels)))
    write_py2_batch(folder / "batches.meta", {"label_names": CLASSES, "num_vis": FLAT})
    return root, batches


def hwc(rows: np.ndarray) -> np.ndarray:
    """Rows of a batch (N, 3072), channel planes of 32x32 row-major, as (N, 32, 32, 3): channel by channel."""
    return np.stack([rows[:, c * 1024:(c + 1) * 1024].reshape(-1, 32, 32) for c in range(3)], axis=-1)


# --- rebuilding from the python batches


def test_build_takes_the_first_1017_images_of_each_batch_as_hwc_with_canonical_indices(cifar_root):
    root, batches = cifar_root
    a = cifar_subset.build(root)
    assert list(a) == list(cifar_subset.KEYS)
    assert a["x_train"].shape == (5085, 32, 32, 3) and a["x_test"].shape == (1017, 32, 32, 3)
    assert a["x_train"].dtype == a["x_test"].dtype == np.uint8
    assert a["y_train"].dtype == a["index_train"].dtype == a["index_test"].dtype == np.int64
    # image 1017 * b + i is row i of training batch b + 1
    for b, (rows, labels) in enumerate(batches[:5]):
        part = slice(1017 * b, 1017 * (b + 1))
        np.testing.assert_array_equal(a["x_train"][part], hwc(rows[:1017]))
        np.testing.assert_array_equal(a["y_train"][part], labels[:1017])
    np.testing.assert_array_equal(a["x_test"], hwc(batches[5][0][:1017]))
    np.testing.assert_array_equal(a["y_test"], batches[5][1][:1017])
    # one pixel by hand: row 5 of data_batch_2, green channel, row 3, column 7
    assert a["x_train"][1017 + 5, 3, 7, 1] == batches[1][0][5, 1024 + 3 * 32 + 7]
    idx = a["index_train"]
    assert idx[:2].tolist() == [0, 1] and idx[1016:1018].tolist() == [1016, 10000] and idx[-1] == 41016
    assert np.all(np.diff(idx) > 0)
    assert a["index_test"].tolist() == list(range(1017))
    assert a["classes"].tolist() == CLASSES


@pytest.mark.slow
def test_two_rebuilds_are_byte_identical_and_load_back(cifar_root, tmp_path):
    root, _ = cifar_root
    first = cifar_subset.rebuild(root, tmp_path / "one" / "subset.npz")
    second = cifar_subset.rebuild(root, tmp_path / "two.npz")
    assert first == second == hashlib.md5((tmp_path / "two.npz").read_bytes()).hexdigest()
    assert (tmp_path / "one" / "subset.npz").read_bytes() == (tmp_path / "two.npz").read_bytes()
    assert not list(tmp_path.glob("*.partial"))
    with np.load(tmp_path / "two.npz", allow_pickle=False) as z:
        assert z.files == list(cifar_subset.KEYS)
        for key, value in cifar_subset.build(root).items():
            np.testing.assert_array_equal(z[key], value, err_msg=key)


def test_cli_rebuilds_and_reports_the_md5(cifar_root, tmp_path, capsys):
    root, _ = cifar_root
    out = tmp_path / "subset.npz"
    assert main(["data", "cifar10-subset", "--from", str(root), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert data.file_md5(out) in err and "differs from" in err  # random pixels are not CIFAR-10's


# --- the writer matches the shipped file


def test_writer_reencodes_the_shipped_arrays_to_the_shipped_bytes():
    with np.load(data.SHIPPED_SUBSET, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    buffer = io.BytesIO()
    cifar_subset.write(arrays, buffer)
    assert hashlib.md5(buffer.getvalue()).hexdigest() == data.SUBSET_MD5 == data.file_md5(data.SHIPPED_SUBSET)
    entries = zipfile.ZipFile(buffer).infolist()
    assert [e.filename for e in entries] == [f"{k}.npy" for k in cifar_subset.KEYS]
    assert {(e.date_time, e.compress_type) for e in entries} == {((1980, 1, 1, 0, 0, 0), zipfile.ZIP_DEFLATED)}


def test_writer_output_depends_on_the_arrays_only():
    a = {"x": np.arange(12, dtype=np.uint8).reshape(3, 4), "y": np.array([1, 2], np.int64)}
    one, two, other = io.BytesIO(), io.BytesIO(), io.BytesIO()
    cifar_subset.write(a, one)
    cifar_subset.write({k: v.copy(order="F") for k, v in a.items()}, two)  # memory layout does not matter
    cifar_subset.write({"x": a["x"], "y": np.array([1, 3], np.int64)}, other)
    assert one.getvalue() == two.getvalue() != other.getvalue()


# --- clear errors, and no code from a batch


def test_missing_folder_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(DataError, match="cifar-10-batches-py"):
        cifar_subset.build(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(["data", "cifar10-subset", "--from", str(tmp_path / "nowhere"), "-o", str(tmp_path / "o.npz")])
    assert exit_.value.code == 2
    assert "cifar-10-batches-py does not exist" in capsys.readouterr().err
    assert not (tmp_path / "o.npz").exists()


def test_missing_batch_files_are_named(tmp_path):
    (tmp_path / "cifar-10-batches-py").mkdir()
    (tmp_path / "cifar-10-batches-py" / "data_batch_1").touch()
    with pytest.raises(DataError, match="missing data_batch_2, .*test_batch, batches.meta"):
        cifar_subset.build(tmp_path)


@pytest.mark.parametrize("batch, message", [
    ({b"data": np.zeros((100, FLAT), np.uint8), b"labels": [0] * 100}, r"\(100, 3072\) uint8; .*\(10000, 3072\)"),
    ({b"data": np.zeros((10000, 32, 32, 3), np.uint8), b"labels": [0] * 10000}, r"\(10000, 32, 32, 3\)"),
    ({b"data": np.zeros((10000, FLAT), np.float32), b"labels": [0] * 10000}, "float32"),
    ({b"data": np.zeros((10000, FLAT), np.uint8), b"fine_labels": [0] * 10000}, "no b'labels'"),
    ({b"data": np.zeros((10000, FLAT), np.uint8), b"labels": [0] * 9999}, r"\(9999,\)"),
    ({b"data": np.zeros((10000, FLAT), np.uint8), b"labels": [10] * 10000}, "outside 0..9"),
    ([1, 2, 3], "a list, expected a dict"),
])
def test_batch_of_the_wrong_form_is_a_clear_error(tmp_path, capsys, batch, message):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in (*cifar_subset.TRAIN_BATCHES, cifar_subset.TEST_BATCH, cifar_subset.META):
        (folder / name).touch()
    write_batch(folder / "data_batch_1", batch)
    with pytest.raises(SystemExit):
        main(["data", "cifar10-subset", "--from", str(tmp_path), "-o", str(tmp_path / "o.npz")])
    err = capsys.readouterr().err
    assert "data_batch_1" in err
    assert re.search(message, err), err


class Payload:
    """Unpickling this runs ``exec``: a crafted batch."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').close()",)


@pytest.mark.parametrize("wrap", [lambda p: p, lambda p: {b"data": p, b"labels": [0]}], ids=["bare", "inside"])
def test_a_crafted_batch_cannot_run_code(tmp_path, wrap):
    marker, batch = tmp_path / "ran", tmp_path / "data_batch_1"
    write_batch(batch, wrap(Payload(marker)))
    with pytest.raises(DataError, match="refused global builtins.exec"):
        cifar_subset.read_batch(batch)
    assert not marker.exists()
    with open(batch, "rb") as f:
        pickle.load(f)  # the payload is real: a plain unpickler runs it
    assert marker.exists()


def test_truncated_batch_is_a_clear_error(tmp_path):
    batch = tmp_path / "data_batch_1"
    write_batch(batch, {b"data": np.zeros((10, FLAT), np.uint8)})
    batch.write_bytes(batch.read_bytes()[:100])
    with pytest.raises(DataError, match="not a CIFAR python batch"):
        cifar_subset.read_batch(batch)


# --- DataConfig("cifar10-subset"): the shipped file


def test_dataconfig_loads_the_shipped_subset_with_canonical_indices():
    loaded = load(DataConfig("cifar10-subset"))
    assert loaded.x_train.shape == (5085, 3, 32, 32) and loaded.x_test.shape == (1017, 3, 32, 32)
    assert loaded.images_train.shape == (5085, 32, 32, 3) and loaded.images_train.dtype == np.uint8
    expected = [10000 * b + i for b in range(5) for i in range(1017)]
    assert loaded.index_train.tolist() == expected and loaded.index_test.tolist() == list(range(1017))
    assert loaded.classes == CLASSES and loaded.augment
    with np.load(data.SHIPPED_SUBSET) as z:
        np.testing.assert_array_equal(loaded.images_train, z["x_train"])
        np.testing.assert_array_equal(loaded.y_test.numpy(), z["y_test"])
    # normalized with the CIFAR-10 constants: the subset's channel means are near 0, not exactly 0
    means = loaded.x_train.mean((0, 2, 3))
    assert means.abs().max() < 0.1 and means.abs().min() > 0


def test_the_md5_is_checked_once_per_process(monkeypatch):
    calls = []
    monkeypatch.setattr(data, "file_md5", lambda path: calls.append(path) or data.SUBSET_MD5)
    data.checked_subset.cache_clear()
    assert data.shipped_subset() == data.shipped_subset() == data.SHIPPED_SUBSET
    assert calls == [data.SHIPPED_SUBSET]
    data.checked_subset.cache_clear()  # the next test checks the real md5 again


def test_an_altered_copy_is_refused(tmp_path, monkeypatch):
    with np.load(data.SHIPPED_SUBSET) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["y_train"][0] = (arrays["y_train"][0] + 1) % 10  # one label changed: a valid npz, another md5
    altered = tmp_path / "cifar10-subset.npz"
    cifar_subset.write(arrays, altered)
    monkeypatch.setattr(data, "SHIPPED_SUBSET", altered)
    with pytest.raises(DataError, match="altered"):
        load(DataConfig("cifar10-subset"))
    monkeypatch.setattr(data, "SHIPPED_SUBSET", tmp_path / "absent.npz")
    with pytest.raises(DataError, match="missing"):
        load(DataConfig("cifar10-subset"))


def test_the_subset_takes_no_path_and_is_the_profiles_data():
    with pytest.raises(DataError, match="path"):
        load(DataConfig("cifar10-subset", path="elsewhere.npz"))
    assert settings("default").run_config().data == DataConfig("cifar10-subset")
    with pytest.raises(ValueError, match="data_path"):
        settings("default", data_path="elsewhere.npz")


def test_nothing_in_the_project_reads_the_shared_folder():
    sources = [REPO / "README.md", REPO / "Makefile",
               *(p for d in ("regutils", "bench", "tests", "notebooks") for p in (REPO / d).rglob("*.*")
                 if p.suffix in (".py", ".md", ".yml", ".toml"))]
    parent_shared = ".." + "/shared"  # split so this file does not match itself
    offenders = [str(p.relative_to(REPO)) for p in sources if parent_shared in p.read_text()]
    assert offenders == []
