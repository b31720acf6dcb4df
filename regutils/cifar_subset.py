"""The real CIFAR-10 subset that ships with the project, and how to rebuild it byte for byte.

    from regutils.data import DataConfig, load
    data = load(DataConfig("cifar10-subset"))           # reads data/cifar10-subset.npz, md5-checked

    python -m regutils data cifar10-subset --from ROOT -o cifar10-subset.npz

``data/cifar10-subset.npz`` holds the first :data:`PER_BATCH` images of each
of the five CIFAR-10 training batches (5,085 images) and of the test batch
(1,017), pixels unchanged, with their canonical indices: row ``i`` of training
batch ``b`` is image ``10000 * (b - 1) + i`` of the 50,000-image training
set, row ``i`` of the test batch is test image ``i``. :func:`rebuild` makes
the same file from torchvision's CIFAR-10 download (``ROOT`` holds
``cifar-10-batches-py/``); :func:`write` fixes every zip field, so equal
arrays give equal bytes (with the zlib of the standard CPython builds).

The python batches are pickles; :func:`read_batch` unpickles them with only
numpy's array constructors allowed, so a crafted batch cannot run code.
"""
from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np

from .data import DataError, file_md5

PER_BATCH = 1017  # images taken from the start of each batch
BATCH_ROWS = 10000  # images in each CIFAR-10 batch
IMAGE_SHAPE = (3, 32, 32)  # a batch row is a CHW image, row-major
NUM_CLASSES = 10
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{b}" for b in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"
KEYS = ("x_train", "y_train", "index_train", "x_test", "y_test", "index_test", "classes")  # the file's order
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest zip date, as numpy writes it
ZIP_UNIX = 3  # create_system: written on Unix, whatever the platform
ZIP_MODE = 0o600 << 16  # external_attr: rw------- , as zipfile writes it

# numpy's array constructors, under the module names numpy 1 and numpy 2 pickle them with
_ALLOWED_GLOBALS = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
                    ("numpy", "ndarray"), ("numpy", "dtype")}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays; refuses every other global (functions, classes)."""

    def find_class(self, module, name):
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused global {module}.{name}: a CIFAR batch holds only arrays and lists")


# --- reading the python batches


def read_batch(path: str | os.PathLike) -> dict:
    """One CIFAR python batch (a pickled dict) with its keys as ``str``.

    Raises DataError for a file that is not a pickle or that names any global
    other than numpy's array constructors (no code runs).
    """
    with open(path, "rb") as f:
        try:
            # encoding="bytes": the batches were pickled by Python 2, their text stays bytes
            batch = _ArrayUnpickler(f, encoding="bytes").load()
        except Exception as err:  # a malformed pickle raises many kinds (EOFError, KeyError, struct.error, ...)
            raise DataError(f"{path}: not a CIFAR python batch ({type(err).__name__}: {err})") from err
    if not isinstance(batch, dict):
        raise DataError(f"{path}: not a CIFAR python batch (a {type(batch).__name__}, expected a dict)")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}


def _images_and_labels(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The first PER_BATCH images (uint8 (PER_BATCH, 32, 32, 3), HWC) and labels (int64) of a batch."""
    batch = read_batch(path)
    data, labels = batch.get("data"), batch.get("labels")
    shape = (BATCH_ROWS, int(np.prod(IMAGE_SHAPE)))
    if not isinstance(data, np.ndarray) or data.shape != shape or data.dtype != np.uint8:
        got = f"{data.shape} {data.dtype}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{path}: b'data' is {got}; a CIFAR-10 batch holds a {shape} uint8 array")
    if labels is None:
        raise DataError(f"{path}: no b'labels' (keys: {sorted(batch)}); not a CIFAR-10 batch")
    labels = np.asarray(labels)
    if labels.shape != (BATCH_ROWS,) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{path}: b'labels' has shape {labels.shape}, dtype {labels.dtype}; "
                        f"expected {BATCH_ROWS} integers")
    if labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise DataError(f"{path}: b'labels' outside 0..{NUM_CLASSES - 1}")
    images = data[:PER_BATCH].reshape(-1, *IMAGE_SHAPE).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels[:PER_BATCH].astype(np.int64)


def _classes(path: Path) -> np.ndarray:
    names = read_batch(path).get("label_names")
    if not isinstance(names, list) or len(names) != NUM_CLASSES:
        raise DataError(f"{path}: b'label_names' is not a list of {NUM_CLASSES} names")
    return np.array([n.decode("ascii") if isinstance(n, bytes) else str(n) for n in names])


def build(root: str | os.PathLike) -> dict[str, np.ndarray]:
    """The subset's arrays, in :data:`KEYS` order, from a torchvision CIFAR-10 root.

    Parameters
    ----------
    root : folder holding ``cifar-10-batches-py/`` (``data_batch_1`` .. ``_5``,
        ``test_batch``, ``batches.meta``), as ``torchvision.datasets.CIFAR10``
        downloads it.

    Returns
    -------
    dict: x_train uint8 (5085, 32, 32, 3), y_train int64 (5085,), index_train
    int64 (5085,), x_test uint8 (1017, 32, 32, 3), y_test, index_test int64
    (1017,), classes str (10,).
    """
    folder = Path(root) / FOLDER
    if not folder.is_dir():
        raise DataError(f"{folder} does not exist: --from must be the torchvision CIFAR-10 root holding {FOLDER}/ "
                        "(torchvision.datasets.CIFAR10(ROOT, download=True) makes it)")
    missing = [name for name in (*TRAIN_BATCHES, TEST_BATCH, META) if not (folder / name).is_file()]
    if missing:
        raise DataError(f"{folder}: missing {', '.join(missing)}")
    train = [_images_and_labels(folder / name) for name in TRAIN_BATCHES]
    x_test, y_test = _images_and_labels(folder / TEST_BATCH)
    rows = np.arange(PER_BATCH, dtype=np.int64)
    index_train = (BATCH_ROWS * np.arange(len(TRAIN_BATCHES), dtype=np.int64)[:, None] + rows).ravel()
    return {"x_train": np.concatenate([x for x, _ in train]), "y_train": np.concatenate([y for _, y in train]),
            "index_train": index_train, "x_test": x_test, "y_test": y_test, "index_test": rows,
            "classes": _classes(folder / META)}


# --- writing the npz


def write(arrays: dict[str, np.ndarray], file: str | os.PathLike | io.BufferedIOBase) -> None:
    """An npz of ``arrays`` (in their order) whose bytes depend on the arrays only.

    What ``np.savez_compressed`` writes, with every zip field fixed here
    rather than left to the platform or the numpy version: entry ``NAME.npy``,
    date 1980-01-01, deflate at zlib's default level, zip64 local headers,
    Unix mode 0600, and the npy format 1.0 header.
    """
    with zipfile.ZipFile(file, "w") as zf:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = ZIP_UNIX
            info.external_attr = ZIP_MODE
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.ascontiguousarray(array), version=(1, 0), allow_pickle=False)


def rebuild(root: str | os.PathLike, out: str | os.PathLike) -> str:
    """Build the subset from ``root`` (see :func:`build`) into ``out``; returns the file's md5."""
    arrays = build(root)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")  # a crash never leaves a truncated file at ``out``
    write(arrays, partial)
    os.replace(partial, out)
    return file_md5(out)
