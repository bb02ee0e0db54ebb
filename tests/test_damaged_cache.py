"""One flipped byte in a cache entry: inspect --verify names it, train refuses it, extract rebuilds it."""

import json
import shutil

import torch
from safetensors.torch import load
from typer.testing import CliRunner

from avemo.cache import FeatureCache
from avemo.cli import app
from tests.cache.test_checksum import flip_byte

runner = CliRunner()
# The settings tests/conftest.py's make_cache extracted fusion_cache with.
EXTRACT = ["--video-arch", "r3d10", "--size", "64", "--crop", "center", "--workers", "1", "--batch-size", "8"]
TRAIN = ["--n-folds", "4", "--folds", "1", "--epochs", "1", "--batch-size", "16", "--dim", "32"]
VICTIM = "01-01-03-01-01-01-02"


def test_a_flipped_byte_is_named_by_inspect_refused_by_train_and_rebuilt_by_extract(fusion_cache, tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(fusion_cache, cache)
    entry = FeatureCache.open(cache).entry_path(VICTIM)
    original = entry.read_bytes()
    flip_byte(entry, "video", at=1001)

    quick = runner.invoke(app, ["inspect", str(cache), "--json"])  # headers only: cannot see it
    assert quick.exit_code == 0 and json.loads(quick.stdout)["damaged_entries"] == []
    result = runner.invoke(app, ["inspect", str(cache), "--verify"])
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert f"damaged {entry}: checksum mismatch" in text and "avemo extract" in text
    info = json.loads(runner.invoke(app, ["inspect", str(cache), "--verify", "--json"]).stdout)
    assert info["checksums"] == {"ok": 63, "no checksum": 0, "damaged": 1}
    assert [d["entry"] for d in info["damaged_entries"]] == [str(entry)]

    refused = runner.invoke(app, ["train", str(cache), "--run", str(tmp_path / "run"), *TRAIN])
    assert refused.exit_code == 2, refused.output
    text = " ".join(refused.output.split())
    assert f"1 damaged entry: {VICTIM} (checksum mismatch" in text and "avemo extract" in text
    assert "--skip-damaged" in text and not (tmp_path / "run" / "config.json").exists()

    skipped = runner.invoke(app, ["train", str(cache), "--run", str(tmp_path / "skip"), *TRAIN, "--skip-damaged"])
    assert skipped.exit_code == 0, skipped.output
    config = json.loads((tmp_path / "skip" / "config.json").read_text())
    assert [e.split(" ")[0] for e in config["skipped_damaged_entries"]] == [VICTIM]
    splits = json.loads((tmp_path / "skip" / "splits.json").read_text())
    assert all(VICTIM not in fold[part] for fold in splits for part in ("train", "val", "test"))

    rebuilt = runner.invoke(app, ["extract", str(fusion_cache.parent / "data"), "--cache", str(cache), *EXTRACT])
    assert rebuilt.exit_code == 0, rebuilt.output
    text = " ".join(rebuilt.output.split())
    assert "damaged entries extracted again: 1" in text and f"{entry}: checksum mismatch" in text
    assert "63 already cached, 1 to extract" in text
    before, after = load(original), load(entry.read_bytes())  # the features before the damage, to rounding
    for name in ("video", "audio"):  # (another batch composition may round differently)
        torch.testing.assert_close(after[name], before[name], rtol=1e-2, atol=1e-2)
    assert runner.invoke(app, ["inspect", str(cache), "--verify"]).exit_code == 0
