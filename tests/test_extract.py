"""``avemo extract`` and ``avemo inspect`` end to end on synthetic RAVDESS clips."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from typer.testing import CliRunner

from avemo.cache import FeatureCache
from avemo.cli import app
from avemo.engines.backbones import build_audio, build_video
from avemo.pipeline.discover import discover
from avemo.pipeline.prepare import prepare_clip
from avemo.spec import AudioConfig, BackboneConfig, VideoConfig
from tests.conftest import FAST_EXTRACT, solid_clip

runner = CliRunner()


def extract(data, cache, *extra):
    return runner.invoke(app, ["extract", str(data), "--cache", str(cache), *FAST_EXTRACT, *extra])


def inspect_json(cache) -> dict:
    result = runner.invoke(app, ["inspect", str(cache), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_extract_caches_every_clip_resumes_and_stores_each_clip_under_its_own_name(synth_root, tmp_path):
    cache = tmp_path / "cache"
    result = extract(synth_root, cache)
    assert result.exit_code == 0, result.output
    info = inspect_json(cache)
    assert info["entries"] == 32 and info["broken_entries"] == []
    assert info["video_shape"] == [6, 512, 1] and info["audio_shape"] == [6, 512] and info["dtype"] == "float16"
    assert info["actors"] == {"1": 8, "2": 8, "3": 8, "4": 8}
    assert set(info["emotions"].values()) == {4} and len(info["emotions"]) == 8

    # Features of one clip recomputed directly must equal its entry (catches batching mix-ups).
    store = FeatureCache.open(cache)
    clip = discover(synth_root).clips[13]
    config = VideoConfig(size=32, resize=32)
    prepared = prepare_clip(clip, config, AudioConfig())
    video_net, _ = build_video(BackboneConfig(video_arch="r3d10"))
    audio_net, _ = build_audio(BackboneConfig())
    with torch.inference_mode():
        expected_v, expected_a = video_net(prepared.video), audio_net(prepared.audio)
    video, audio = store.read(clip.clip_id)
    torch.testing.assert_close(video.float(), expected_v, rtol=2e-3, atol=2e-3 * expected_v.abs().max().item())
    torch.testing.assert_close(audio.float(), expected_a, rtol=2e-3, atol=2e-3)
    other, _ = store.read(discover(synth_root).clips[14].clip_id)
    assert not torch.allclose(other.float(), video.float())

    mtimes = {p: p.stat().st_mtime_ns for p in store.clips_dir.iterdir()}
    again = extract(synth_root, cache)
    assert again.exit_code == 0 and "32 already cached, 0 to extract" in again.output
    assert {p: p.stat().st_mtime_ns for p in store.clips_dir.iterdir()} == mtimes


def test_other_settings_are_refused_without_touching_the_cache(synth_root, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(synth_root / "Actor_01", data / "Actor_01")
    cache = tmp_path / "cache"
    assert extract(data, cache).exit_code == 0
    result = runner.invoke(app, ["extract", str(data), "--cache", str(cache), "--video-arch", "r3d10",
                                 "--size", "64", "--workers", "0"])
    assert result.exit_code == 2
    assert "cache was made with other settings" in result.output and "video.size" in result.output
    assert inspect_json(cache)["entries"] == 8


def test_bad_inputs_are_reported_one_line_each_and_good_clips_extracted(synth_root, tmp_path):
    data = tmp_path / "data" / "Actor_01"
    data.mkdir(parents=True)
    good = sorted((synth_root / "Actor_01").glob("*.mp4"))[:3]
    for path in good:
        shutil.copy(path, data)
    (data / "01-01-03-01-01-01-05.mp4").write_bytes(b"")
    whole = good[0].read_bytes()
    (data / "01-01-04-01-01-01-05.mp4").write_bytes(whole[: len(whole) // 3])
    solid_clip(data / "01-01-05-01-01-01-05.mp4", (9, 9, 9))  # no audio track
    shutil.copy(good[0], data / "02-01-03-01-01-01-01.mp4")
    (data / "03-01-03-01-01-01-01.wav").write_bytes(b"RIFF")
    (data / "my holiday.mp4").write_bytes(b"x")
    cache = tmp_path / "cache"
    result = extract(data.parent, cache)
    assert result.exit_code == 0, result.output
    assert inspect_json(cache)["entries"] == 3
    out = " ".join(result.output.split())  # undo the terminal's line wrapping
    for name, reason in [("01-01-03-01-01-01-05.mp4", "empty file"),
                         ("01-01-04-01-01-01-05.mp4", "truncated"),
                         ("01-01-05-01-01-01-05.mp4", "no audio track"),
                         ("02-01-03-01-01-01-01.mp4", "modality 02"),
                         ("03-01-03-01-01-01-01.wav", "modality 03"),
                         ("my holiday.mp4", "unparseable name")]:
        assert any(name in line and reason in line for line in result.output.splitlines()) or \
            f"{name}: {reason}" in out, (name, reason, result.output)
    report = json.loads((cache / "report.json").read_text())
    assert len(report["failed"]) == 3 and len(report["skipped"]) == 3


def test_a_clip_whose_features_cannot_be_stored_fails_alone(synth_root, tmp_path, monkeypatch):
    from avemo.cache import CacheError
    from avemo.extraction import ExtractConfig, run_extract

    real_write = FeatureCache.write

    def write(self, clip_id, *args, **kwargs):
        if clip_id == "01-01-03-01-01-01-01":
            raise CacheError(f"{clip_id}: features are not finite in float16; not written")
        return real_write(self, clip_id, *args, **kwargs)

    monkeypatch.setattr(FeatureCache, "write", write)
    config = ExtractConfig(data=synth_root / "Actor_01", cache=tmp_path / "cache", workers=0, batch_size=4,
                           backbones=BackboneConfig(video_arch="r3d10"), video=VideoConfig(size=32, resize=32))
    summary = run_extract(config)
    assert summary.written == 7 and summary.entries == 7
    (failure,) = summary.failed
    assert failure.path.name == "01-01-03-01-01-01-01.mp4" and failure.reason == "features not stored"


def test_nothing_usable_exits_1_and_missing_weights_exit_2(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "01-01-03-01-01-01-05.mp4").write_bytes(b"")
    result = extract(data, tmp_path / "cache")
    assert result.exit_code == 1 and "no usable clip" in result.output
    result = extract(data, tmp_path / "cache2", "--video-weights", str(tmp_path / "resnet-101-kinetics.pth"))
    assert result.exit_code == 2
    (line,) = [l for l in result.output.splitlines() if l.startswith("error:")]
    assert "resnet-101-kinetics.pth" in " ".join(result.output.split()) and "not found" in result.output


@pytest.mark.slow
def test_killed_run_leaves_only_whole_entries_and_a_rerun_completes(synth_root, tmp_path):
    cache = tmp_path / "cache"
    command = [sys.executable, "-m", "avemo", "extract", str(synth_root), "--cache", str(cache), *FAST_EXTRACT,
               "--batch-size", "1"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((cache / "clips").glob("*.safetensors"))) < 3:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    written = len(list((cache / "clips").glob("*.safetensors")))
    assert 3 <= written < 32, "the run must be killed part-way for this test to mean anything"
    store = FeatureCache.open(cache)
    entries, broken = store.scan()
    assert broken == [] and len(entries) == written
    result = extract(synth_root, cache)
    assert result.exit_code == 0, result.output
    assert f"{written} already cached" in " ".join(result.output.split())
    info = inspect_json(cache)
    assert info["entries"] == 32 and info["broken_entries"] == []
    assert not list((cache / "clips").glob(".*.tmp"))


@pytest.mark.slow
def test_full_size_backbones_on_one_clip(synth_root, tmp_path):
    data = tmp_path / "one"
    data.mkdir()
    shutil.copy(next((synth_root / "Actor_02").glob("*.mp4")), data)
    result = runner.invoke(app, ["extract", str(data), "--cache", str(tmp_path / "cache"), "--workers", "0"])
    assert result.exit_code == 0, result.output
    info = inspect_json(tmp_path / "cache")
    assert info["entries"] == 1 and info["video_shape"] == [6, 2048, 16] and info["audio_shape"] == [6, 512]
    video, audio = FeatureCache.open(tmp_path / "cache").read(next(iter(discover(data).clips)).clip_id)
    assert torch.isfinite(video.float()).all() and video.float().std() > 0 and audio.float().std() > 0
