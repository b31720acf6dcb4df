import json
import os
import shutil
import stat
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from regutils import bundle, cli
from regutils.bundle import BundleError, export, provenance, read_run_log, verify
from regutils.data import DataConfig
from regutils.cache import Cache
from regutils.trace import ARRAYS, Trace, cache_key, stack
from regutils.train import RunConfig, get_run, get_runs, run_key, trained_model

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

CONFIG = RunConfig(DataConfig("digits", train_size=120, test_size=40), arch="mlp", epochs=2, batch_size=40)


def hand_trace(seed: int, epochs: int = 3, n: int = 11, m: int = 5, source=None) -> tuple[str, Trace]:
    """A small trace whose metadata recomputes its key, as a run's does; and that key."""
    rng = np.random.default_rng(seed)
    config, fingerprint = {"arch": "mlp", "seed": seed}, "f" * 64
    meta = {"config": config, "data_fingerprint": fingerprint, "environment": {"device": "cpu"},
            "train_seconds": 30.0 + seed, "eval_seconds": 6.0}
    if source is not None:
        meta["source"] = source
    trace = Trace(train_correct=rng.random((epochs, n)) < 0.5, test_correct=rng.random((epochs, m)) < 0.5,
                  train_prob=rng.random((epochs, n)).astype(np.float16),
                  test_prob=rng.random((epochs, m)).astype(np.float16), batch_correct=rng.random((epochs, n)) < 0.5,
                  batch_step=rng.integers(0, 9, (epochs, n)).astype(np.int32), y_train=np.arange(n) % 3,
                  y_test=np.arange(m) % 3, index_train=np.arange(n), index_test=np.arange(m),
                  noisy_train=np.zeros(n, bool), history={"loss": rng.random(epochs)}, meta=meta)
    return cache_key(config, fingerprint), trace


def assert_same(a: Trace, b: Trace, wall_times: bool = True):
    """Identical records; ``wall_times`` False for two trainings of one run, whose timings differ."""
    for name in ARRAYS:
        assert getattr(a, name).dtype == getattr(b, name).dtype, name
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.history.keys() == b.history.keys()
    for k in a.history.keys() - (set() if wall_times else {"seconds", "eval_seconds"}):
        np.testing.assert_array_equal(a.history[k], b.history[k], err_msg=k)


def snapshot(directory: Path) -> dict:
    """Every file of ``directory``: its bytes and modification time; and the directory's (a file made and removed)."""
    files = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(directory.iterdir())}
    return {".": directory.stat().st_mtime_ns, **files}


def read_only(directory: Path) -> None:
    for p in directory.iterdir():
        p.chmod(stat.S_IRUSR | stat.S_IRGRP)
    directory.chmod(stat.S_IRUSR | stat.S_IXUSR)


def writable(directory: Path) -> None:
    directory.chmod(stat.S_IRWXU)
    for p in directory.iterdir():
        p.chmod(stat.S_IRUSR | stat.S_IWUSR)


@pytest.fixture
def made(tmp_path):
    """A bundle of two hand-made traces exported from a cache: (keys, traces, bundle dir)."""
    cache = Cache(tmp_path / "producer", bundles=())
    keys, traces = [], []
    for seed in (1, 2):
        key, trace = hand_trace(seed)
        cache.save(key, trace)
        keys.append(key)
        traces.append(trace)
    out = tmp_path / "traces"
    export(keys, cache, out, command="test", profile="smoke", progress=False)
    return keys, traces, out


# --- export, then load through the cache's fallback


def test_manifest_lists_every_file_with_digest_size_config_and_provenance(made):
    keys, traces, out = made
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["runs"]) == set(keys) and manifest["profile"] == "smoke" and manifest["command"] == "test"
    for key, trace in zip(keys, traces):
        entry = manifest["runs"][key]
        f = entry["files"]["trace"]
        assert f["name"] == f"{key}.npz" and f["bytes"] == (out / f["name"]).stat().st_size
        assert f["sha256"] == bundle.sha256_of(out / f["name"])
        assert entry["config"] == trace.meta["config"]
        assert entry["provenance"]["train_seconds"] == trace.meta["train_seconds"]
        assert {"environment", "produced", "command", "hardware"} <= set(entry["provenance"])
    assert manifest["total_bytes"] == sum((out / f"{k}.npz").stat().st_size for k in keys)
    assert sorted(p.name for p in out.iterdir()) == sorted([*(f"{k}.npz" for k in keys), "manifest.json"])


def test_a_bundled_trace_is_served_identical_and_says_it_came_from_the_bundle(made, tmp_path):
    keys, traces, out = made
    before = snapshot(out)
    read_only(out)
    try:
        user = Cache(tmp_path / "user", bundles=[out])
        for key, original in zip(keys, traces):
            assert user.has(key)
            loaded = user.load(key)
            assert_same(loaded, original)
            assert loaded.meta["source"] == f"bundle:{out}"
        assert not (tmp_path / "user").exists()  # nothing copied into the user's cache either
    finally:
        writable(out)
    assert snapshot(out) == before


def test_the_source_is_set_when_loaded_and_never_stored(made, tmp_path):
    keys, _, out = made
    loaded = Cache(tmp_path / "user", bundles=[out]).load(keys[0])
    again = Cache(tmp_path / "other", bundles=())
    again.save(keys[0], loaded)  # a bundled trace saved into a cache is a cached one there
    assert again.load(keys[0]).meta["source"] == "cache"


def test_bundles_come_from_the_environment_variable(made, tmp_path, monkeypatch):
    keys, _, out = made
    monkeypatch.setenv("REGUTILS_BUNDLE", os.pathsep.join([str(tmp_path / "absent"), str(out)]))
    with pytest.warns(UserWarning, match="absent"):  # a listed directory without a manifest: warned, skipped
        assert Cache(tmp_path / "user").load(keys[1]).meta["source"] == f"bundle:{out}"
    assert Cache(tmp_path / "user", bundles=()).bundles == []
    with pytest.raises(ValueError, match="bundles="):
        Cache(tmp_path / "user", bundles=str(out))


def test_the_cache_own_file_wins_over_the_bundle(made, tmp_path):
    keys, traces, out = made
    user = Cache(tmp_path / "user", bundles=[out])
    user.save(keys[0], traces[1])  # whatever the cache holds is the cache's business
    loaded = user.load(keys[0])
    assert loaded.meta["source"] == "cache"
    assert_same(loaded, traces[1])


# --- tampering: refused with the path and the reason, never used


def flip_byte(path: Path, at: int) -> None:
    blob = bytearray(path.read_bytes())
    blob[at] ^= 0xFF
    path.write_bytes(bytes(blob))


def edit_manifest(out: Path, change) -> None:
    manifest = json.loads((out / "manifest.json").read_text())
    change(manifest)
    (out / "manifest.json").write_text(json.dumps(manifest))


def swap_under_other_key(out: Path, keys) -> None:
    """Key 0's file replaced by key 1's, the manifest updated to match: only the key check can see it."""
    shutil.copyfile(out / f"{keys[1]}.npz", out / f"{keys[0]}.npz")
    edit_manifest(out, lambda m: m["runs"][keys[0]]["files"].update(trace=dict(
        m["runs"][keys[1]]["files"]["trace"], name=f"{keys[0]}.npz")))


TAMPERINGS = {
    "flipped byte": (lambda out, keys: flip_byte(out / f"{keys[0]}.npz", 200), "sha256 differs"),
    "swapped under another key": (swap_under_other_key, r"not .* \((a file )?under another key|copied or renamed\)"),
    "manifest digest edited": (lambda out, keys: edit_manifest(out, lambda m: m["runs"][keys[0]]["files"]["trace"]
                                                                .update(sha256="0" * 64)), "sha256 differs"),
    "truncated": (lambda out, keys: (out / f"{keys[0]}.npz").write_bytes((out / f"{keys[0]}.npz").read_bytes()[:99]),
                  "bytes, the manifest says"),
    "missing": (lambda out, keys: (out / f"{keys[0]}.npz").unlink(), "missing"),
}


@pytest.mark.parametrize("tampering", TAMPERINGS)
def test_a_tampered_bundle_file_is_refused_naming_path_and_reason(made, tmp_path, tampering):
    keys, traces, out = made
    tamper, reason = TAMPERINGS[tampering]
    tamper(out, keys)
    user = Cache(tmp_path / "user", bundles=[out])
    with pytest.raises(BundleError, match=reason) as err:
        user.load(keys[0])
    assert str(out / f"{keys[0]}.npz") in str(err.value)
    assert_same(user.load(keys[1]), traces[1])  # the intact run is still served
    problems = verify(out)
    assert problems and str(out / f"{keys[0]}.npz") in problems[0]


@pytest.mark.slow
def test_a_refused_bundle_run_is_recomputed_into_the_user_cache(tmp_path):
    producer = Cache(tmp_path / "producer", bundles=())
    original = get_run(CONFIG, cache=producer, progress=False)
    key = run_key(CONFIG)
    out = tmp_path / "traces"
    export([key], producer, out, progress=False)
    served = get_run(CONFIG, cache=Cache(tmp_path / "user", bundles=[out]), progress=False)
    assert served.meta["source"] == f"bundle:{out}" and not (tmp_path / "user" / f"{key}.npz").exists()
    assert_same(served, original)

    flip_byte(out / f"{key}.npz", 300)
    before = snapshot(out)
    read_only(out)
    try:
        user = Cache(tmp_path / "user", bundles=[out])
        with pytest.warns(UserWarning, match=f"{out / key}.npz refused: .*training the run again"):
            retrained = get_run(CONFIG, cache=user, progress=False)
    finally:
        writable(out)
    assert "source" not in retrained.meta  # trained here
    assert_same(retrained, original, wall_times=False)  # the CPU run is deterministic
    assert user.load(key).meta["source"] == "cache"  # now the user's own copy serves it
    assert snapshot(out) == before


# --- weights


@pytest.mark.slow
def test_weights_are_served_from_the_bundle_after_their_digest_and_refused_when_altered(tmp_path):
    producer = Cache(tmp_path / "producer", bundles=())
    model = trained_model(CONFIG, cache=producer)
    key = run_key(CONFIG)
    out = tmp_path / "traces"
    manifest = export([key], producer, out, weights=[key], progress=False)
    assert manifest["runs"][key]["files"]["weights"]["name"] == f"{key}.weights.pt"
    user = Cache(tmp_path / "user", bundles=[out])
    served = trained_model(CONFIG, cache=user)
    for a, b in zip(model.state_dict().values(), served.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not (tmp_path / "user" / f"{key}.weights.pt").exists()

    flip_byte(out / f"{key}.weights.pt", 100)
    with pytest.warns(UserWarning, match=r"weights\.pt refused: its sha256 differs"):
        again = trained_model(CONFIG, cache=Cache(tmp_path / "user", bundles=[out]))
    assert (tmp_path / "user" / f"{key}.weights.pt").is_file()  # retrained into the user's cache
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


# --- the run log, produce, verify


def test_the_run_log_records_the_keys_served(tmp_path, monkeypatch):
    log = tmp_path / "runs.log"
    monkeypatch.setenv("REGUTILS_RUN_LOG", str(log))
    cache = Cache(tmp_path / "cache", bundles=())
    get_run(CONFIG, cache=cache, progress=False)
    get_run(CONFIG, cache=cache, progress=False)  # loaded from the cache: served again
    trained_model(CONFIG, cache=cache)
    key = run_key(CONFIG)
    assert log.read_text().splitlines() == [f"trace {key}", f"trace {key}", f"weights {key}"]
    assert read_run_log(log) == ([key], {key})
    log.write_text("trace\n")
    with pytest.raises(ValueError, match="line 1"):
        read_run_log(log)


def test_produce_exports_exactly_the_runs_the_chapters_used(made, tmp_path, monkeypatch):
    keys, traces, _ = made
    cache = Cache(tmp_path / "producer", bundles=())
    extra_key, extra = hand_trace(3)
    cache.save(extra_key, extra)  # in the cache, but no chapter uses it

    def execute(profile, only):  # stands in for the book: a chapter that serves two runs
        assert profile == "smoke" and only == ["setup"]
        for key in (keys[1], keys[0], keys[1]):
            bundle.record_served(key)

    monkeypatch.delenv("REGUTILS_RUN_LOG", raising=False)
    out = tmp_path / "produced"
    (out).mkdir()
    (out / f"{extra_key}.npz").write_bytes(b"stale")  # left by an older bundle: removed
    manifest = produce_quietly(cache, out, execute)
    assert list(manifest["runs"]) == [keys[1], keys[0]]
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{keys[0]}.npz", f"{keys[1]}.npz", "manifest.json"])
    assert "REGUTILS_RUN_LOG" not in os.environ and not list(cache.root.glob("runlog-*"))
    assert verify(out) == []


def test_producing_again_reuses_the_bundle_runs_with_their_provenance(made, tmp_path):
    keys, traces, out = made
    new_key, new = hand_trace(4)
    cache = Cache(tmp_path / "fresh", bundles=[out])  # an empty cache reading the existing bundle
    cache.save(new_key, new)
    old = json.loads((out / "manifest.json").read_text())
    before = {k: (out / f"{k}.npz").stat().st_mtime_ns for k in keys}

    def execute(profile, only):  # the recipe changed: one old run is still used, one new run is
        cache.load(keys[0])
        bundle.record_served(keys[0])
        bundle.record_served(new_key)

    manifest = produce_quietly(cache, out, execute)
    assert list(manifest["runs"]) == [keys[0], new_key]
    assert manifest["runs"][keys[0]] == old["runs"][keys[0]]  # files, config and provenance carried over
    assert manifest["runs"][new_key]["provenance"]["command"].startswith("python -m regutils traces --profile smoke")
    assert (out / f"{keys[0]}.npz").stat().st_mtime_ns == before[keys[0]]  # identical: not rewritten
    assert not (out / f"{keys[1]}.npz").exists()  # no longer used: removed
    assert verify(out) == []


def produce_quietly(cache, out, execute):
    return bundle.produce("smoke", out, execute, cache, only=["setup"])


def test_export_warns_above_the_size_budget(made, tmp_path):
    keys, _, _ = made
    with pytest.warns(UserWarning, match="above the budget of 0 MB"):
        export(keys, Cache(tmp_path / "producer", bundles=()), tmp_path / "big", budget=10, progress=False)


def test_bundle_verify_passes_a_good_bundle_and_fails_a_tampered_one(made, capsys):
    keys, _, out = made
    assert cli.main(["bundle", "verify", str(out)]) == 0
    assert "OK, 2 runs" in capsys.readouterr().err
    (out / "stray.npz").write_bytes(b"x")
    flip_byte(out / f"{keys[1]}.npz", 150)
    assert cli.main(["bundle", "verify", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"FAIL {out / keys[1]}.npz refused" in err and "stray.npz is not listed" in err
    (out / "manifest.json").write_text("{")
    assert cli.main(["bundle", "verify", str(out)]) == 1


def test_verify_checks_the_total_size(made):
    _, _, out = made
    edit_manifest(out, lambda m: m.update(total_bytes=1))
    assert any("total_bytes 1 differs" in p for p in verify(out))


# --- provenance on the page


def test_provenance_counts_bundled_cached_and_trained_runs(made, tmp_path, monkeypatch):
    keys, _, out = made
    user = Cache(tmp_path / "user", bundles=[out])
    bundled = [user.load(k) for k in keys]
    cached_key, cached = hand_trace(5)
    user.save(cached_key, cached)
    trained = [hand_trace(6)[1], hand_trace(7)[1]]
    stacked = stack(bundled)
    monkeypatch.chdir(out.parent)
    sentence = provenance([stacked, bundled[0], user.load(cached_key), *trained])  # bundled[0] twice: once
    hardware = json.loads((out / "manifest.json").read_text())["hardware"]
    assert sentence == ("Of this chapter's 5 runs, 2 come from the verified trace bundle `traces`, 1 was loaded "
                        "from this machine's trace cache and 2 were trained in this build; those runs were trained "
                        f"once by this project's engine in {31 + 6 + 32 + 6} seconds on {hardware}, and their "
                        "files were checked against the manifest's sha256 digests before use.")
    assert provenance(bundled).startswith("Of this chapter's 2 runs, all 2 come from the verified trace bundle")
    assert provenance(trained[0]) == "Of this chapter's 1 run, 1 was trained in this build."
    with pytest.raises(ValueError, match="empty"):
        provenance([])


def test_provenance_without_runs_reads_the_runs_served_in_this_process(tmp_path, monkeypatch):
    monkeypatch.setattr(bundle, "_SERVED", [])
    assert provenance() == "This chapter uses no training run."
    cache = Cache(tmp_path / "cache", bundles=())
    get_runs(CONFIG, 2, cache=cache, progress=False)
    assert provenance() == "Of this chapter's 2 runs, 2 were trained in this build."
    assert all(isinstance(m, dict) for m in bundle._SERVED)  # metadata only: no record arrays kept alive
    get_run(CONFIG, cache=cache, progress=False)  # served again, from the cache: still counted once
    assert provenance() == "Of this chapter's 2 runs, 2 were trained in this build."


# --- training a bundle's runs again, longest first


@pytest.mark.slow
def test_listed_runs_are_the_manifests_and_pretrain_trains_them_into_the_cache(tmp_path, monkeypatch):
    from regutils.book import pretrain
    from regutils.bundle import listed_runs

    configs = [CONFIG, replace(CONFIG, epochs=3, seed=1), replace(CONFIG, data=replace(CONFIG.data, label_noise=0.2))]
    producer = Cache(tmp_path / "producer", bundles=())
    originals = {run_key(c): get_run(c, cache=producer, progress=False) for c in configs}
    out = tmp_path / "traces"
    manifest = export(list(originals), producer, out, progress=False)
    listed = listed_runs(out)
    assert sorted(k for k, _, _ in listed) == sorted(originals)
    assert all(run_key(c) == k and c in configs for k, c, _ in listed)  # each config rebuilt from its manifest entry
    seconds = [s for _, _, s in listed]
    assert seconds == sorted(seconds, reverse=True)  # longest first
    entry = manifest["runs"][listed[0][0]]["provenance"]
    assert seconds[0] == pytest.approx(entry["train_seconds"] + entry["eval_seconds"])

    fresh = tmp_path / "fresh"
    monkeypatch.setenv("REGUTILS_CACHE", str(fresh))  # the workers' cache, as `regutils traces` sets it
    monkeypatch.setenv("REGUTILS_BUNDLE", "")
    monkeypatch.setenv("REGUTILS_PROGRESS", "0")
    pretrain(listed, jobs=2)
    user = Cache(fresh, bundles=())
    assert sorted(user.keys()) == sorted(originals)
    for key, trace in originals.items():
        assert_same(user.load(key), trace, wall_times=False)  # trained again, the same CPU runs


def test_runs_whose_key_changed_are_not_listed(tmp_path):
    from regutils.bundle import listed_runs

    producer = Cache(tmp_path / "producer", bundles=())
    get_run(CONFIG, cache=producer, progress=False)
    out = tmp_path / "traces"
    export([run_key(CONFIG)], producer, out, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    entry = manifest["runs"].pop(run_key(CONFIG))
    manifest["runs"]["0" * 20] = entry  # a key this config does not give
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert listed_runs(out) == []
