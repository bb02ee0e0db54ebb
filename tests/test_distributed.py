"""Sharded extraction under torchrun: two CPU processes (gloo) on the synthetic dataset."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from avemo.cache import FeatureCache
from avemo.cli import app
from avemo.distributed import World
from tests.conftest import FAST_EXTRACT


def torchrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
            "-m", "avemo", *args]


def test_shards_are_disjoint_fixed_and_cover_everything():
    items = list(range(11))
    shards = [World(rank, 3).shard(items) for rank in range(3)]
    assert sorted(sum(shards, [])) == items
    assert shards == [World(rank, 3).shard(items) for rank in range(3)]  # the same on every run
    assert World().shard(items) == items and World().main


@pytest.mark.slow
def test_two_ranks_extract_what_one_process_does(synth_root, tmp_path):
    single = CliRunner().invoke(app, ["extract", str(synth_root), "--cache", str(tmp_path / "one"), *FAST_EXTRACT])
    assert single.exit_code == 0, single.output
    run = subprocess.run(torchrun("extract", str(synth_root), "--cache", str(tmp_path / "two"), *FAST_EXTRACT),
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    output = " ".join((run.stdout + run.stderr).split())
    assert "processes (torchrun ranks) │ 2" in output and "extracted now │ 32" in output
    one, two = FeatureCache.open(tmp_path / "one"), FeatureCache.open(tmp_path / "two")
    assert one.fingerprint == two.fingerprint
    entries = {e["clip_id"]: e for e in one.index()}
    assert len(entries) == 32
    assert {e["clip_id"]: e for e in two.index()} == entries  # same clips, same metadata
    for clip_id in entries:
        for got, expected in zip(two.read(clip_id), one.read(clip_id)):
            # Other batch companions can change oneDNN's kernels: float rounding, then float16 storage.
            torch.testing.assert_close(got.float(), expected.float(), rtol=2e-3,
                                       atol=2e-3 * expected.float().abs().max().item())


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


@pytest.mark.slow
def test_a_killed_rank_leaves_whole_entries_and_the_same_command_finishes(synth_root, tmp_path):
    cache = tmp_path / "cache"
    command = torchrun("extract", str(synth_root), "--cache", str(cache), *FAST_EXTRACT, "--batch-size", "1",
                       "--workers", "0")
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 180
    while time.time() < deadline and len(list((cache / "clips").glob("*.safetensors"))) < 4:
        time.sleep(0.02)
    ranks = _children(proc.pid)
    assert len(ranks) == 2
    os.kill(ranks[1], signal.SIGKILL)  # one rank dies; torchrun stops the other
    try:
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    written = len(list((cache / "clips").glob("*.safetensors")))
    assert 4 <= written < 32, "the run must be killed part-way for this test to mean anything"
    entries, broken = FeatureCache.open(cache).scan()
    assert broken == [] and len(entries) == written
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    entries, broken = FeatureCache.open(cache).scan()
    assert len(entries) == 32 and broken == []
    assert not list((cache / "clips").glob(".*.tmp"))


@pytest.mark.slow
def test_two_ranks_train_the_folds_as_one_process_does(fusion_cache, tmp_path):
    args = ["train", str(fusion_cache), "--n-folds", "4", "--folds", "1,2", "--epochs", "4", "--dim", "32",
            "--batch-size", "16"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # torchrun's per-rank default: the same arithmetic in both
    one = subprocess.run([sys.executable, "-m", "avemo", *args, "--run", str(tmp_path / "one")], env=env,
                         capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stdout + one.stderr
    two = subprocess.run(torchrun(*args, "--run-dir", str(tmp_path / "two")), env=env, capture_output=True, text=True,
                         timeout=600)
    assert two.returncode == 0, two.stdout + two.stderr
    folds = sorted(p.parent.name for p in (tmp_path / "one").glob("*/metrics.json"))
    assert len(folds) == 2
    assert sorted(p.parent.name for p in (tmp_path / "two").glob("*/metrics.json")) == folds
    assert (tmp_path / "one" / "splits.json").read_text() == (tmp_path / "two" / "splits.json").read_text()
    for fold in folds:
        a = np.load(tmp_path / "one" / fold / "predictions.npz")
        b = np.load(tmp_path / "two" / fold / "predictions.npz")
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            if a[key].dtype.kind == "f":
                np.testing.assert_allclose(b[key], a[key], rtol=1e-5, atol=1e-6)
            else:
                np.testing.assert_array_equal(b[key], a[key])
        metrics = [json.loads((tmp_path / run / fold / "metrics.json").read_text()) for run in ("one", "two")]
        assert metrics[0]["best_val_uar"] == metrics[1]["best_val_uar"]


def test_merged_summary_counts_every_rank_once():
    from avemo.extraction import ExtractSummary, merge
    from avemo.pipeline.clips import Skipped

    parts = [ExtractSummary(found=10, cached_before=1, written=4, failed=[Skipped(Path("a"), "bad")], seconds=5.0,
                            device="cpu"),
             ExtractSummary(found=10, cached_before=2, written=3, no_face=[Path("b")], seconds=7.0, device="cpu")]
    total = merge(parts)
    assert (total.found, total.cached_before, total.written, total.ranks, total.seconds) == (10, 3, 7, 2, 7.0)
    assert [s.path for s in total.failed] == [Path("a")] and total.no_face == [Path("b")]


@pytest.mark.slow
def test_two_ranks_share_the_videos_of_a_timeline_and_report_them_all(fusion_cache, tmp_path):
    from avemo.fusion.model import FusionConfig
    from avemo.fusion.runs import train_run
    from avemo.fusion.train import TrainConfig
    from avemo.synth import SynthConfig, synthesize_long

    run = tmp_path / "run"
    train_run(fusion_cache, run, TrainConfig(n_folds=4, folds=[1], epochs=1, model=FusionConfig(dim=32)))
    videos = [tmp_path / f"v{k}.mp4" for k in range(3)]
    for k, video in enumerate(videos):
        synthesize_long(video, 5, seed=k, config=SynthConfig(width=96, height=72))
    args = ["--run-dir", str(run), "--window", "3", "--hop", "1", "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    two = subprocess.run(torchrun("timeline", *map(str, videos), *args, "--out", str(tmp_path / "two")), env=env,
                         capture_output=True, text=True, timeout=600)
    assert two.returncode == 0, two.stdout + two.stderr
    listed = json.loads(two.stdout)  # rank 0 prints every rank's videos, in the order given
    assert [v["video"] for v in listed] == [str(v) for v in videos] and all(v["windows"] == 3 for v in listed)
    assert "on 2 torchrun ranks" in " ".join(two.stderr.split())
    one = CliRunner().invoke(app, ["timeline", *map(str, videos), *args, "--out", str(tmp_path / "one")])
    assert one.exit_code == 0, one.output
    for k in range(3):
        a, b = (json.loads((tmp_path / n / f"v{k}-timeline" / "timeline.json").read_text())["windows"]
                for n in ("one", "two"))
        assert [w["start"] for w in a] == [w["start"] for w in b] == [0, 1, 2]
        for wa, wb in zip(a, b):
            assert wb["probabilities"] == pytest.approx(wa["probabilities"], abs=2e-3)
    # one video: one rank does it, and every rank shows its timeline (rank 0 prints it)
    single = subprocess.run(torchrun("timeline", str(videos[0]), *args, "--out", str(tmp_path / "single")), env=env,
                            capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stdout + single.stderr
    assert [w["start"] for w in json.loads(single.stdout)["windows"]] == [0, 1, 2]
