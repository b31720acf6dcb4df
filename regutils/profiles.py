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

Chapter parameters (for example the label-noise levels of the
generalization chapter) are declared here too, per profile where their
value depends on it: :data:`CHAPTER_PARAMETERS`. A chapter's parameters cell
holds ``profile`` and ``overrides``, a dict of any setting or chapter
parameter by name; :func:`chapter_settings` applies it:

    s, p = chapter_settings("pruning", "smoke", {"epochs": 3, "prune_runs": 2})
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields, replace
from types import SimpleNamespace
from typing import ClassVar

from .data import DataConfig
from .loop import DEFAULT_LR, MAX_LR, MAX_RUNS, OPTIMIZERS, RunConfig
from .validation import Each, Int, Real, check, check_fields, is_int

RUN_FIELDS = ("arch", "epochs", "batch_size", "optimizer", "lr", "weight_decay", "nesterov", "schedule", "seed")
DATA_FIELDS = ("dataset", "download", "train_size", "test_size")


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

    # the run and data fields take their constraints from RunConfig and DataConfig: declared once
    CONSTRAINTS: ClassVar[dict] = {
        **{name: RunConfig.CONSTRAINTS[name] for name in RUN_FIELDS},
        **{name: DataConfig.CONSTRAINTS[name] for name in DATA_FIELDS},
        "runs": Int(1, MAX_RUNS, strict=True),
        "robustness_runs": Int(1, MAX_RUNS, strict=True),
        "sync_runs": Int(1, MAX_RUNS, strict=True),
        "archs": Each(RunConfig.CONSTRAINTS["arch"]),
        "testing_archs": Each(RunConfig.CONSTRAINTS["arch"]),
        "learn_archs": Each(RunConfig.CONSTRAINTS["arch"], none=True),
        "optimizers": Each(RunConfig.CONSTRAINTS["optimizer"]),
        "prune_fractions": Each(Real(0, 1, high_open=True)),
        "prune_radii": Each(Real(0, low_open=True)),
        "subset_n": Each(Int(1, strict=True)),
    }

    def __post_init__(self):
        check_fields(self, self.CONSTRAINTS)
        if not isinstance(self.optimizer_lrs, dict):
            raise ValueError(f"optimizer_lrs={self.optimizer_lrs!r} must be a dict {{optimizer: learning rate}}")
        object.__setattr__(self, "optimizer_lrs", dict(self.optimizer_lrs))  # its own copy: settings stay fixed
        for optimizer, rate in self.optimizer_lrs.items():
            check("optimizer_lrs key", optimizer, RunConfig.CONSTRAINTS["optimizer"])
            check(f"optimizer_lrs[{optimizer!r}]", rate, Real(0, MAX_LR, low_open=True))
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


# Every chapter parameter that is not a setting: {chapter: {parameter: {profile: value}}}, "*" standing for
# every profile not named. A notebook's ``overrides`` may change any of them (and any setting), by name.
CHAPTER_PARAMETERS: dict[str, dict[str, dict]] = {
    "arpit": {
        "first_epoch_runs": {"*": None},  # one-epoch runs per condition for easy samples (None: the profile's runs)
        "checkpoints": {"*": None},  # epochs of the models for sensitivity and CSR (None: 1, epochs/3, epochs)
        # the training of this chapter: able to fit random labels within the epochs a CPU affords, at a rate
        # of its own (the profile's rate is tuned for SGD)
        "memorize_optimizer": {"*": "adam"},
        "memorize_lr": {"*": 0.003},
        "memorize_weight_decay": {"*": 0.0},
        "memorize_batch_size": {"*": 32},
        "memorize_schedule": {"*": "constant"},
        # the memorization runs train on a stratified share of the images (None: the profile's training set)
        "train_size": {"default": 1000, "digits": 600, "*": None},
        "csr_radius": {"*": 0.1},  # L-inf radius of the adversarial search, in normalized input units
        "csr_steps": {"*": 10},  # signed-gradient steps of the search (step size 2.5 r / steps)
        # double backpropagation per class and sample, an adversarial search per sample: seeded shares
        # keep both to a minute on a CPU (None: every training sample)
        "per_class_samples": {"paper": None, "*": 10},
        "csr_samples": {"paper": None, "*": 100},
        "fit_fractions": {"smoke": (0.1, 0.25), "digits": (0.1, 0.2, 0.4), "*": (0.05, 0.1, 0.2, 0.4)},
        "fit_epochs": {"*": None},  # epochs of the time-to-fit runs (None: twice the profile's epochs)
        "fit_threshold": {"*": 0.99},  # training accuracy that counts as "fitted"
        "noise_levels": {"smoke": (0.0, 0.4), "digits": (0.0, 0.4, 0.8), "*": (0.0, 0.2, 0.4, 0.8)},
        "noise_epochs": {"*": None},  # epochs of the noisy-label runs (None: twice the profile's epochs)
        "noise_checkpoints": {"*": None},  # epochs of the CSR under noise (None: 1 and 1/12, 1/3, all of them)
        "regularize_noise": {"*": 1.0},  # label noise of the runs with and without regularization
        "regularize_dropout": {"*": 0.5},  # dropout probability on the input of the last linear layer
        "regularize_weight_decay": {"*": 5e-3},  # L2 coefficient (Adam adds it to the gradient)
        "regularize_eps": {"*": None},  # L-inf radius of FGSM adversarial training (None: csr_radius)
        # "without significantly impacting": real validation accuracy at most this far below no regularizer
        "accuracy_tolerance": {"*": 0.02},
    },
    "easy_hard": {
        "early_epochs": {"*": None},  # w: the early stage is epochs 1..w (None: easy_hard.early_window(epochs))
        "remove_fraction": {"*": 0.3},  # share of the training set removed in the removal experiment
        "keep_fractions": {"smoke": (0.25,), "default": (0.25,), "*": (0.1, 0.25, 0.5)},  # compressed sets
        "retrain_runs": {"*": 1},  # runs per retrained training set
    },
    "every_measure": {
        # runs of the main config recording margins, losses and EL2N (RunConfig.record_scores); measures averaged
        "score_runs": {"digits": 3, "paper": 5, "*": 2},
        "el2n_epoch": {"*": None},  # epoch EL2N is read at (None: 10 % of the epochs, at least 1, as Paul et al.)
        # fractions of each class removed (None: the profile's prune_fractions above 0, one at smoke and default;
        # digits keeps its whole-book build to minutes with one)
        "removal_fractions": {"paper": (0.2, 0.4, 0.6), "digits": (0.4,), "*": None},
        "prune_seeds": {"*": 2},  # seeds per strategy and fraction (selection and training): the error bars
        "grand_models": {"paper": 5, "*": 2},  # untrained networks of the runs' seeds GraNd is averaged over
    },
    "memorization": {
        "probe_sizes": {"*": (100, 460)},  # training samples per SVM (the paper's N)
        "table1_repeats": {"*": 50},  # random training sets per test sample and N in Table 1
        "probe_max_test": {"*": 200},  # test samples the multi-class probe evaluates at most
        "probe_repeats": {"*": 3},  # random training sets per test sample in the multi-class probe
        "probe_mode": {"*": "replace"},  # replace: with and without hold N samples each; add: N + the synchronized
        "probe_features": {"*": "auto"},  # auto: ImageNet VGG-19 when its weights load, else the trained network
    },
    "primer": {
        "label_noise": {"*": 0.4},  # exercise 3: fraction of training labels replaced by a wrong class
        "noise_runs": {"*": 1},  # runs of the noisy training
    },
    "pruning": {"prune_runs": {"*": 1}},  # runs trained per pruned setting
    "randomness": {"n_boot": {"*": 1000}},  # bootstrap replicates of the mean between-run correlation
    "representation": {
        "contrast_values": {"*": 3},  # CBTL values shown in the first figure
        "contrast_k": {"*": 4},  # samples with the fewest / most events shown for each value
        "positions": {"*": 10},  # thumbnails placed in the planes
        "ray_step_deg": {"*": 18.0},  # angular sectors of the difficulty-balanced subsets (paper §4.2)
        "min_group": {"*": 5},  # samples a CBTL value needs for its mean events to count in the peak
        # samples per plane in the explorer, a share of each class (None: all): each carries its image into the
        # page, and 400 colour images per plane keep the page under 5 MB
        "explorer_points": {"digits": None, "*": 400},
    },
    "robustness": {
        "n_boot": {"*": 1000},  # bootstrap resamples of the correlations' intervals
        "fig11_tolerance": {"*": 0.1},  # a Fig. 11 number is reproduced within the paper's value +- this
    },
    # scikit-learn models fitted on a stratified share of the training images (None: all, at most 10,000)
    "shallow_deep": {
        "shallow_models": {"*": None},  # names of algorithms.SKLEARN_NAMES (None: the chapter's three)
        "sklearn_train_size": {"default": 2000, "*": None},
    },
    "testing": {
        "subset_seeds": {"*": 20},  # draws of every subset, for the mean and band
        "table3_size": {"*": 400},  # samples of the Table 3 subsets (the paper's 400)
        "sklearn_train_size": {"default": 2000, "*": None},
    },
}


def chapter_parameters(profile: str, chapter: str) -> dict:
    """The profile's value of each of ``chapter``'s parameters (:data:`CHAPTER_PARAMETERS`)."""
    if profile not in PROFILES:
        raise ValueError(f"profile={profile!r} does not exist; allowed: {', '.join(PROFILES)}")
    return {name: by_profile.get(profile, by_profile["*"])
            for name, by_profile in CHAPTER_PARAMETERS.get(chapter, {}).items()}


def check_like(name: str, value, examples) -> None:
    """ValueError unless ``value`` has the type of the first non-None value of ``examples`` (any if none)."""
    example = next((e for e in examples if e is not None), None)
    if example is None or value is None:
        return
    if isinstance(example, bool):
        ok = isinstance(value, bool)
    elif isinstance(example, int):
        ok = is_int(value)
    elif isinstance(example, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    elif isinstance(example, tuple):
        ok = isinstance(value, (list, tuple))
    else:
        ok = isinstance(value, type(example))
    if not ok:
        raise ValueError(f"{name}={value!r} must be a {type(example).__name__} like {example!r}")


def chapter_settings(chapter: str, profile: str = "default", overrides: dict | None = None
                     ) -> tuple[Settings, SimpleNamespace]:
    """The settings and the chapter parameters of ``chapter`` at ``profile``, with ``overrides`` applied.

    ``overrides`` maps names of :class:`Settings` fields or of the chapter's parameters
    (:data:`CHAPTER_PARAMETERS`) to values; a None value keeps the profile's. Lists stand for tuples
    (papermill passes tuples as lists). ValueError on an unknown name or a value of the wrong type.

        s, p = chapter_settings("memorization", "smoke", {"sync_runs": 2, "probe_sizes": [100]})
        s.sync_runs, p.probe_sizes          # 2, (100,)
    """
    overrides = dict(overrides or {})
    params = chapter_parameters(profile, chapter)
    names = {f.name for f in fields(Settings)} - {"profile"}
    unknown = set(overrides) - names - set(params)
    if unknown:
        raise ValueError(f"unknown parameters {sorted(unknown)} of chapter {chapter!r}; allowed: "
                         f"{', '.join(sorted(names | set(params)))}")
    for name in set(overrides) & set(params):
        value = overrides.pop(name)
        if value is not None:
            check_like(name, value, CHAPTER_PARAMETERS[chapter][name].values())
            params[name] = tuple(value) if isinstance(value, list) else value
    return settings(profile, **overrides), SimpleNamespace(**params)


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


