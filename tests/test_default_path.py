"""The road users walk, end to end through the CLI: every command on its defaults except the weights (random
values saved in the real file formats) and the smallest architecture; the face crop finds real faces.

synth --faces real -> extract -> inspect -> train -> evaluate -> predict (files, --json, --top) -> export
-> extract --backend onnxruntime --engines into a second cache -> train -> predict with that run -> the video
weights file moves -> predict asks for it, and takes it from --video-weights.
"""

import json
import shutil

import pytest
import torch
import torchvision
from typer.testing import CliRunner

from avemo.cache import FeatureCache
from avemo.cli import app
from avemo.spec import FeatureSpec
from tests.engines.test_weights import save_hara

runner = CliRunner()
VIDEO_ARCH = ["--video-arch", "r3d10"]  # the smallest Hara architecture; everything else as a user runs it


def invoke(*args: str, code: int = 0):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, result.output
    return result


@pytest.mark.slow
def test_every_command_on_its_defaults(tmp_path):
    data = tmp_path / "data"
    invoke("synth", data, "--faces", "real", "--actors", "3", "--clips-per-actor", "8")
    weights = tmp_path / "weights"
    weights.mkdir()
    video_weights = weights / "resnet-10-kinetics.pth"  # Hara 2017 layout: module.* keys, 400 classes, legacy file
    save_hara(video_weights, "r3d10", 400, 2017)
    audio_weights = weights / "resnet18-f37072fd.pth"  # torchvision's layout: a plain state dict
    torch.save(torchvision.models.resnet18().state_dict(), audio_weights)
    weight_options = ["--video-weights", video_weights, "--audio-weights", audio_weights, *VIDEO_ARCH]

    # extract, default crop (face) and size (112)
    invoke("extract", data, "--cache", tmp_path / "cache", *weight_options)
    cache = FeatureCache.open(tmp_path / "cache")
    spec = cache.spec
    assert FeatureSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec
    assert (spec.video.crop, spec.video.size, spec.face is not None) == ("face", 112, True)
    assert spec.video_backbone.weights.path == str(video_weights.resolve())
    assert spec.video_backbone.normalization.name == "hara2017" and spec.audio_backbone.weights.release == "state-dict"
    entries, broken = cache.scan()
    assert len(entries) == 24 and broken == []
    assert cache.manifest["video_shape"] == [6, 512, 16] and cache.manifest["audio_shape"] == [6, 512]
    assert sum(e["crop"]["source"] == "face" for e in entries) >= 20  # the detector found the faces
    report = json.loads((tmp_path / "cache" / "report.json").read_text())
    assert report["failed"] == [] and len(report["no_face"]) == sum(e["crop"]["source"] != "face" for e in entries)
    shown = invoke("inspect", tmp_path / "cache").stdout
    for words in ("resnet-10-kinetics.pth", "resnet18-f37072fd.pth", "hara2017", "face", "112", "float16",
                  "torch-fp32, pyav decoder: 24"):
        assert words in " ".join(shown.split()), (words, shown)

    # train and evaluate (3 folds: one test and one validation actor each)
    invoke("train", tmp_path / "cache", "--run", tmp_path / "run", "--n-folds", "3", "--epochs", "8")
    run_config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert FeatureSpec.from_json(run_config["feature_spec"]) == spec
    evaluation = json.loads(invoke("evaluate", tmp_path / "run", "--json").stdout)
    assert evaluation["folds"] == ["fold_1", "fold_2", "fold_3"] and len(evaluation["classes"]) == 8

    # predict: nothing but the run
    clips = sorted(data.rglob("*.mp4"))[:2]
    predicted = json.loads(invoke("predict", *clips, "--run", tmp_path / "run", "--json", "--top", "2").stdout)
    assert [p["path"] for p in predicted] == [str(c) for c in clips]
    assert all(p["error"] is None and len(p["emotions"]) == 2 for p in predicted)
    lines = invoke("predict", *clips, "--run", tmp_path / "run").stdout.strip().splitlines()
    assert len(lines) == 2 and all(c.name in line for c, line in zip(clips, lines))

    # export, then extract with ONNX Runtime into a second cache: the same fingerprint, made by another runtime
    invoke("export", "--engines", tmp_path / "engines", *weight_options)
    invoke("extract", data, "--cache", tmp_path / "cache-ort", "--backend", "onnxruntime", "--engines",
           tmp_path / "engines", *weight_options)
    ort = FeatureCache.open(tmp_path / "cache-ort")
    assert ort.fingerprint == cache.fingerprint and len(ort.index()) == 24
    assert {e["produced_by"] for e in ort.index()} == {"onnxruntime-fp32 (CPUExecutionProvider), pyav decoder"}
    invoke("train", tmp_path / "cache-ort", "--run", tmp_path / "run-ort", "--n-folds", "3", "--epochs", "8")
    clip = clips[0]
    by_torch = json.loads(invoke("predict", clip, "--run", tmp_path / "run", "--json", "--top", "8").stdout)[0]
    by_ort = json.loads(invoke("predict", clip, "--run", tmp_path / "run-ort", "--json", "--top", "8").stdout)[0]
    # Features equal up to float16 rounding: the two runs train alike and rank this clip alike.
    assert by_torch["emotions"][0]["emotion"] == by_ort["emotions"][0]["emotion"]
    torch_probs = {e["emotion"]: e["probability"] for e in by_torch["emotions"]}
    for e in by_ort["emotions"]:
        assert e["probability"] == pytest.approx(torch_probs[e["emotion"]], abs=0.02)

    # the weights move: predict says which flag to pass, and verifies the file it is given
    moved = tmp_path / "moved" / video_weights.name
    moved.parent.mkdir()
    shutil.move(video_weights, moved)
    refused = invoke("predict", clip, "--run", tmp_path / "run", code=2)
    (line,) = [l for l in refused.output.splitlines() if l.startswith("error:")]
    assert "video weights" in line and "--video-weights FILE" in line
    again = json.loads(invoke("predict", clip, "--run", tmp_path / "run", "--json", "--top", "8",
                              "--video-weights", moved).stdout)[0]
    assert again == by_torch
