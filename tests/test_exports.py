import json

import numpy as np
import pandas as pd
import pytest
import torch

from regutils import exports, measures, scores
from regutils.loop import evaluate

T, N, C = 4, 30, 3


def toy_logits(seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, C, N)
    logits = rng.normal(size=(T, N, C)).astype(np.float32)
    logits[np.arange(T)[:, None], np.arange(N), labels] += np.linspace(-1, 2, T)[:, None]  # learned over time
    return logits, labels


def test_data_map_files_and_line_format(tmp_path):
    logits = np.array([[[1.5, -0.25]], [[0.0, 2.0]]], dtype=np.float32)  # T = 2, N = 1, C = 2
    paths = exports.data_map_jsonl(tmp_path, logits, [1], guids=["a"])
    assert [p.name for p in paths] == ["dynamics_epoch_0.jsonl", "dynamics_epoch_1.jsonl"]
    assert paths[0].read_text() == '{"guid": "a", "logits_epoch_0": [1.5, -0.25], "gold": 1}\n'
    assert json.loads(paths[1].read_text()) == {"guid": "a", "logits_epoch_1": [0.0, 2.0], "gold": 1}


def test_data_map_round_trip_keeps_logits_and_measures(tmp_path):
    logits, labels = toy_logits()
    exports.data_map_jsonl(tmp_path, logits, labels)
    back, back_labels = exports.read_data_map(tmp_path)
    np.testing.assert_array_equal(back, logits)
    np.testing.assert_array_equal(back_labels, labels)
    before, after = exports.record_from_logits(logits, labels), exports.record_from_logits(back, back_labels)
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
    correct, prob = after
    np.testing.assert_array_equal(measures.cbtl(correct), measures.cbtl(before[0]))
    np.testing.assert_array_equal(scores.forgetting(correct, "max"), scores.forgetting(before[0], "max"))
    m0, m1 = scores.data_map(before[1], before[0]), scores.data_map(prob, correct)
    for a, b in zip(m0, m1):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(scores.aum(scores.margin(back, back_labels)),
                                  scores.aum(scores.margin(logits, labels)))


def test_read_data_map_matches_samples_by_guid(tmp_path):
    logits, labels = toy_logits()
    guids = [f"s{i}" for i in range(N)]
    exports.data_map_jsonl(tmp_path, logits, labels, guids=guids)
    path = tmp_path / "dynamics_epoch_1.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[::-1]) + "\n")  # another tool may write samples in another order
    back, back_labels, back_guids = exports.read_data_map(tmp_path, with_guids=True)
    np.testing.assert_array_equal(back, logits)
    assert back_guids == guids
    (tmp_path / "dynamics_epoch_3.jsonl").unlink()
    (tmp_path / "dynamics_epoch_5.jsonl").write_text("")
    with pytest.raises(ValueError, match=r"found epochs \[0, 1, 2, 5\]"):
        exports.read_data_map(tmp_path)
    with pytest.raises(ValueError, match="later epochs"):
        exports.data_map_jsonl(tmp_path, logits, labels)


def test_record_from_logits_is_the_engine_record():
    logits, labels = toy_logits()
    correct, prob = exports.record_from_logits(logits, labels)
    assert correct.shape == prob.shape == (T, N) and correct.dtype == bool and prob.dtype == np.float16
    for t in range(T):
        ok, p = evaluate(torch.nn.Identity(), torch.from_numpy(logits[t]), torch.from_numpy(labels))
        np.testing.assert_array_equal(correct[t], ok.numpy())
        np.testing.assert_array_equal(prob[t], p.numpy())


def test_aum_csv_round_trip_and_columns(tmp_path):
    margins = np.array([[1.0, 0.0, -1.0], [-3.0, 2.0, -1.0], [4.0, -2.0, -1.0]])  # (T=3, N=3)
    path = exports.aum_csv(tmp_path / "aum_values.csv", margins)
    assert path.read_text().splitlines()[0] == "sample_id,aum"
    frame = pd.read_csv(path)
    assert frame["sample_id"].tolist() == [0, 1, 2]  # highest AUM first, as the AUM code writes it
    ids, values = exports.read_aum_csv(path)
    np.testing.assert_array_equal(ids, [0, 1, 2])
    np.testing.assert_array_equal(values, scores.aum(margins))

    full = exports.aum_csv(tmp_path / "full_aum_records.csv", margins, [0, 1, 1], full=True)
    frame = pd.read_csv(full)
    assert list(frame.columns) == ["sample_id", "num_measurements", "target_val", "margin", "aum"]
    first = frame[frame.sample_id == 0]
    assert first["num_measurements"].tolist() == [1, 2, 3] and first["margin"].tolist() == [1.0, -3.0, 4.0]
    np.testing.assert_allclose(first["aum"], [1.0, -1.0, 2 / 3])
    assert frame[frame.sample_id == 2]["target_val"].tolist() == [1, 1, 1]
    with pytest.raises(ValueError, match="needs the labels"):
        exports.aum_csv(tmp_path / "x.csv", margins, full=True)


def test_score_npy_round_trip(tmp_path):
    values = {"aum": np.linspace(-1, 1, N), "forgetting": np.arange(N), "el2n_runs": np.ones((2, N))}
    paths = exports.score_npy(tmp_path, values)
    assert sorted(p.name for p in paths) == ["aum.npy", "el2n_runs.npy", "forgetting.npy"]
    back = exports.read_scores(tmp_path)
    assert back.keys() == values.keys()
    for name, v in values.items():
        np.testing.assert_array_equal(back[name], v)
        assert np.load(tmp_path / f"{name}.npy").dtype == v.dtype
    with pytest.raises(ValueError, match="different numbers of samples"):
        exports.score_npy(tmp_path, {"a": np.zeros(3), "b": np.zeros(4)})
    with pytest.raises(ValueError, match="names a file"):
        exports.score_npy(tmp_path, {"../a": np.zeros(3)})
