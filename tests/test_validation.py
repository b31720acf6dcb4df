"""Bad values fail before any work with one line naming them: CLI flags, book parameters, npz files."""
from pathlib import Path

import numpy as np
import pytest
import torch

from regutils import book, models, train as train_module
from regutils.cli import main
from regutils.data import MAX_CLASSES, DataConfig, DataError, load

NO_GPU = not torch.cuda.is_available()


@pytest.fixture
def no_training(monkeypatch):
    """Any training, model build or chapter execution fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("work started before the bad value was found")

    for module, name in ((train_module, "train_runs"), (models, "build"),
                         (book, "execute")):
        monkeypatch.setattr(module, name, refuse)
    monkeypatch.setenv("REGUTILS_PROGRESS", "0")


def fails(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert err.startswith("regutils: error: ") and err.count("\n") == 1, err  # one line, no traceback
    return err


# --- the command line: (argv, what the message must say)

CLI = {
    "lr inf": (["train", "--lr", "inf"], "--lr inf must be a finite number in (0, 10]"),
    "weight decay inf": (["train", "--weight-decay", "inf"], "--weight-decay inf must be a finite number in [0, 1]"),
    "lr nan": (["train", "--lr", "nan"], "--lr nan"),
    "lr 1e308": (["train", "--lr", "1e308"], "--lr 1e+308 must be a finite number in (0, 10]"),
    "workers 0": (["train", "--workers", "0"], "--workers 0 must be a positive integer, at most 256"),
    "data for digits": (["train", "--data", "x.npz"], "--data 'x.npz' is not used by --dataset 'digits'"),
    "epochs 1e12": (["train", "--epochs", "1000000000000"], "--epochs 1000000000000 must be a positive integer, at most 10,000"),
    "runs 1e8": (["train", "--runs", "100000000"], "--runs 100000000 must be a positive integer, at most 1,000"),
    "huge seed": (["train", "--seed", str(2**64)], f"--seed {2**64} must be a non-negative integer, at most 4,294,967,295"),
    "seed plus runs": (["train", "--seed", str(2**32 - 1), "--runs", "2"], "--seed 4294967295 with --runs 2"),
    "negative data seed": (["train", "--data-seed", "-1"], "--data-seed -1 must be a non-negative integer, at most 4,294,967,295"),
    "device foo": (["train", "--device", "foo"], "--device 'foo' is not a device"),
    "device meta": (["train", "--device", "meta"], "--device 'meta' is not available"),
    "device cuda:99": (["train", "--device", "cuda:99"], "--device 'cuda:99' is not available"),
    "test size 3": (["train", "--test-size", "3"], "--test-size 3 cannot be a stratified subset of 450 samples in 10 classes"),
    "train size all but 1": (["train", "--train-size", "1346"], "--train-size 1346 cannot be a stratified subset"),
    "label noise nan": (["train", "--label-noise", "nan"], "--label-noise nan must be a finite number in [0, 1]"),
    "scheduler unreachable": (["train", "--scheduler", "tcp://127.0.0.1:1"],
                              "--scheduler 'tcp://127.0.0.1:1': no Dask scheduler answered within 10 s"),
    "scheduler not an address": (["train", "--scheduler", "head"], "--scheduler 'head' is not an address"),
    "scheduler and workers": (["train", "--scheduler", "tcp://127.0.0.1:1", "--workers", "2"], "exclude each other"),
    "output in a missing directory": (["measures", "-o", "/nonexistent/dir/out.csv"],
                                      "--output '/nonexistent/dir/out.csv': the directory '/nonexistent/dir' does not exist"),
    "unreadable trace": (["measures", "--trace", "/nonexistent.npz"], "no trace at /nonexistent.npz"),
}
if NO_GPU:
    CLI["cuda without a GPU"] = (["train", "--device", "cuda"], "--device 'cuda' is not available on this machine")


@pytest.mark.parametrize("case", list(CLI))
def test_bad_cli_values_fail_before_training_naming_the_flag(case, tmp_path, capsys, no_training):
    argv, message = CLI[case]
    err = fails([*argv, "--cache", str(tmp_path / "cache")] if "--trace" not in argv else argv, capsys)
    assert message in err
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").glob("*.npz"))


def test_a_cache_that_is_a_file_and_an_output_that_is_a_directory(tmp_path, capsys, no_training):
    (tmp_path / "file").write_text("x")
    assert "--cache '" in fails(["train", "--cache", str(tmp_path / "file")], capsys)
    assert "is not a directory" in fails(["measures", "--cache", str(tmp_path / "file")], capsys)
    assert "--output" in fails(["measures", "-o", str(tmp_path), "--cache", str(tmp_path / "c")], capsys)


# --- book parameters: every name and value checked against every selected chapter before any executes

BOOK = {
    "unknown name close to one": (["-p", "epoch=2"], "parameter 'epoch' is not a parameter of the chapters"),
    "unknown name": (["-p", "foo=1"], "parameter 'foo' is not a parameter"),
    "profile as a parameter": (["-p", "profile=paper"], "choose the profile with --profile"),
    "empty name": (["-p", "=5"], "'' is not a parameter name"),
    "no equals sign": (["-p", "epochs"], "expected NAME=VALUE"),
    "code as a name": (["-p", "__import__('os').system('touch /tmp/regutils-injected')#=1"], "is not a parameter name"),
    "keyword as a name": (["-p", "import=1"], "'import' is not a parameter name"),
    "a string for a list": (["-p", "archs=mlp"], "archs='mlp' must be a list, e.g. archs=['mlp']"),
    "bad value of a setting": (["-p", "epochs=0"], "epochs=0 must be a positive integer"),
    "bad value of a later chapter's setting": (["-p", "prune_fractions=[1.5]"], "prune_fractions=(1.5,) must be a non-empty list, each a finite number in [0, 1)"),
    "bad batch size": (["-p", "batch_size=0"], "batch_size=0 must be a positive integer"),
    "a data path for the shipped images": (["-p", "data_path=\"x.npz\""], "dataset='cifar10-subset' ships with the project and takes no data_path"),
    "an unknown optimizer": (["-p", "optimizers=[\"sgd\", \"rmsprop\"]"], "optimizers=('sgd', 'rmsprop') must be a non-empty list, each one of sgd, adagrad"),
    "wrong type of a chapter parameter": (["-p", "csr_steps=\"ten\""], "csr_steps='ten' must be a int"),
    "unknown profile": (["--profile", "huge"], "profile='huge' does not exist"),
    "unknown chapter": (["--only", "nochapter"], "unknown chapters ['nochapter']"),
    "a parameter of no selected chapter": (["--only", "setup", "-p", "csr_steps=5"],
                                           "parameter 'csr_steps' is not a parameter of the chapters setup"),
}


@pytest.mark.parametrize("case", list(BOOK))
def test_bad_book_parameters_fail_before_any_chapter(case, capsys, no_training):
    argv, message = BOOK[case]
    err = fails(["book", "--profile", "smoke", "--no-html", *argv] if "--profile" not in argv else
                ["book", "--no-html", *argv], capsys)
    assert message in err
    assert not Path("/tmp/regutils-injected").exists()


def test_good_book_parameters_reach_only_their_chapters():
    per_chapter = book.validate("smoke", ["setup", "arpit"], {"epochs": 2, "csr_steps": 5})
    assert per_chapter == {"setup": {"epochs": 2}, "arpit": {"epochs": 2, "csr_steps": 5}}
    assert book.validate("smoke", ["pruning"], {"prune_runs": 2}) == {"pruning": {"prune_runs": 2}}


# --- npz files: (arrays or a file maker, message)


def arrays(**changes):
    rng = np.random.default_rng(0)
    base = {"x_train": rng.integers(0, 256, (20, 8, 8), dtype=np.uint8), "y_train": np.arange(20) % 4,
            "x_test": rng.integers(0, 256, (8, 8, 8), dtype=np.uint8), "y_test": np.arange(8) % 4}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def with_nan():
    x = np.full((20, 8, 8), 0.5)
    x[3, 2, 1] = np.nan
    return x


NPZ = {
    "NaN pixels": (arrays(x_train=with_nan()), "x_train holds 1 NaN or infinite pixels"),
    "infinite pixels": (arrays(x_test=np.full((8, 8, 8), np.inf)), "x_test holds 512 NaN or infinite pixels"),
    "float pixels in 0..255": (arrays(x_train=np.full((20, 8, 8), 200.0)),
                               "x_train holds float pixels in [200, 200]; float images must lie in [0, 1]"),
    "int16 pixels": (arrays(x_train=np.zeros((20, 8, 8), np.int16)),
                     "x_train has dtype int16; expected uint8 (0..255) or float (0..1)"),
    "negative pixels": (arrays(x_test=np.full((8, 8, 8), -1, np.int64)), "x_test has dtype int64; expected uint8"),
    "boolean pixels": (arrays(x_test=np.zeros((8, 8, 8), bool)), "x_test has dtype bool"),
    "a label of a million": (arrays(y_train=np.r_[np.arange(19) % 4, 10**6]),
                             f"y_train holds labels outside 0..{MAX_CLASSES - 1} (min 0, max 1000000)"),
    "a label of 2**40": (arrays(y_test=np.r_[np.arange(7) % 4, 2**40]), "max 1099511627776"),
    "a negative label": (arrays(y_test=np.r_[np.arange(7) % 4, -1]), "min -1"),
    "a single class": (arrays(y_train=np.zeros(20, np.int64)), "y_train holds a single class (0)"),
    "duplicate indices": (arrays(index_train=np.r_[np.arange(19), 0]), "index_train repeats indices"),
    "float indices": (arrays(index_test=np.arange(8.0)), "index_test has shape (8,) and dtype float64"),
    "empty images": (arrays(x_train=np.zeros((0, 8, 8), np.uint8), y_train=np.zeros(0, np.int64)),
                     "x_train is empty (shape (0, 8, 8))"),
    "label count": (arrays(y_test=np.arange(7) % 4), "y_test has shape (7,); expected (8,)"),
    "float labels": (arrays(y_train=np.arange(20) % 4 + 0.0), "y_train has dtype float64; expected integers"),
    "missing array": (arrays(y_test=None), "missing arrays ['y_test']"),
    "one class name": (arrays(classes=np.array(["a"])), "classes has shape (1,)"),
}


def write(path: Path, content) -> str:
    if isinstance(content, dict):
        np.savez(path, **content)
    return str(path)


@pytest.mark.parametrize("case", list(NPZ))
def test_bad_npz_arrays_are_refused_naming_the_array(case, tmp_path):
    content, message = NPZ[case]
    with pytest.raises(DataError) as err:
        load(DataConfig("npz", path=write(tmp_path / "d.npz", content)))
    assert message in str(err.value) and str(tmp_path / "d.npz") in str(err.value)


def make_npy(p):
    np.save(p, np.zeros(3))
    return p


FILES = {
    "an .npy file": (lambda p: make_npy(p.with_suffix(".npy")), "is a single .npy array; expected an .npz archive"),
    "a text file": (lambda p: p.write_text("x_train,y_train\n1,2\n") and p, "is not an .npz archive"),
    "a directory": (lambda p: p.mkdir() or p, "is a directory; expected an .npz file"),
    "a missing file": (lambda p: p, "does not exist"),
    "a damaged zip": (lambda p: p.write_bytes(b"PK\x03\x04" + bytes(40)) and p, "is a damaged or unreadable .npz"),
    "object arrays": (lambda p: np.savez(p, x_train=np.array([None, 1], dtype=object)) or p,
                      "object arrays are not accepted"),
}


@pytest.mark.parametrize("case", list(FILES))
def test_files_that_are_not_npz_get_their_own_message(case, tmp_path):
    make, message = FILES[case]
    path = make(tmp_path / "d.npz")
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(".", r"\.")):
        load(DataConfig("npz", path=str(path)))


def test_cli_reports_bad_npz_in_one_line(tmp_path, capsys, no_training):
    np.savez(tmp_path / "d.npz", **arrays(x_train=with_nan()))
    err = fails(["train", "--dataset", "npz", "--data", str(tmp_path / "d.npz"), "--cache", str(tmp_path / "c")], capsys)
    assert "x_train holds 1 NaN" in err


def test_good_npz_still_loads(tmp_path):
    data = load(DataConfig("npz", path=write(tmp_path / "d.npz", arrays(x_train=np.full((20, 8, 8), 0.5)))))
    assert data.num_classes == 4 and data.x_train.shape == (20, 1, 8, 8)


@pytest.mark.parametrize("jobs", [0, -1, True, 1.5])
def test_book_jobs_must_be_a_positive_integer(jobs):
    with pytest.raises(ValueError, match="jobs"):
        book.build("smoke", only=["setup"], jobs=jobs)


# --- the declared constraints of regutils.validation

from regutils.validation import Bool, Each, Int, OneOf, Real, check, check_fields, validate_params  # noqa: E402


@pytest.mark.parametrize(("constraint", "good", "bad", "text"), [
    (Int(1), [1, 7, np.int64(3)], [0, -1, 1.0, True, "2", None], "a positive integer"),
    (Int(0, 10, strict=True), [0, 10], [11, -1, np.int64(3)], "a non-negative integer, at most 10"),
    (Int(1, none=True), [None, 2], [0, False], "a positive integer or None"),
    (Real(0, 1), [0, 0.5, 1, 1.0], [-0.1, 1.01, float("nan"), float("inf"), True, "0.5"], "a finite number in [0, 1]"),
    (Real(0, 1, low_open=True, high_open=True), [0.5], [0, 1], "a finite number in (0, 1)"),
    (Real(0, low_open=True), [1e-9, 1e9], [0, -1, float("inf")], "a positive number"),
    (Real(0), [0, 3.5], [-1e-9], "a non-negative finite number"),
    (OneOf(("a", "b")), ["a", "b"], ["c", 1, None], "one of a, b"),
    (OneOf(lambda: ("x",)), ["x"], ["a"], "one of x"),
    (Bool(), [True, False], [0, 1, None, "yes"], "True or False"),
    (Each(Int(1)), [(1, 2), [3]], [(), (0,), 1, "12"], "a non-empty list, each a positive integer"),
])
def test_constraints_accept_what_they_name_and_refuse_the_rest(constraint, good, bad, text):
    assert str(constraint) == text
    for value in good:
        assert constraint.ok(value), value
        assert check("v", value, constraint) is value
    for value in bad:
        assert not constraint.ok(value), value
        with pytest.raises(ValueError, match=f"v={value!r} must be ".replace("(", r"\(").replace(")", r"\)")
                           .replace("[", r"\[").replace("]", r"\]")):
            check("v", value, constraint)


def test_check_fields_raises_the_given_error_on_the_first_bad_field():
    config = DataConfig("digits", label_noise=2.0)
    with pytest.raises(DataError, match=r"label_noise=2.0 must be a finite number in \[0, 1\]"):
        check_fields(config, DataConfig.CONSTRAINTS, DataError)


def test_validate_params_checks_arguments_and_defaults_before_the_body():
    calls = []

    @validate_params(k=Int(1), radius=Real(0, low_open=True))
    def pick(x, k=3, radius=0.0):
        calls.append((x, k, radius))

    with pytest.raises(ValueError, match="radius=0.0 must be a positive number"):
        pick("x")  # the default itself is checked
    with pytest.raises(ValueError, match="k=0 must be a positive integer"):
        pick("x", 0, radius=1.0)
    pick("x", k=2, radius=1.0)
    assert calls == [("x", 2, 1.0)]
    with pytest.raises(TypeError, match="has no parameters"):
        validate_params(nope=Int())(lambda x: x)
