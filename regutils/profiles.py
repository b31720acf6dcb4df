"""Profiles: the sizes at which the book is built, and the settings every chapter reads.

    from regutils.profiles import settings
    s = settings("default", arch="lenet", runs=3)     # a profile, any field overridden
    s.run_config()                                    # the RunConfig of the main runs
    s.run_config(arch="mlp", optimizer="adamax")      # a variant for a robustness plot

=================  ==========================================================
smoke              seconds per chapter on a stratified 1,000 / 300 share of
                   the real CIFAR-10 subset: what CI executes
default            real CIFAR-10 images that ship with the project (5,085 /
                   1,017, ``data/cifar10-subset.npz``), ``convnet3`` (the
                   recipe of ``book/recipe.md``), CPU; its runs ship as the
                   trace bundle ``traces/default``
digits             scikit-learn digits (embedded), CPU; the whole book from
                   scratch in minutes on two cores, for teaching and quick
                   experiments
paper              CIFAR-10 from torchvision, ResNet-110, 200 epochs, 10 runs,
                   the paper's schedule; meant for a GPU
=================  ==========================================================

Chapter-specific sizes (for example the label-noise levels of the
generalization chapter) are per profile too: :func:`chapter_sizes`.

Every field of :class:`Settings` is a notebook parameter: ``None`` in a
notebook's parameters cell means "the profile's value".
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace

from . import models
from .data import DATASETS, DataConfig
from .loop import DEFAULT_LR, OPTIMIZERS, SCHEDULES, RunConfig


@dataclass(frozen=True)
class Settings:
    profile: str
    dataset: str = "digits"
    data_path: str | None = None
    download: bool = False
    train_size: int | None = None  # a stratified share of the training images; None: all
    test_size: int | None = None
    arch: str = "small_cnn"
    epochs: int = 30
    runs: int = 10
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float | None = None  # the main runs' rate; None: optimizer_lrs' rate of ``optimizer``
    weight_decay: float = 5e-4
    nesterov: bool = False  # SGD's Nesterov momentum
    schedule: str = "multistep"
    device: str = "auto"
    archs: tuple[str, ...] = ("small_cnn", "mlp", "lenet")  # robustness across architectures
    optimizers: tuple[str, ...] = ("sgd", "adagrad", "adamax")  # robustness across optimizers
    robustness_runs: int = 3  # runs per architecture / optimizer
    # {optimizer: initial learning rate}; an optimizer left out gets train.DEFAULT_LR's rate
    optimizer_lrs: dict[str, float] = field(default_factory=dict)
    sync_runs: int = 10  # runs for long-term synchronization
    prune_fractions: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8)
    prune_radii: tuple[float, ...] = (0.5, 1.0, 2.0)
    subset_n: tuple[int, ...] = (2, 5, 10, 20)  # samples per angular bin (testing acceleration)
    # networks ranked in testing acceleration (paper §4.2), next to six scikit-learn models
    testing_archs: tuple[str, ...] = ("small_cnn", "mlp", "lenet")
    seed: int = 0
    # learnability chapter: the models whose sample-wise learnability is compared (Lee et al. use VGG-16,
    # ResNet-20 and MobileNet v1); None: the first three of `archs`
    learn_archs: tuple[str, ...] | None = None

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset={self.dataset!r} is unknown; allowed: {', '.join(DATASETS)}")
        known = models.names()
        for a in (self.arch, *self.archs, *self.testing_archs, *(self.learn_archs or ())):
            if a not in known:
                raise ValueError(f"arch={a!r} is unknown; allowed: {', '.join(known)}")
        for o in (self.optimizer, *self.optimizers):
            if o not in OPTIMIZERS:
                raise ValueError(f"optimizer={o!r} is unknown; allowed: {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule={self.schedule!r} is unknown; allowed: {', '.join(SCHEDULES)}")
        if not isinstance(self.optimizer_lrs, dict):
            raise ValueError(f"optimizer_lrs={self.optimizer_lrs!r} must be a dict {{optimizer: learning rate}}")
        object.__setattr__(self, "optimizer_lrs", dict(self.optimizer_lrs))  # its own copy: settings stay fixed
        for o, rate in self.optimizer_lrs.items():
            if o not in OPTIMIZERS:
                raise ValueError(f"optimizer_lrs names optimizer {o!r}, unknown; allowed: {', '.join(OPTIMIZERS)}")
            if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
                raise ValueError(f"optimizer_lrs[{o!r}]={rate!r} must be a positive number")
        for name in ("epochs", "runs", "batch_size", "robustness_runs", "sync_runs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name}={value!r} must be a positive integer")
        if any(not 0 <= f < 1 for f in self.prune_fractions):
            raise ValueError(f"prune_fractions={self.prune_fractions} must lie in [0, 1)")
        if any(not r > 0 for r in self.prune_radii):
            raise ValueError(f"prune_radii={self.prune_radii} must be positive")
        if any(isinstance(n, bool) or not isinstance(n, int) or n <= 0 for n in self.subset_n):
            raise ValueError(f"subset_n={self.subset_n} must be positive integers")
        if self.dataset == "npz" and not self.data_path:
            raise ValueError("dataset='npz' needs data_path= the .npz file")
        if self.dataset == "cifar10-subset" and self.data_path:
            raise ValueError("dataset='cifar10-subset' ships with the project and takes no data_path "
                             f"(got {self.data_path!r}); for another file use dataset='npz'")

    def data_config(self, **changes) -> DataConfig:
        changes = dict(dict(train_size=self.train_size, test_size=self.test_size), **changes)
        return DataConfig(self.dataset, path=self.data_path, download=self.download, **changes)

    def learning_rate(self, optimizer: str | None = None) -> float:
        """The initial learning rate of ``optimizer`` (None: the main runs' optimizer) in this profile.

        ``lr``, when set, is the rate of the main runs' optimizer; every other rate comes from
        ``optimizer_lrs``, and an optimizer missing there gets :data:`regutils.loop.DEFAULT_LR`'s.
        """
        optimizer = self.optimizer if optimizer is None else optimizer
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer={optimizer!r} is unknown; allowed: {', '.join(OPTIMIZERS)}")
        if optimizer == self.optimizer and self.lr is not None:
            return self.lr
        return self.optimizer_lrs.get(optimizer, DEFAULT_LR[optimizer])

    def run_config(self, **changes) -> RunConfig:
        """The RunConfig of the profile's main runs, with ``changes`` (RunConfig fields) applied.

        Changing the optimizer changes the rate to that optimizer's (:meth:`learning_rate`) unless
        ``lr`` is changed too.
        """
        optimizer = changes.get("optimizer", self.optimizer)
        config = RunConfig(self.data_config(), arch=self.arch, epochs=self.epochs, batch_size=self.batch_size,
                           optimizer=optimizer, lr=self.learning_rate(optimizer), weight_decay=self.weight_decay,
                           nesterov=self.nesterov and optimizer == "sgd", schedule=self.schedule, seed=self.seed)
        return replace(config, **changes).validate()

    def describe(self) -> str:
        data = self.dataset if self.dataset != "npz" else os.path.basename(self.data_path or "")
        shares = [f"{size:,} {split}" for split, size in (("training", self.train_size), ("test", self.test_size)) if size]
        data += f" ({' and '.join(shares)} images, a stratified share)" if shares else ""
        return f"{data}, {self.arch}, {self.optimizer}, {self.epochs} epochs, {self.runs} runs ({self.profile} profile)"


PROFILES: dict[str, dict] = {
    "smoke": dict(dataset="cifar10-subset", train_size=1000, test_size=300, arch="mlp", epochs=6, runs=2,
                  archs=("mlp", "small_cnn"), optimizers=("sgd", "adamax"), robustness_runs=2, sync_runs=3,
                  prune_fractions=(0.0, 0.5), prune_radii=(1.0,), subset_n=(2, 5), testing_archs=("mlp", "small_cnn")),
    # the recipe chosen in book/recipe.md: Nesterov SGD under a one-cycle schedule peaking at 0.1
    "default": dict(dataset="cifar10-subset", arch="convnet3", epochs=20, runs=6, nesterov=True, schedule="onecycle",
                    archs=("convnet3", "convnet3x2", "convnet3_half"), robustness_runs=3, sync_runs=6,
                    prune_fractions=(0.0, 0.4), prune_radii=(0.5, 1.0, 2.0), subset_n=(5, 10, 20, 30),
                    testing_archs=("convnet3", "convnet3x2", "convnet3_half")),
    # the old default, trained from scratch in minutes: Fig. 12 at 40 to 80 % removed
    "digits": dict(runs=8, sync_runs=8, robustness_runs=3, prune_fractions=(0.0, 0.4, 0.6, 0.8)),
    "paper": dict(dataset="cifar10", download=True, arch="resnet110", epochs=200, runs=10,
                  archs=("resnet20", "resnet32", "resnet110", "densenet_bc_100_12"), robustness_runs=10,
                  sync_runs=20, prune_fractions=(0.0, 0.2, 0.4, 0.6, 0.8), prune_radii=(0.5, 1.0, 2.0),
                  subset_n=(5, 10, 15, 20, 25, 30, 35, 40, 45, 49),  # the paper's n <= 49
                  # the 11 networks of the paper's Table 3
                  testing_archs=("lenet", "nin", "vgg19_bn", "resnet20", "resnet32", "resnet110", "wrn16_8",
                                 "wrn28_10", "efficientnet_b8", "densenet_bc_100_12", "densenet_bc_160_24"),
                  learn_archs=("vgg16_bn", "resnet20", "mobilenet")),
}

# Each optimizer's initial learning rate (Settings.optimizer_lrs), per profile.
OPTIMIZER_LRS = {
    "smoke": {"sgd": 0.1, "adagrad": 0.01, "adamax": 0.002},
    # sgd: the recipe's peak; adagrad, adamax: peaks at which a 4-epoch convnet3 run learns at SGD's pace
    "default": {"sgd": 0.1, "adagrad": 0.02, "adamax": 0.004},
    # sgd: a slow start spreads learning over the epochs, as ResNet-110 does on CIFAR-10; adagrad and
    # adamax: the rates at which a single small_cnn run learns at SGD's pace (epoch-1 training
    # accuracy 0.84 and 0.73 against SGD's 0.69) and ends as accurate (test 0.98)
    "digits": {"sgd": 0.003, "adagrad": 0.003, "adamax": 0.002},
    # sgd: the paper's 0.1; the paper does not state AdaGrad's and AdaMax's rates: the usual defaults
    "paper": {"sgd": 0.1, "adagrad": 0.01, "adamax": 0.002},
}
for _name, _rates in OPTIMIZER_LRS.items():
    PROFILES[_name]["optimizer_lrs"] = _rates


# Chapter parameters whose value depends on the profile: {chapter: {parameter: {profile: value}}}, with
# "*" for every profile not named. A notebook's None means this table's value.
CHAPTER_SIZES: dict[str, dict[str, dict]] = {
    "arpit": {
        # the memorization runs train on a share of the images: random labels must be fitted within the
        # epochs a CPU affords (None: the profile's own training set)
        "train_size": {"default": 1000, "digits": 600, "*": None},
        # double backpropagation per class and sample, an adversarial search per sample: seeded shares
        # keep both to a minute on a CPU (None: every training sample)
        "per_class_samples": {"paper": None, "*": 10},
        "csr_samples": {"paper": None, "*": 100},
        "fit_fractions": {"smoke": (0.1, 0.25), "digits": (0.1, 0.2, 0.4), "*": (0.05, 0.1, 0.2, 0.4)},
        "noise_levels": {"smoke": (0.0, 0.4), "digits": (0.0, 0.4, 0.8), "*": (0.0, 0.2, 0.4, 0.8)},
    },
    # scikit-learn models of Table 3 fitted on a stratified share of the training images (None: all, at most 10,000)
    "testing": {"sklearn_train_size": {"default": 2000, "*": None}},
    "shallow_deep": {"sklearn_train_size": {"default": 2000, "*": None}},
    "easy_hard": {"keep_fractions": {"smoke": (0.25,), "default": (0.25,), "*": (0.1, 0.25, 0.5)}},
}


def chapter_sizes(profile: str, chapter: str) -> dict:
    """The profile's values of ``chapter``'s profile-dependent parameters (:data:`CHAPTER_SIZES`)."""
    if profile not in PROFILES:
        raise ValueError(f"profile={profile!r} does not exist; allowed: {', '.join(PROFILES)}")
    return {name: by_profile.get(profile, by_profile["*"])
            for name, by_profile in CHAPTER_SIZES.get(chapter, {}).items()}


def settings(profile: str = "default", **overrides) -> Settings:
    """The profile's settings with every override that is not None applied."""
    if profile not in PROFILES:
        raise ValueError(f"profile={profile!r} does not exist; allowed: {', '.join(PROFILES)}")
    names = {f.name for f in fields(Settings)}
    unknown = set(overrides) - names
    if unknown:
        raise ValueError(f"unknown parameters {sorted(unknown)}; allowed: {', '.join(sorted(names - {'profile'}))}")
    values = dict(PROFILES[profile], **{k: v for k, v in overrides.items() if v is not None})
    tuples = {f.name for f in fields(Settings) if isinstance(f.default, tuple)}
    for k, v in values.items():
        if k in tuples and not isinstance(v, (list, tuple)):
            raise ValueError(f"{k}={v!r} must be a list, e.g. {k}=[{v!r}]")
        if isinstance(v, list):  # papermill passes tuples as lists
            values[k] = tuple(v)
    return Settings(profile=profile, **values)


