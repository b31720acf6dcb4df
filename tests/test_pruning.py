import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from regutils import density, pruning, sampling
from regutils.data import DataConfig
from regutils.cache import Cache
from regutils.train import RunConfig, get_runs

BASE = RunConfig(DataConfig("digits"), arch="mlp", epochs=2)


def test_density_strategy_depends_on_the_radius():
    # points on a line: at r = 1 the middle one of the left three has the most neighbours (3),
    # at r = 0.5 the two coincident points on the right are the densest (2 each)
    cbtl = np.array([0.0, 0.8, 1.6, 10.0, 10.0])
    events = np.zeros(5)
    assert pruning.kept_indices("density", 0.2, cbtl=cbtl, events=events, radius=1.0).tolist() == [0, 2, 3, 4]
    assert pruning.kept_indices("density", 0.4, cbtl=cbtl, events=events, radius=0.5).tolist() == [0, 1, 2]


def test_forgetting_score_can_differ_from_the_plane():
    cbtl = np.array([30.0, 25.0, 0.0, 28.0])
    events = np.array([2.0, 1.0, 0.0, 3.0])  # sample 2: never learned, 0 events by the paper's definition
    assert pruning.kept_indices("forgetting", 0.25, cbtl=cbtl, events=events).tolist() == [0, 1, 3]
    never_max = np.array([2.0, 1.0, 30.0, 3.0])  # Toneva et al.: never learned counts as most forgotten
    kept = pruning.kept_indices("forgetting", 0.25, cbtl=cbtl, events=events, forgetting=never_max)
    assert kept.tolist() == [0, 2, 3]


@pytest.mark.parametrize("strategy", pruning.STRATEGIES)
@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.8])
def test_pruned_config_keeps_what_prune_keeps(strategy, fraction):
    rng = np.random.default_rng(3)
    cbtl = rng.integers(0, 31, 200) / 1.0
    events = rng.integers(0, 5, 200) / 1.0
    config = pruning.pruned_config(BASE, strategy, fraction, cbtl=cbtl, events=events, radius=2.0, seed=7)
    expected = sampling.prune(fraction, strategy, density=density.density(cbtl, events, 2.0), cbtl=cbtl,
                              events=events, seed=7)
    assert config.data.train_keep == tuple(int(i) for i in expected)
    assert len(config.data.train_keep) == 200 - math.floor(fraction * 200 + 0.5)
    assert replace(config, data=BASE.data) == BASE  # nothing else changes


def test_nothing_removed_is_the_full_sets_config():
    cbtl, events = np.arange(10.0), np.zeros(10)
    for strategy in pruning.STRATEGIES:
        assert pruning.pruned_config(BASE, strategy, 0.0, cbtl=cbtl, events=events) == BASE
    pruned = pruning.pruned_config(BASE, "cbtl", 0.5, cbtl=cbtl, events=events)
    with pytest.raises(ValueError, match="already pruned"):
        pruning.pruned_config(pruned, "cbtl", 0.5, cbtl=cbtl, events=events)


def test_settings_grid():
    grid = pruning.settings_grid(("density", "random"), (0.0, 0.5), (0.5, 1.0))
    assert grid == [("density", 0.0, 0.5), ("density", 0.5, 0.5), ("density", 0.0, 1.0), ("density", 0.5, 1.0),
                    ("random", 0.0, None), ("random", 0.5, None)]
    with pytest.raises(ValueError, match="unknown"):
        pruning.settings_grid(("density", "loss"))
    with pytest.raises(ValueError, match="radius"):
        pruning.settings_grid(("density",), (0.5,), ())


def test_sweep_tabulates_the_runners_results():
    rng = np.random.default_rng(0)
    cbtl, events = rng.integers(0, 31, 100) / 1.0, rng.integers(0, 4, 100) / 1.0
    seen = []

    def runner(config, runs):  # accuracy = share kept, the second run 0.1 lower
        seen.append(config)
        kept = 100 if config.data.train_keep is None else len(config.data.train_keep)
        acc = np.array([[0.0, kept / 100], [0.0, kept / 100 - 0.1]])[:runs]
        return SimpleNamespace(history={"test_acc": acc}, y_train=np.zeros(kept),
                               meta={"runs": [{"train_seconds": 1.5}] * runs})

    table = pruning.sweep(BASE, cbtl, events, strategies=("density", "cbtl"), fractions=(0.0, 0.3),
                          radii=(1.0, 2.0), runs=2, seed=4, runner=runner)
    assert list(table.columns) == pruning.COLUMNS
    assert table["strategy"].tolist() == ["density"] * 4 + ["cbtl"] * 2
    assert table["radius"].tolist()[:4] == [1.0, 1.0, 2.0, 2.0] and table["radius"][4:].isna().all()
    assert table["kept"].tolist() == [100, 70, 100, 70, 100, 70]
    assert table["test_acc"].to_numpy() == pytest.approx([0.95, 0.65, 0.95, 0.65, 0.95, 0.65])
    assert table["test_acc_std"].to_numpy() == pytest.approx([0.05] * 6)
    assert table["train_seconds"].tolist() == [3.0] * 6
    assert seen[3] == pruning.pruned_config(BASE, "density", 0.3, cbtl=cbtl, events=events, radius=2.0, seed=4)


def test_accuracy_at_reads_the_last_fraction_not_above_the_limit():
    table = pd.DataFrame({
        "strategy": ["density"] * 6 + ["random"] * 3,
        "radius": [0.5, 0.5, 0.5, 1.0, 1.0, 1.0] + [np.nan] * 3,
        "fraction": [0.0, 0.5, 0.8] * 3,
        "test_acc": [0.9, 0.8, 0.7, 0.9, 0.85, 0.6, 0.9, 0.5, 0.3],
    })
    at = pruning.accuracy_at(table, 0.6)
    assert at.index.tolist() == ["density", "random"]
    assert at["fraction"].tolist() == [0.5, 0.5] and at["test_acc"].tolist() == [0.85, 0.5]
    assert pruning.accuracy_at(table, 0.6, radius=0.5)["test_acc"].tolist() == [0.8, 0.5]
    assert pruning.accuracy_at(table, 1.0)["test_acc"].tolist() == [0.6, 0.3]
    with pytest.raises(ValueError, match="no row"):
        pruning.accuracy_at(table[table["fraction"] > 0], 0.2)


def test_sweep_trains_on_the_kept_samples(tmp_path):
    base = RunConfig(DataConfig("digits", train_size=120, test_size=60), arch="mlp", epochs=2, batch_size=32)
    full = get_runs(base, 1, cache=Cache(tmp_path), progress=False)
    cbtl = full.train_correct.sum(-2).mean(0)
    events = np.zeros_like(cbtl)
    table = pruning.sweep(base, cbtl, events, strategies=("cbtl",), fractions=(0.0, 0.5), runs=1,
                          cache=Cache(tmp_path), progress=False)
    assert table["kept"].tolist() == [120, 60]
    kept = pruning.kept_indices("cbtl", 0.5, cbtl=cbtl, events=events)
    pruned = get_runs(pruning.pruned_config(base, "cbtl", 0.5, cbtl=cbtl, events=events), 1, cache=Cache(tmp_path),
                      progress=False)
    assert np.array_equal(pruned.index_train, full.index_train[kept])
    assert np.array_equal(pruned.y_train, full.y_train[kept])
    assert table["test_acc"].tolist() == [full.history["test_acc"][0, -1], pruned.history["test_acc"][0, -1]]


def test_removal_map_by_hand():
    cbtl = np.array([5.0, 5.0, 5.0, 2.0, 2.0, 0.0])
    events = np.array([0.0, 0.0, 0.0, 1.0, 1.0, 0.0])
    table = pruning.removal_map(cbtl, events, kept=[0, 3, 4])
    assert table[["cbtl", "events"]].values.tolist() == [[0, 0], [2, 1], [5, 0]]
    assert table["samples"].tolist() == [1, 2, 3]
    assert table["removed_share"].to_numpy() == pytest.approx([1.0, 0.0, 2 / 3])
    with pytest.raises(ValueError, match="positions"):
        pruning.removal_map(cbtl, events, kept=[6])


# --- the judgements of Fig. 12 -------------------------------------------------


def judgement_table(density_by_radius, others):
    """A sweep-like table: {radius: [acc at 0.3, 0.6]} for density, {strategy: [acc at 0.3, 0.6]} for the rest."""
    rows = []
    for radius, accs in density_by_radius.items():
        rows += [{"strategy": "density", "radius": radius, "fraction": f, "test_acc": a}
                 for f, a in zip((0.0, 0.3, 0.6), (0.95, *accs))]
    for strategy, accs in others.items():
        rows += [{"strategy": strategy, "radius": np.nan, "fraction": f, "test_acc": a}
                 for f, a in zip((0.0, 0.3, 0.6), (0.95, *accs))]
    return pd.DataFrame(rows)


def test_best_radius_averages_over_the_fractions_removed():
    # r = 1 is best on average (0.915) though r = 2 wins at 0.3; the full set (0.95) is left out
    table = judgement_table({0.5: [0.90, 0.80], 1.0: [0.92, 0.91], 2.0: [0.93, 0.85]}, {})
    assert pruning.radius_means(table).to_dict() == pytest.approx({0.5: 0.85, 1.0: 0.915, 2.0: 0.89})
    assert pruning.best_radius(table) == 1.0
    table = judgement_table({0.5: [0.90, 0.80], 1.0: [0.92, 0.81], 2.0: [0.93, 0.85]}, {})
    assert pruning.best_radius(table) == 2.0  # the other side of the claim
    assert pruning.best_radius(judgement_table({0.5: [0.9, 0.8], 1.0: [0.8, 0.9]}, {})) == 0.5  # a tie: the smallest


def test_mean_difference_of_strategies():
    table = judgement_table({0.5: [0.5, 0.5], 1.0: [0.92, 0.90]},
                            {"cbtl": [0.91, 0.89], "forgetting": [0.93, 0.91], "random": [0.85, 0.70]})
    assert pruning.mean_difference(table, "density", "cbtl") == pytest.approx(0.01)  # density outperforms cbtl
    assert pruning.mean_difference(table, "density", "forgetting") == pytest.approx(-0.01)  # but not forgetting
    assert pruning.mean_difference(table, "random", "density") == pytest.approx(-0.135)
    assert pruning.mean_difference(table, "density", "cbtl", radius=0.5) == pytest.approx(-0.4)
    # only the fractions both ran count
    short = table[~((table["strategy"] == "cbtl") & (table["fraction"] == 0.6))]
    assert pruning.mean_difference(short, "density", "cbtl") == pytest.approx(0.01)
    assert pruning.mean_difference(short, "cbtl", "random") == pytest.approx(0.06)


def test_judgements_refuse_what_the_table_lacks():
    table = judgement_table({0.5: [0.9, 0.8], 1.0: [0.9, 0.8]}, {"cbtl": [0.9, 0.8]})
    with pytest.raises(ValueError, match="'random'"):
        pruning.mean_difference(table, "density", "random")
    with pytest.raises(ValueError, match="radius 3.0"):
        pruning.mean_difference(table, "density", "cbtl", radius=3.0)
    with pytest.raises(ValueError, match="several rows"):
        pruning._accuracy_by_fraction(table, "density")
    with pytest.raises(ValueError, match="density"):
        pruning.radius_means(table[table["strategy"] == "cbtl"])


def test_el2n_and_aum_strategies_remove_the_easiest_first():
    cbtl, events = np.arange(6.0), np.zeros(6)
    el2n = np.array([0.9, 0.05, 0.5, 0.3, 1.2, 0.1])  # low: easy
    aum = np.array([-1.0, 4.0, 0.5, 2.0, -3.0, 3.0])  # high: easy
    assert pruning.kept_indices("el2n", 0.5, cbtl=cbtl, events=events, score=el2n).tolist() == [0, 2, 4]
    assert pruning.kept_indices("aum", 0.5, cbtl=cbtl, events=events, score=aum).tolist() == [0, 2, 4]
    # the generic orders give the same; the opposite order keeps the other half
    assert pruning.kept_indices("lowest", 0.5, cbtl=cbtl, events=events, score=el2n).tolist() == [0, 2, 4]
    assert pruning.kept_indices("highest", 0.5, cbtl=cbtl, events=events, score=el2n).tolist() == [1, 3, 5]
    config = pruning.pruned_config(BASE, "el2n", 0.5, cbtl=cbtl, events=events, score=el2n)
    assert config.data.train_keep == (0, 2, 4)
    with pytest.raises(ValueError, match="needs its score"):
        pruning.kept_indices("aum", 0.5, cbtl=cbtl, events=events)
    assert "el2n" not in pruning.STRATEGIES  # the paper's four strategies stay the pruning chapter's
