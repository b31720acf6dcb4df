"""Data sets as tensors in memory, every sample with a stable index.

    from regutils.data import DataConfig, load
    data = load(DataConfig("digits"), image_size=8)
    data.x_train.shape, data.index_train[:5], data.fingerprint

Sources (``DataConfig.dataset``):

========  ==================================================================
digits    scikit-learn's ``load_digits`` (1,797 8x8 grey images, embedded).
          Fixed stratified split: ``train_test_split(test_size=0.25,
          stratify=y, random_state=0)`` -> 1,347 train / 450 test; the index
          of a sample is its row in ``load_digits()``.
cifar10   torchvision's CIFAR-10 (``path`` = root, ``download``), canonical
          indices 0..49,999 / 0..9,999.
cifar100  the same for CIFAR-100.
npz       any ``.npz`` (``path``) holding ``x_train, y_train, x_test,
          y_test`` and optionally ``index_train, index_test, classes``.
          Images are (N, H, W) or (N, H, W, C) with C in {1, 3}, uint8
          (0..255) or float in [0, 1] (no NaN or inf; other dtypes are
          refused, not converted); labels are integers 0..K-1, K at most
          ``MAX_CLASSES``, at least two classes in y_train; indices unique.
          Anything else raises DataError naming the array.
========  ==================================================================

``cifar10-subset``: real CIFAR-10 images that ship with the project
(``data/cifar10-subset.npz``, md5-checked, no ``path``; see
:mod:`regutils.cifar_subset`): the first 1,017 images of each training batch
and of the test batch, 5,085 train / 1,017 test, canonical CIFAR-10 indices.

Images are scaled to [0, 1], resized (bilinear) to the side the architecture
needs, and normalized per channel (the CIFAR constants for CIFAR, the
training-set statistics otherwise). Options for the teaching chapters:
``label_noise`` (that fraction of training labels replaced by a different
random class, drawn with ``data_seed``), ``random_inputs`` (training images
replaced by Gaussian noise), ``train_size`` / ``test_size`` (stratified
subsets, drawn with ``data_seed``), ``train_keep`` (positions of the training
samples kept, after subsetting: a pruned training set). This book's training augmentation
(4-pixel zero-padded random crop and horizontal flip; the paper does not describe its augmentation) is applied batch-wise
on the device by :func:`augment`; ``augment=None`` means on for CIFAR, off
for digits.
"""
from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from .validation import Bool, Int, OneOf, Real, check_fields

DATASETS = ("digits", "cifar10", "cifar100", "cifar10-subset", "npz")
CIFAR_STATS = {  # per-channel mean and std of the training images
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
CIFAR_STATS["cifar10-subset"] = CIFAR_STATS["cifar10"]  # its images are CIFAR-10's
DIGITS_TEST_FRACTION = 0.25
PATHLESS = ("digits", "cifar10-subset")  # data sets that ship with the project: no path
MAX_CLASSES = 10_000
MAX_SEED = 2**32 - 1
_ZIP_MAGIC, _NPY_MAGIC = (b"PK\x03\x04", b"PK\x05\x06"), b"\x93NUMPY"


class DataError(ValueError):
    """Bad data or data options, raised before any training."""


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "digits"
    path: str | None = None  # npz file, or torchvision root for CIFAR
    download: bool = False
    augment: bool | None = None  # None: on for CIFAR-style colour data, off for digits
    label_noise: float = 0.0  # fraction of training labels replaced
    random_inputs: bool = False  # training images replaced by Gaussian noise
    train_size: int | None = None  # stratified subset sizes; None keeps all
    test_size: int | None = None
    data_seed: int = 0  # draws noise and subsets
    train_keep: tuple[int, ...] | None = None  # positions of the training samples kept (pruning); None keeps all

    CONSTRAINTS: ClassVar[dict] = {
        "dataset": OneOf(DATASETS),
        "download": Bool(),
        "augment": Bool(none=True),  # None: on for CIFAR-style colour data, off for digits
        "label_noise": Real(0, 1),
        "random_inputs": Bool(),
        "train_size": Int(1, none=True, strict=True),
        "test_size": Int(1, none=True, strict=True),
        "data_seed": Int(0, MAX_SEED, strict=True),
    }

    def validate(self) -> "DataConfig":
        check_fields(self, self.CONSTRAINTS, DataError)
        if self.dataset == "npz" and not self.path:
            raise DataError("dataset='npz' needs path= the .npz file")
        if self.dataset in PATHLESS and self.path is not None:
            raise DataError(f"path={self.path!r} is not used by dataset={self.dataset!r}, which ships with the project "
                            "and takes no path; drop it (for another file use dataset='npz')")
        if self.train_keep is not None and len(self.train_keep) == 0:
            raise DataError("train_keep is empty: pruning must keep at least one training sample")
        return self

    def key(self) -> dict:
        """The fields that define the data (the path is where it lives, not what it is)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("path", "download")}


@dataclass
class Data:
    name: str
    x_train: torch.Tensor  # float32 (N, C, H, W), normalized
    y_train: torch.Tensor  # int64 (N,), the labels trained on (noisy where label_noise > 0)
    x_test: torch.Tensor
    y_test: torch.Tensor
    index_train: np.ndarray  # int64 (N,), index in the source data set
    index_test: np.ndarray
    classes: list[str]
    augment: bool
    noisy_train: np.ndarray  # bool (N,), label replaced by noise
    images_train: np.ndarray  # uint8 (N, H, W[, C]) as loaded, for figures
    images_test: np.ndarray
    fingerprint: str  # sha256 of everything above that training sees

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        return self.x_train.shape[1]


# --- sources: each returns (x_train, y_train, x_test, y_test, index_train, index_test, classes)


def _digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    images = np.round(d.images * (255 / 16)).astype(np.uint8)
    idx = np.arange(len(d.target))
    i_tr, i_te = train_test_split(idx, test_size=DIGITS_TEST_FRACTION, stratify=d.target, random_state=0)
    i_tr, i_te = np.sort(i_tr), np.sort(i_te)
    classes = [str(c) for c in d.target_names]
    return images[i_tr], d.target[i_tr], images[i_te], d.target[i_te], i_tr, i_te, classes


def _cifar(name: str, root: str | None, download: bool):
    import torchvision

    cls = {"cifar10": torchvision.datasets.CIFAR10, "cifar100": torchvision.datasets.CIFAR100}[name]
    root = root or str(Path.home() / ".cache" / "regutils" / "data")
    try:
        tr, te = cls(root, train=True, download=download), cls(root, train=False, download=download)
    except RuntimeError as err:  # torchvision says "Dataset not found or corrupted"
        raise DataError(f"{name} not found under {root!r}; pass download=True (--download) or path=") from err
    return (tr.data, np.asarray(tr.targets), te.data, np.asarray(te.targets),
            np.arange(len(tr.data)), np.arange(len(te.data)), list(tr.classes))


def _read_npz(path: str) -> dict[str, np.ndarray]:
    """The arrays of the npz at ``path``; DataError saying what the file is when it is not one."""
    p = Path(path)
    if p.is_dir():
        raise DataError(f"npz file {path!r} is a directory; expected an .npz file")
    if not p.exists():
        raise DataError(f"npz file {path!r} does not exist")
    try:
        with open(p, "rb") as f:
            head = f.read(6)
    except OSError as err:
        raise DataError(f"npz file {path!r} cannot be read ({err.strerror})") from err
    if head.startswith(_NPY_MAGIC):
        raise DataError(f"{path} is a single .npy array; expected an .npz archive of x_train, y_train, x_test, y_test "
                        "(np.savez)")
    if not head.startswith(_ZIP_MAGIC):
        raise DataError(f"{path} is not an .npz archive (it does not start like a zip file); expected one written "
                        "by np.savez with x_train, y_train, x_test, y_test")
    try:
        with np.load(p, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as err:  # noqa: BLE001  (a damaged zip raises many kinds)
        raise DataError(f"{path} is a damaged or unreadable .npz archive ({type(err).__name__}: {err}); "
                        "object arrays are not accepted") from err


def _images(path: str, name: str, x: np.ndarray) -> np.ndarray:
    """Validated uint8 images from uint8 (0..255) or float (0..1) ones."""
    if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[-1] not in (1, 3)):
        raise DataError(f"{path}: {name} has shape {x.shape}; expected (N, H, W) or (N, H, W, C) with C in 1, 3")
    if x.size == 0:
        raise DataError(f"{path}: {name} is empty (shape {x.shape})")
    if np.issubdtype(x.dtype, np.floating):
        bad = ~np.isfinite(x)
        if bad.any():
            raise DataError(f"{path}: {name} holds {int(bad.sum())} NaN or infinite pixels; expected floats in [0, 1]")
        if x.min() < 0 or x.max() > 1:
            raise DataError(f"{path}: {name} holds float pixels in [{x.min():g}, {x.max():g}]; float images must "
                            "lie in [0, 1] (divide 0..255 values by 255, or store uint8)")
        return np.round(x * 255).astype(np.uint8)
    if x.dtype != np.uint8:
        raise DataError(f"{path}: {name} has dtype {x.dtype}; expected uint8 (0..255) or float (0..1)")
    return x


def _labels(path: str, name: str, y: np.ndarray, n: int) -> np.ndarray:
    if y.ndim != 1 or len(y) != n:
        raise DataError(f"{path}: {name} has shape {y.shape}; expected ({n},)")
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{path}: {name} has dtype {y.dtype}; expected integers")
    if y.min() < 0 or y.max() >= MAX_CLASSES:
        raise DataError(f"{path}: {name} holds labels outside 0..{MAX_CLASSES - 1} (min {y.min()}, max {y.max()}); "
                        f"labels are classes 0..K-1 with K at most {MAX_CLASSES:,}")
    return y.astype(np.int64)


def _indices(path: str, name: str, arrays: dict, n: int) -> np.ndarray:
    if name not in arrays:
        return np.arange(n)
    index = arrays[name]
    if index.shape != (n,) or not np.issubdtype(index.dtype, np.integer):
        raise DataError(f"{path}: {name} has shape {index.shape} and dtype {index.dtype}; expected ({n},) integers")
    if len(np.unique(index)) != n:
        raise DataError(f"{path}: {name} repeats indices; each sample needs its own")
    return index.astype(np.int64)


def _npz(path: str):
    arrays = _read_npz(path)
    missing = {"x_train", "y_train", "x_test", "y_test"} - set(arrays)
    if missing:
        raise DataError(f"{path}: missing arrays {sorted(missing)}; an npz needs x_train, y_train, x_test, y_test")
    out = []
    for split in ("train", "test"):
        x = _images(path, f"x_{split}", arrays[f"x_{split}"])
        y = _labels(path, f"y_{split}", arrays[f"y_{split}"], len(x))
        out += [x, y, _indices(path, f"index_{split}", arrays, len(x))]
    x_tr, y_tr, i_tr, x_te, y_te, i_te = out
    if x_tr.shape[1:] != x_te.shape[1:]:
        raise DataError(f"{path}: train images {x_tr.shape[1:]} and test images {x_te.shape[1:]} differ in shape")
    if len(np.unique(y_tr)) < 2:
        raise DataError(f"{path}: y_train holds a single class ({y_tr[0]}); classification needs at least two")
    k = int(max(y_tr.max(), y_te.max())) + 1
    if "classes" in arrays:
        names = arrays["classes"]
        if names.ndim != 1 or not 2 <= len(names) <= MAX_CLASSES:
            raise DataError(f"{path}: classes has shape {names.shape}; expected (K,) names, 2 <= K <= {MAX_CLASSES:,}")
        classes = [str(c) for c in names]
    else:
        classes = [str(c) for c in range(k)]
    return x_tr, y_tr, x_te, y_te, i_tr, i_te, classes


def _cifar10_subset():
    return _npz(str(shipped_subset()))


# --- the CIFAR-10 subset that ships with the project (made by :mod:`regutils.cifar_subset`)

SHIPPED_SUBSET = Path(__file__).resolve().parents[1] / "data" / "cifar10-subset.npz"
SUBSET_MD5 = "3737c266d30285cdc36989605da0c457"


def file_md5(path: str | os.PathLike) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def shipped_subset() -> Path:
    """The path of the shipped subset, its md5 checked (once per process and path)."""
    return checked_subset(SHIPPED_SUBSET)


@functools.lru_cache(maxsize=None)
def checked_subset(path: Path) -> Path:
    """``path`` when it holds the shipped subset byte for byte; DataError naming the remedy otherwise."""
    if not path.is_file():
        raise DataError(f"the CIFAR-10 subset {path} is missing: it ships with the project's repository "
                        "(a clone has it); or rebuild it with `python -m regutils data cifar10-subset --from ROOT "
                        f"-o {path}`")
    digest = file_md5(path)
    if digest != SUBSET_MD5:
        raise DataError(f"the CIFAR-10 subset {path} was altered (md5 {digest}, expected {SUBSET_MD5}); restore it "
                        f"with `git checkout -- data/` or rebuild it with `python -m regutils data cifar10-subset "
                        f"--from ROOT -o {path}`")
    return path


# --- transforms


def _to_tensor(images: np.ndarray, size: int | None) -> torch.Tensor:
    x = torch.from_numpy(images).float().div_(255)
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    if size is not None and x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x.contiguous()


def _stratified_subset(y: np.ndarray, size: int | None, rng: np.random.Generator, what: str) -> np.ndarray:
    if size is None or size == len(y):
        return np.arange(len(y))
    if size > len(y):
        raise DataError(f"{what}={size} exceeds the {len(y)} samples available")
    k = len(np.unique(y))
    if not k <= size <= len(y) - k:  # a stratified split leaves every class on both sides
        raise DataError(f"{what}={size} cannot be a stratified subset of {len(y)} samples in {k} classes; "
                        f"allowed: {k}..{len(y) - k}, or {len(y)} (all)")
    from sklearn.model_selection import train_test_split

    keep, _ = train_test_split(np.arange(len(y)), train_size=size, stratify=y,
                               random_state=int(rng.integers(2**31)))
    return np.sort(keep)


def _fingerprint(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(np.ascontiguousarray(p.numpy() if isinstance(p, torch.Tensor) else p).tobytes())
    return h.hexdigest()


def load(config: DataConfig, image_size: int | None = None) -> Data:
    """Load, check, subset, perturb and normalize the data set that ``config`` names."""
    config.validate()
    if config.dataset == "digits":
        raw = _digits()
    elif config.dataset == "npz":
        raw = _npz(config.path)
    elif config.dataset == "cifar10-subset":
        raw = _cifar10_subset()
    else:
        raw = _cifar(config.dataset, config.path, config.download)
    x_tr, y_tr, x_te, y_te, i_tr, i_te, classes = raw
    k = len(classes)
    for split, y in (("y_train", y_tr), ("y_test", y_te)):
        if y.min() < 0 or y.max() >= k:
            raise DataError(f"{split} holds labels outside 0..{k - 1} (min {y.min()}, max {y.max()})")

    rng = np.random.default_rng(config.data_seed)
    keep_tr = _stratified_subset(y_tr, config.train_size, rng, "train_size")
    keep_te = _stratified_subset(y_te, config.test_size, rng, "test_size")
    x_tr, y_tr, i_tr = x_tr[keep_tr], y_tr[keep_tr].astype(np.int64), i_tr[keep_tr]
    x_te, y_te, i_te = x_te[keep_te], y_te[keep_te].astype(np.int64), i_te[keep_te]

    if config.train_keep is not None:
        keep = np.asarray(config.train_keep, dtype=np.int64)
        if keep.min() < 0 or keep.max() >= len(y_tr) or len(np.unique(keep)) != len(keep):
            raise DataError(f"train_keep must hold distinct positions in 0..{len(y_tr) - 1}")
        x_tr, y_tr, i_tr = x_tr[keep], y_tr[keep], i_tr[keep]

    # label noise: a different class for each chosen sample, so the fraction is exact
    noisy = np.zeros(len(y_tr), bool)
    noisy[rng.permutation(len(y_tr))[: round(config.label_noise * len(y_tr))]] = True
    y_tr = y_tr.copy()
    y_tr[noisy] = (y_tr[noisy] + rng.integers(1, k, noisy.sum())) % k

    xt, xe = _to_tensor(x_tr, image_size), _to_tensor(x_te, image_size)
    if config.dataset in CIFAR_STATS:
        mean, std = (torch.tensor(s).view(1, -1, 1, 1) for s in CIFAR_STATS[config.dataset])
    else:
        mean, std = xt.mean((0, 2, 3), keepdim=True), xt.std((0, 2, 3), keepdim=True).clamp_min(1e-6)
    xt, xe = (xt - mean) / std, (xe - mean) / std
    if config.random_inputs:  # Gaussian inputs with the statistics of the normalized data
        xt = torch.from_numpy(rng.standard_normal(xt.shape, dtype=np.float32))

    augment = config.augment if config.augment is not None else config.dataset != "digits"
    ytr, yte = torch.from_numpy(y_tr), torch.from_numpy(y_te)
    # the source pixels and what is done to them, not the resized floats: their rounding follows the thread count
    fingerprint = _fingerprint(x_tr, ytr, x_te, yte, i_tr, i_te, np.array([augment, image_size or 0]))
    return Data(config.dataset, xt, ytr, xe, yte, i_tr, i_te, classes, augment, noisy, x_tr, x_te, fingerprint)


def augment(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop from a zero-padded batch and random horizontal flip, one draw per image.

    ``generator`` lives on the CPU so a seed gives the same crops on any device.
    """
    n, _, h, w = x.shape
    shift = torch.randint(0, 2 * pad + 1, (2, n), generator=generator).to(x.device)
    flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
    rows = shift[0, :, None] + torch.arange(h, device=x.device)  # (n, h)
    cols = shift[1, :, None] + torch.arange(w, device=x.device)  # (n, w)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    padded = F.pad(x, (pad, pad, pad, pad))
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]
