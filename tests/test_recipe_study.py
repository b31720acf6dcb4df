import importlib.util
import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from regutils import stability
from regutils.train import RunConfig

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "recipe_study.py"


@pytest.fixture(scope="module")
def recipe_study():
    spec = importlib.util.spec_from_file_location("recipe_study", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_grid_is_the_stated_one(recipe_study):
    configs = recipe_study.candidates(recipe_study.ARCHS, recipe_study.EPOCHS, ["onecycle"], 0.1, 128,
                                      RunConfig().data)
    assert len(configs) == 9
    assert {(c.arch, c.epochs) for c in configs} == {(a, e) for a in ("convnet3", "convnet3_w2", "convnet3x2")
                                                      for e in (20, 40, 60)}
    assert all(c.nesterov and c.schedule == "onecycle" and c.learning_rate == 0.1 for c in configs)


@pytest.mark.slow
def test_quick_study_writes_rows_with_their_configs_and_resumes(recipe_study, tmp_path, monkeypatch):
    monkeypatch.setenv("REGUTILS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("REGUTILS_PROGRESS", "0")
    out = tmp_path / "results" / "study.csv"
    table = recipe_study.main(["--quick", "--out", str(out), "--threads", "1"])
    written = pd.read_csv(out)
    assert len(written) == len(table) == 1
    assert set(stability.TARGETS) <= set(written.columns) and (written["seconds_per_run"] > 0).all()
    config = json.loads(written["config"][0])
    assert config["arch"] == "convnet3" and config["epochs"] == 3 and config["schedule"] == "onecycle"
    assert config["nesterov"] is True and config["data"]["train_size"] == 200
    curve = pd.read_csv(tmp_path / "results" / "study_curve.csv")
    assert set(curve["measure"]) == {"cbtl", "events"} and list(curve["runs"]) == [2, 2]
    # a second call reads the cached runs: the same statistics
    again = recipe_study.main(["--quick", "--out", str(out), "--threads", "1"])
    pd.testing.assert_frame_equal(again, table)


def test_one_run_is_refused(recipe_study):
    with pytest.raises(SystemExit):
        recipe_study.parse(["--runs", "1"])


def test_architectures_are_compared_at_equal_epochs(recipe_study, tmp_path, monkeypatch):
    monkeypatch.setenv("REGUTILS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("REGUTILS_PROGRESS", "0")
    data = replace(RunConfig().data, train_size=150, test_size=60)  # digits: small and fast, the same code path
    configs = recipe_study.candidates(["mlp", "small_cnn"], [2, 3], ["onecycle"], 0.05, 50, data)
    table, _ = recipe_study.study(configs, runs=2)
    assert table["between_archs_density"].notna().all()
    for _, group in table.groupby("epochs"):
        assert group["between_archs_density"].nunique() == 1 and group["between_archs_density"].abs().max() <= 1


def test_the_recipe_page_table_bolds_exactly_the_targets_met(tmp_path):
    from regutils.book import recipe_markdown

    assert "has not been run" in recipe_markdown(tmp_path / "missing.csv")
    row = dict(arch="convnet3", epochs=20, runs=4, test_acc=0.67, density_train=0.56, density_test=0.9,
               split_half_cbtl=0.96, split_half_events=float("nan"), record_cbtl=0.98, record_events=0.9,
               between_archs_density=float("nan"), seconds_per_run=96.4, runs_for_cbtl=3, runs_for_events=10)
    pd.DataFrame([row]).to_csv(tmp_path / "study.csv", index=False)
    lines = recipe_markdown(tmp_path / "study.csv").splitlines()
    assert len(lines) == 3
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    assert cells == ["`convnet3`", "20", "4", "0.670", "0.560", "**0.900**", "**0.960**", "–", "**0.980**", "0.900",
                     "–", "96", "3", "10"]


def test_a_second_call_adds_its_rows_and_replaces_its_own(recipe_study, tmp_path):
    path = tmp_path / "study.csv"
    first = pd.DataFrame({"config": ["a", "b"], "runs": [4, 4], "value": [1.0, 2.0]})
    first.to_csv(path, index=False)
    new = pd.DataFrame({"config": ["b", "b"], "runs": [4, 8], "value": [3.0, 4.0]})
    out = recipe_study.merged(new, path, ["config", "runs"])
    assert sorted(zip(out["config"], out["runs"], out["value"])) == [("a", 4, 1.0), ("b", 4, 3.0), ("b", 8, 4.0)]
    assert recipe_study.merged(new, tmp_path / "none.csv", ["config", "runs"]) is new


def test_the_recipe_page_curve_lists_observed_and_predicted_by_runs(tmp_path):
    from regutils.book import recipe_curve_markdown

    assert "No curve yet" in recipe_curve_markdown(tmp_path / "missing.csv")
    curve = pd.DataFrame(dict(per_half=[2, 1], runs=[4, 2], observed=[0.9, 0.8], spearman_brown=[0.889, 0.8],
                              arch="convnet3", epochs=20, schedule="onecycle", measure="events"))
    curve.to_csv(tmp_path / "curve.csv", index=False)
    lines = recipe_curve_markdown(tmp_path / "curve.csv").splitlines()
    assert lines[2:] == ["| `convnet3` | 20 | forgetting events | 2 | 0.800 | 0.800 |",
                         "| `convnet3` | 20 | forgetting events | 4 | 0.900 | 0.889 |"]
