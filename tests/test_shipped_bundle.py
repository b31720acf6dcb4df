"""The trace bundle that ships with the project (``traces/default``): manifest, digests, and a re-training here."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from regutils.bundle import BUDGET_BYTES, MANIFEST, Bundle, BundleError, verify
from regutils.profiles import settings
from regutils.cache import Cache
from regutils.train import load_for, run_key, seeds_of, train

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "traces" / "default"
EPOCHS_CHECKED = 2


@pytest.fixture(scope="module")
def manifest():
    assert (SHIPPED / MANIFEST).is_file(), f"{SHIPPED} is missing: `make traces` writes it, and it is committed"
    return Bundle(SHIPPED).manifest


def test_every_shipped_file_matches_the_manifest_and_the_budget(manifest):
    assert verify(SHIPPED) == []
    assert manifest["profile"] == "default"
    assert manifest["total_bytes"] == sum(f["bytes"] for r in manifest["runs"].values() for f in r["files"].values())
    assert manifest["total_bytes"] <= BUDGET_BYTES
    listed = {f["name"] for r in manifest["runs"].values() for f in r["files"].values()}
    assert {p.name for p in SHIPPED.iterdir()} == listed | {MANIFEST}


def test_the_bundle_holds_the_default_profiles_main_runs_with_their_provenance(manifest):
    s = settings("default")
    for config in seeds_of(s.run_config(), s.runs):
        entry = manifest["runs"][run_key(config)]
        assert entry["config"]["seed"] == config.seed
        assert entry["provenance"]["train_seconds"] > 0 and entry["provenance"]["hardware"]


@pytest.mark.slow
def test_a_bundled_run_retrained_here_reproduces_its_first_epochs_bit_for_bit(manifest):
    """The cheapest architecture of the default profile, seed 0, trained again for its first epochs."""
    s = settings("default")
    config = s.run_config(arch="convnet3_half")
    key = run_key(config)
    stored = Bundle(SHIPPED).trace(key)
    threads = stored.meta["environment"].get("threads", 1)  # the bundle's CPU runs name their thread count
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        fresh = train(config, load_for(config.data, config.arch), device="cpu", progress=False,
                      stop_after=EPOCHS_CHECKED)
    finally:
        torch.set_num_threads(before)
    for name in ("train_correct", "test_correct", "batch_correct", "batch_step", "train_prob", "test_prob"):
        np.testing.assert_array_equal(getattr(fresh, name)[:EPOCHS_CHECKED], getattr(stored, name)[:EPOCHS_CHECKED],
                                      err_msg=name)
    for k in ("loss", "train_acc", "test_acc", "lr"):
        np.testing.assert_array_equal(fresh.history[k][:EPOCHS_CHECKED], stored.history[k][:EPOCHS_CHECKED], err_msg=k)


def test_a_tampered_copy_of_the_shipped_bundle_is_refused(manifest, tmp_path):
    key, entry = next(iter(manifest["runs"].items()))
    copy = tmp_path / "bundle"
    copy.mkdir()
    (copy / MANIFEST).write_text(json.dumps(dict(manifest, runs={key: entry})))
    name = entry["files"]["trace"]["name"]
    shutil.copy(SHIPPED / name, copy / name)
    blob = bytearray((copy / name).read_bytes())
    blob[len(blob) // 2] ^= 0x01
    (copy / name).write_bytes(bytes(blob))
    with pytest.raises(BundleError, match="sha256"):
        Cache(tmp_path / "cache", bundles=[copy]).load(key)
    assert verify(copy)
