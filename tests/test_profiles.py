import pytest

from regutils.data import DataConfig
from regutils.profiles import CHAPTER_PARAMETERS, PROFILES, Settings, chapter_parameters, chapter_settings, settings
from regutils.loop import DEFAULT_LR, PAPER_MILESTONES


def test_every_profile_builds_a_valid_run_config():
    for name in PROFILES:
        s = settings(name)
        config = s.run_config()
        assert config.arch == s.arch and config.epochs == s.epochs and config.data.dataset == s.dataset


def test_none_means_the_profile_value_and_anything_else_overrides():
    base = settings("smoke")
    s = settings("smoke", arch=None, runs=5, archs=["mlp", "lenet"])
    assert s.arch == base.arch and s.runs == 5
    assert s.archs == ("mlp", "lenet")  # papermill passes lists; settings keep tuples (hashable)


def test_run_config_changes_apply_and_are_validated():
    s = settings("default")
    assert s.run_config(arch="mlp", seed=7).arch == "mlp"
    with pytest.raises(ValueError, match="arch"):
        s.run_config(arch="nope")


def test_paper_profile_is_the_papers_protocol():
    s = settings("paper")
    config = s.run_config()
    assert (s.dataset, s.arch, s.epochs, s.runs) == ("cifar10", "resnet110", 200, 10)
    assert config.learning_rate == 0.1 and config.lr_milestones == [81, 122]
    assert [round(f * 200) for f in PAPER_MILESTONES] == [81, 122]


def test_paper_profile_ranks_the_papers_networks_and_n_up_to_49():
    s = settings("paper")
    assert len(s.testing_archs) == 11 and len(set(s.testing_archs)) == 11  # with six scikit-learn models: 17
    assert max(s.subset_n) == 49 and 30 in s.subset_n


@pytest.mark.parametrize("kwargs, message", [
    ({"profile": "huge"}, "profile"),
    ({"runs": 0}, "runs"),
    ({"epochs": -3}, "epochs"),
    ({"batch_size": True}, "batch_size"),
    ({"archs": ("mlp", "nope")}, "arch"),
    ({"learn_archs": ("mlp", "nope")}, "arch"),
    ({"optimizers": ("sgd", "rmsprop")}, "optimizer"),
    ({"prune_fractions": (0.2, 1.5)}, "prune_fractions"),
    ({"prune_radii": (0.0,)}, "prune_radii"),
    ({"subset_n": (5, -1)}, "subset_n"),
    ({"testing_archs": ("lenet", "efficientnet_b9")}, "arch"),
    ({"dataset": "mnist"}, "dataset"),
    ({"dataset": "npz", "data_path": None}, "data_path"),
    ({"colour": "red"}, "colour"),
])
def test_bad_settings_name_the_parameter(kwargs, message):
    profile = kwargs.pop("profile", "default")
    with pytest.raises(ValueError, match=message):
        settings(profile, **kwargs)


def test_describe_names_data_arch_and_size():
    text = settings("smoke").describe()
    assert "cifar10-subset" in text and "mlp" in text and "smoke" in text
    assert "digits" in settings("digits").describe()
    assert isinstance(settings("default"), Settings)


def test_default_and_smoke_train_on_the_shipped_images_smoke_on_a_share():
    default, smoke = settings("default"), settings("smoke")
    assert default.run_config().data == DataConfig("cifar10-subset")
    assert smoke.run_config().data == DataConfig("cifar10-subset", train_size=1000, test_size=300)
    # a change of data keeps the profile's share unless it names its own
    assert smoke.data_config(label_noise=0.5).train_size == 1000
    assert smoke.data_config(train_size=None).train_size is None


def test_nesterov_applies_to_sgd_only():
    s = settings("default")
    assert s.run_config().nesterov and s.run_config().optimizer == "sgd"
    assert not s.run_config(optimizer="adamax").nesterov
    assert not settings("digits").run_config().nesterov


def test_chapter_parameters_fall_back_to_every_profiles_value():
    assert chapter_parameters("smoke", "easy_hard")["keep_fractions"] == (0.25,)
    assert chapter_parameters("paper", "easy_hard")["keep_fractions"] == (0.1, 0.25, 0.5)
    assert chapter_parameters("paper", "easy_hard")["remove_fraction"] == 0.3
    assert chapter_parameters("paper", "setup") == {}
    with pytest.raises(ValueError, match="profile"):
        chapter_parameters("nope", "arpit")


def test_every_chapter_parameter_has_a_value_for_every_profile():
    for chapter, params in CHAPTER_PARAMETERS.items():
        for name, by_profile in params.items():
            assert "*" in by_profile, (chapter, name)
            assert set(by_profile) <= set(PROFILES) | {"*"}, (chapter, name)


def test_chapter_settings_split_overrides_between_settings_and_chapter_parameters():
    s, p = chapter_settings("memorization", "smoke", {"sync_runs": 2, "probe_sizes": [100], "probe_mode": None})
    assert s.sync_runs == 2 and s.profile == "smoke"
    assert p.probe_sizes == (100,)  # a list stands for a tuple
    assert p.probe_mode == "replace"  # None keeps the declared value
    assert p.table1_repeats == 50


@pytest.mark.parametrize(("overrides", "message"), [
    ({"csr_steps": 5}, "unknown parameters \\['csr_steps'\\] of chapter 'memorization'"),
    ({"probe_sizes": 100}, "probe_sizes=100 must be a tuple"),
    ({"table1_repeats": 2.5}, "table1_repeats=2.5 must be a int"),
    ({"table1_repeats": True}, "table1_repeats=True must be a int"),
    ({"probe_mode": 3}, "probe_mode=3 must be a str"),
    ({"epochs": 0}, "epochs=0 must be a positive integer"),
])
def test_chapter_settings_refuse_unknown_names_and_wrong_types(overrides, message):
    with pytest.raises(ValueError, match=message):
        chapter_settings("memorization", "smoke", overrides)


def test_every_optimizer_gets_its_profile_rate():
    for name in PROFILES:
        s = settings(name)
        for o in s.optimizers:
            assert s.run_config(optimizer=o).lr == s.learning_rate(o) == s.optimizer_lrs[o]
        assert s.run_config().lr == s.optimizer_lrs[s.optimizer]


def test_optimizer_rates_reach_run_config():
    s = settings("smoke", optimizer_lrs={"sgd": 0.05, "adamax": 0.001})
    assert s.run_config().learning_rate == 0.05
    assert s.run_config(optimizer="adamax").learning_rate == 0.001
    assert s.run_config(optimizer="adagrad").learning_rate == DEFAULT_LR["adagrad"]  # not in the mapping
    assert s.run_config(optimizer="adamax", lr=0.3).learning_rate == 0.3  # an explicit change wins
    # lr is the main optimizer's rate only: the others keep theirs
    s = settings("smoke", lr=0.2, optimizer_lrs={"sgd": 0.05, "adamax": 0.001})
    assert s.run_config().learning_rate == 0.2 and s.run_config(optimizer="adamax").learning_rate == 0.001
    s = settings("smoke", optimizer="adamax", optimizer_lrs={"sgd": 0.05, "adamax": 0.001})
    assert s.run_config().learning_rate == 0.001 and s.run_config(optimizer="sgd").learning_rate == 0.05


@pytest.mark.parametrize("rates, message", [
    ({"rmsprop": 0.1}, "rmsprop"),
    ({"sgd": 0.0}, r"optimizer_lrs\['sgd'\]=0.0 must be a finite number in \(0, 10\]"),
    ({"sgd": "fast"}, r"optimizer_lrs\['sgd'\]='fast' must be a finite number in \(0, 10\]"),
    ({"rmsprop": 0.1}, "optimizer_lrs key='rmsprop' must be one of sgd"),
    ([("sgd", 0.1)], "dict"),
])
def test_bad_optimizer_rates_name_the_parameter(rates, message):
    with pytest.raises(ValueError, match=message):
        settings("smoke", optimizer_lrs=rates)


def test_learnability_models():
    # the paper profile compares the networks of Lee et al.; the others leave the choice to the chapter
    assert settings("paper").learn_archs == ("vgg16_bn", "resnet20", "mobilenet")
    assert all(settings(name).learn_archs is None for name in PROFILES if name != "paper")
    assert settings("smoke", learn_archs=["mlp", "lenet"]).learn_archs == ("mlp", "lenet")
