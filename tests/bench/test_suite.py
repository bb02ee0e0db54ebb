"""``avemo bench --quick``: every section runs, rows read as multiples of their baseline, outputs are written."""

import json

import pytest
from typer.testing import CliRunner

from avemo.bench.suite import BenchReport, Section, build_ravdess_scale_cache, ravdess_scale_records
from avemo.machine import native_bf16
from avemo.cli import app
from avemo.pipeline.dali import dali_installed
from avemo.pipeline.face import current_detector
from avemo.spec import LBP_CASCADE


def test_rows_read_as_multiples_of_the_first():
    section = Section("t", "b")
    section.add("baseline", 2.0, "clip")
    section.add("twice as fast", 1.0, "clip")
    section.add("slower", 4.0, "clip")
    assert [r.ratio for r in section.rows] == [1.0, 2.0, 0.5]
    text = BenchReport("cpu", "x86_64", "2026-11-24", True, [section]).markdown()
    assert "| twice as fast | 1.0000 | clip | 2.00x |" in text


@pytest.mark.slow
def test_quick_bench_measures_every_section_against_the_seed(tmp_path):
    result = CliRunner().invoke(app, ["bench", "--quick", "--json", str(tmp_path / "b.json"), "--out", str(tmp_path),
                                      "--device", "cpu"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "b.json").read_text())
    titles = [s["title"] for s in report["sections"]]
    assert [t.split(" ")[0] for t in titles] == ["Video", "Backbones", "Feature", "Fusion"]
    for section in report["sections"]:
        rows = section["rows"]
        assert rows[0]["name"].startswith("seed") and rows[0]["ratio"] == 1.0
        assert len(rows) >= 2 and all(r["seconds"] > 0 for r in rows)
        for row in rows:
            assert row["ratio"] == pytest.approx(rows[0]["seconds"] / row["seconds"])
    decoding = report["sections"][0]
    assert any(r["name"].startswith("dali") for r in decoding["rows"]) == dali_installed()
    assert any("frames/s" in limit for limit in decoding["limits"])
    # the detector this installation runs beside the cascade it replaced, each with its cost over the centre crop
    detectors = {current_detector().detector, LBP_CASCADE}
    assert {r["name"].split(", ")[1].split(" ")[0] for r in decoding["rows"]
            if r["name"].startswith("pyav + face crop")} == detectors
    assert {d for d in detectors for limit in decoding["limits"]
            if limit.startswith(f"the face crop with {d} costs")} == detectors
    backbones = report["sections"][1]
    assert any("27.8 per 16x112x112 snippet" in limit for limit in backbones["limits"])  # Hara's r3d101
    (peak,) = [limit for limit in backbones["limits"] if "matrix-product rate" in limit]
    # bf16 is timed only where the CPU has it natively; elsewhere the skip and its reason are printed
    assert ("bfloat16" in peak) == native_bf16()
    assert any("bf16" in r["name"] for r in backbones["rows"]) == native_bf16()
    assert any(limit.startswith("torch bf16: skipped") and "emulates" in limit
               for limit in backbones["limits"]) != native_bf16()
    assert "section 2/4: backbones per runtime" in result.stderr
    assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| seed" in (tmp_path / "bench.md").read_text()


def test_ravdess_scale_cache_has_ravdess_clip_counts():
    records = ravdess_scale_records()
    assert len(records) == 2452 and len({r["clip_id"] for r in records}) == 2452
    assert sum(r["vocal_channel"] == "speech" for r in records) == 1440
    assert sum(r["vocal_channel"] == "song" for r in records) == 1012
    assert {r["actor"] for r in records} == set(range(1, 25))
    assert not [r for r in records if r["actor"] == 18 and r["vocal_channel"] == "song"]
    assert {r["emotion"] for r in records if r["vocal_channel"] == "song"} == \
        {"neutral", "calm", "happy", "sad", "angry", "fearful"}


def test_the_ravdess_scale_cache_opens_and_loads_for_training(tmp_path):
    from avemo.fusion.data import FeatureSet

    assert build_ravdess_scale_cache(tmp_path / "cache", limit=24) == 24
    data = FeatureSet.load(tmp_path / "cache")
    assert data.video.shape == (24, 6, 2048, 16) and data.audio.shape == (24, 6, 512)
    assert data.spec.video_backbone.weights.random and len(set(data.labels.tolist())) > 1


def test_exported_rows_check_the_graphs_against_the_nets_already_built(tmp_path, monkeypatch):
    """The ONNX rows reuse the spec of the timed nets: no backbone is built again just to read it."""
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install 'avemo[onnx]')")
    import torch

    from avemo import spec as spec_module
    from avemo.bench import suite
    from avemo.engines import backbones
    from avemo.engines.graphs import EngineError

    config = spec_module.BackboneConfig(video_arch="r3d10")
    video_net, video_backbone = backbones.build_video(config)
    audio_net, audio_backbone = backbones.build_audio(config)
    spec = spec_module.FeatureSpec(video_backbone, audio_backbone)

    def built_again(*args, **kwargs):
        raise AssertionError("a backbone was built again")

    for module in (backbones, suite, spec_module):
        for name in ("build_video", "build_audio", "build_backbones"):
            monkeypatch.setattr(module, name, built_again, raising=False)
    exported = []
    monkeypatch.setattr("avemo.export.onnx.export_backbones", lambda c: exported.append((c.backbones, c.precision)))
    rows = suite._exported_backends(video_net, audio_net, spec, config, torch.device("cpu"), tmp_path)
    assert exported == [(config, "fp32"), (config, "fp16")]
    assert [label for label, _ in rows] == ["onnxruntime fp32 graph", "onnxruntime fp16 graph"]  # no TensorRT on a CPU
    with pytest.raises(EngineError, match=r"video-r3d10-\S+-fp16\.onnx: no video graph"):
        rows[1][1]()  # built when timed: the graphs for the nets' own weights and precision are looked for


@pytest.mark.slow
def test_the_timeline_section_times_both_ways_on_the_run_given_and_counts_the_windows(fusion_cache, tmp_path):
    from avemo.fusion.model import FusionConfig
    from avemo.fusion.runs import train_run
    from avemo.fusion.train import TrainConfig

    run = tmp_path / "run"
    train_run(fusion_cache, run, TrainConfig(n_folds=4, folds=[1], epochs=1, model=FusionConfig(dim=32)))
    result = CliRunner().invoke(app, ["bench", "--quick", "--timeline", str(run), "--timeline-seconds", "12",
                                      "--json", str(tmp_path / "b.json"), "--out", str(tmp_path), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    (section,) = json.loads((tmp_path / "b.json").read_text())["sections"]
    assert section["title"].startswith("timeline of a 12 s 640x360 clip: run run (")
    rows = section["rows"]
    assert [r["name"] for r in rows] == ["one after the other", "decoding in a thread alongside the backbones"]
    window = float(section["rows"][0]["note"].split(" windows of ")[1].split(" s")[0])
    windows = int((12 - window) / (window / 6) + 1e-6) + 1  # a window every snippet (window / 6) inside 12 s
    for row in rows:
        assert row["unit"] == "video second" and row["seconds"] > 0
        assert row["note"].startswith(f"{windows} windows of") and "peak RSS" in row["note"]
    missing = CliRunner().invoke(app, ["bench", "--timeline", str(tmp_path / "nothing"), "--out", str(tmp_path)])
    assert missing.exit_code == 2 and "nothing" in missing.output and "Traceback" not in missing.output
