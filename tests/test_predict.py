"""``avemo predict`` end to end: decode, backbones, fusion; the fingerprint guard; bad files."""

import json

import pytest
import torch
from typer.testing import CliRunner

from avemo.cli import app
from avemo.engines.resnet3d import resnet3d
from avemo.fusion.model import FusionConfig
from avemo.fusion.runs import train_run
from avemo.fusion.train import TrainConfig

runner = CliRunner()


@pytest.fixture(scope="module")
def run(fusion_cache, tmp_path_factory):
    path = tmp_path_factory.mktemp("predict") / "run"
    train_run(fusion_cache, path, TrainConfig(n_folds=4, folds=[1, 2], epochs=3, model=FusionConfig(dim=32)))
    return path


def test_predict_ranks_all_emotions_and_reports_bad_files(run, fusion_cache, tmp_path):
    clip = next((fusion_cache.parent / "data" / "Actor_03").glob("*.mp4"))
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video")
    result = runner.invoke(app, ["predict", str(clip), str(bad), "--run", str(run), "--json"])
    assert result.exit_code == 0, result.output
    good, failed = json.loads(result.stdout)
    assert good["error"] is None and len(good["emotions"]) == 8
    probs = [e["probability"] for e in good["emotions"]]
    assert sum(probs) == pytest.approx(1, abs=1e-3) and probs == sorted(probs, reverse=True)
    assert failed["emotions"] == [] and "not a media file" in failed["error"]


def test_prediction_of_a_cached_clip_equals_the_models_on_its_cached_features(run, fusion_cache):
    from avemo.fusion.data import FeatureSet
    from avemo.predict import load_fold_models, predict_files

    data = FeatureSet.load(fusion_cache)
    i = 13
    clip = next((fusion_cache.parent / "data").rglob(f"{data.clip_ids[i]}.mp4"))
    (prediction,) = predict_files([clip], run, "random", "random")
    expected = torch.zeros(8)
    with torch.no_grad():
        for fold in load_fold_models(run):
            expected += torch.softmax(fold.model(data.video[i:i + 1], data.audio[i:i + 1])[1][0], dim=0) / 2
    got = dict(prediction.ranked)
    from avemo.emotions import EMOTIONS

    for k, name in enumerate(EMOTIONS):
        assert got[name] == pytest.approx(expected[k].item(), abs=2e-3)


def test_predict_refuses_backbones_that_make_other_features(run, fusion_cache, tmp_path):
    weights = tmp_path / "r3d10.pth"
    torch.save({"state_dict": resnet3d("r3d10", num_classes=700).state_dict()}, weights)
    clip = next((fusion_cache.parent / "data" / "Actor_03").glob("*.mp4"))
    result = runner.invoke(app, ["predict", str(clip), "--run", str(run), "--video-weights", str(weights)])
    assert result.exit_code == 2
    assert "backbones.video.weights_sha256" in " ".join(result.output.split())


def test_nothing_predictable_exits_1(run, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"")
    assert runner.invoke(app, ["predict", str(bad), "--run", str(run)]).exit_code == 1
