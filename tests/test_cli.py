import numpy as np
import pandas as pd
import pytest

from regutils import measures
from regutils.cli import main
from regutils.trace import Trace, save


def hand_trace():
    # 2 runs, 6 epochs; train sample 0 follows 0,1,1,0,1,0 (CBTL 3, 2 events, first learned 2)
    tr = np.array([[0, 1, 1, 0, 1, 0], [1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0]], bool).T  # (T, N=3)
    te = np.array([[1, 0, 1, 0, 1, 0], [0, 0, 1, 1, 1, 1]], bool).T  # (T, M=2)
    runs = np.stack([tr, tr]), np.stack([te, te])
    prob_tr = np.full((2, 6, 3), 0.5, np.float16)
    prob_te = np.full((2, 6, 2), 0.25, np.float16)
    return Trace(train_correct=runs[0], test_correct=runs[1], train_prob=prob_tr, test_prob=prob_te,
                 batch_correct=runs[0], batch_step=np.zeros((2, 6, 3), np.int32), y_train=np.array([0, 1, 2]),
                 y_test=np.array([1, 0]), index_train=np.array([10, 11, 12]), index_test=np.array([5, 6]),
                 noisy_train=np.zeros(3, bool), history={}, meta={"runs": [{}, {}]})


def test_measures_table_is_hand_computed():
    df = measures.table(hand_trace())
    train = df[df.split == "train"].set_index("dataset_index")
    assert train.loc[10, ["cbtl", "events", "first_learned"]].tolist() == [3, 2, 2]
    assert train.loc[11, ["cbtl", "events", "first_learned"]].tolist() == [6, 0, 1]
    assert train.loc[12, ["cbtl", "events", "first_learned"]].tolist() == [0, 0, 7]  # never learned: 0 events, T+1
    test = df[df.split == "test"].set_index("dataset_index")
    assert test.loc[5, ["cbgl", "events"]].tolist() == [3, 3]  # 1,0,1,0,1,0: events at epochs 2, 4, 6
    assert test.loc[6, ["cbgl", "events"]].tolist() == [4, 0]
    assert np.allclose(train["learnability"], 0.5) and np.allclose(test["learnability"], 0.25)
    assert (df["runs"] == 2).all() and (df["density"] > 0).all()


def test_never_learned_max_gives_t_events():
    df = measures.table(hand_trace(), never_learned="max")
    assert df[(df.split == "train") & (df.dataset_index == 12)]["events"].item() == 6


def test_per_run_rows(tmp_path):
    df = measures.table(hand_trace(), per_run=True)
    assert len(df) == 2 * (3 + 2) and set(df["run"]) == {0, 1}


def test_cli_reads_trace_files_and_writes_csv(tmp_path, capsys):
    t = hand_trace()
    single = [t.run(0), t.run(1)]
    paths = [save(s, tmp_path / f"r{i}.npz") for i, s in enumerate(single)]
    out = tmp_path / "m.csv"
    assert main(["measures", "--trace", *map(str, paths), "-o", str(out)]) == 0
    df = pd.read_csv(out)
    assert len(df) == 5 and df.loc[df.dataset_index == 10, "cbtl"].item() == 3


@pytest.mark.parametrize("argv, message", [
    (["train", "--epochs", "0"], "epochs"),
    (["train", "--dataset", "npz"], "needs --data"),
    (["train", "--dataset", "npz", "--data", "/no/such.npz"], "does not exist"),
    (["train", "--label-noise", "1.5"], "--label-noise 1.5"),
    (["train", "--runs", "0"], "runs"),
])
def test_cli_bad_input_exits_with_a_clear_error(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--cache", str(tmp_path)])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
