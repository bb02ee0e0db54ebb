"""``avemo predict`` end to end: decode, backbones, fusion for every crop mode and CREMA-D runs, with nothing but
the run; the spec guard; bad files and exit codes."""

import json
import shutil

import pytest
import torch
from typer.testing import CliRunner

from avemo.cli import app
from avemo.emotions import EMOTIONS
from avemo.engines.resnet3d import resnet3d
from avemo.fusion.data import FeatureSet
from avemo.fusion.run import Run
from avemo.recognizer import load_fold_models
from tests.conftest import trained

runner = CliRunner()


def predict_files(paths, run):
    return Run(run).recognizer(device="cpu").predict(paths)
@pytest.fixture(params=["face", "center", "none"])
def crop_run(request, crop_runs, faces_data):
    return (request.param, faces_data, *crop_runs(request.param))


def _expected(run, cache, clip_id):
    """The run's probabilities (every fold voting) on the cached features of ``clip_id``."""
    data = FeatureSet.load(cache)
    i = data.clip_ids.index(clip_id)
    folds = load_fold_models(Run(run))
    expected = torch.zeros(len(EMOTIONS))
    with torch.no_grad():
        for fold in folds:
            expected += torch.softmax(fold.model(data.video[i:i + 1], data.audio[i:i + 1])[1][0], dim=0) / len(folds)
    return expected, data.classes


def test_prediction_of_a_cached_clip_equals_the_models_on_its_cached_features(crop_run):
    """Nothing but the run: predict rebuilds the same backbones and the same crop as extract did."""
    crop, data, cache, run = crop_run
    assert json.loads((run / "config.json").read_text())["feature_spec"]["video"]["crop"] == crop
    clip = sorted(data.rglob("*.mp4"))[13]
    (prediction,) = predict_files([clip], run)
    assert prediction.error == ""
    expected, classes = _expected(run, cache, clip.stem)
    expected = expected[classes] / expected[classes].sum()  # the run's classes only, as predict restricts them
    got = dict(prediction.ranked)
    for k, label in enumerate(classes):
        assert got[EMOTIONS[label]] == pytest.approx(expected[k].item(), abs=2e-3)


def test_predict_ranks_emotions_honours_top_and_reports_bad_files(crop_run, tmp_path):
    _, data, _, run = crop_run
    clip = sorted(data.rglob("*.mp4"))[3]
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video")
    result = runner.invoke(app, ["predict", str(clip), str(bad), "--run", str(run), "--json", "--top", "2"])
    assert result.exit_code == 3, result.output  # some files failed
    good, failed = json.loads(result.stdout)
    assert good["error"] is None and len(good["emotions"]) == 2
    probs = [e["probability"] for e in good["emotions"]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) < 1
    assert failed["emotions"] == [] and "not a media file" in failed["error"]
    everything = runner.invoke(app, ["predict", str(clip), "--run", str(run), "--json", "--top", "8"])
    assert everything.exit_code == 0
    (one,) = json.loads(everything.stdout)
    assert len(one["emotions"]) == 8 and sum(e["probability"] for e in one["emotions"]) == pytest.approx(1, abs=1e-3)
    lines = runner.invoke(app, ["predict", str(clip), "--run", str(run)])
    assert lines.exit_code == 0 and lines.stdout.count(clip.name) == 1 and lines.stdout.count(",") == 2


@pytest.fixture
def center_run(crop_runs):
    return crop_runs("center")


def test_predict_refuses_backbones_that_make_other_features(center_run, faces_data, tmp_path):
    weights = tmp_path / "r3d10.pth"
    torch.save({"state_dict": resnet3d("r3d10", num_classes=700).state_dict()}, weights)
    clip = next((faces_data / "Actor_03").glob("*.mp4"))
    result = runner.invoke(app, ["predict", str(clip), "--run", str(center_run[1]), "--video-weights", str(weights)])
    assert result.exit_code == 2
    (line,) = [l for l in result.output.splitlines() if l.startswith("error:")]
    assert "backbones.video.weights.sha256" in line and str(center_run[1]) in line


def test_nothing_predictable_exits_1(center_run, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"")
    assert runner.invoke(app, ["predict", str(bad), "--run", str(center_run[1])]).exit_code == 1


def test_runs_written_before_specs_existed_still_predict(center_run, faces_data, tmp_path):
    cache, run = center_run
    old = tmp_path / "old-run"
    shutil.copytree(run, old)
    config = json.loads((old / "config.json").read_text())
    spec = FeatureSet.load(cache).spec
    del config["feature_spec"]  # the 0.1.0 layout: the cache's fingerprint inputs and dtype
    config.update(cache_inputs=spec.fingerprint_inputs(), cache_dtype=spec.dtype)
    (old / "config.json").write_text(json.dumps(config))
    clip = sorted(faces_data.rglob("*.mp4"))[5]
    (new_way,), (old_way,) = predict_files([clip], run), predict_files([clip], old)
    assert new_way.ranked == old_way.ranked


def test_a_damaged_run_configuration_is_one_line(center_run, faces_data, tmp_path):
    broken = tmp_path / "run"
    shutil.copytree(center_run[1], broken)
    (broken / "config.json").write_text("{not json")
    clip = next((faces_data / "Actor_01").glob("*.mp4"))
    result = runner.invoke(app, ["predict", str(clip), "--run", str(broken)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    (line,) = [l for l in result.output.splitlines() if l.startswith("error:")]
    assert "config.json" in line and "train the run again" in line


# RAVDESS emotion code -> CREMA-D's three letters, for the six emotions CREMA-D has.
CREMAD = {"01": "NEU", "03": "HAP", "04": "SAD", "05": "ANG", "06": "FEA", "07": "DIS"}


def test_predict_works_for_cremad_runs(faces_data, tmp_path):
    """CREMA-D names (and 6 emotions) in, the run's six emotions out."""
    data = tmp_path / "cremad" / "VideoFlash"
    data.mkdir(parents=True)
    for clip in faces_data.rglob("*.mp4"):
        parts = clip.stem.split("-")
        if parts[2] in CREMAD:
            shutil.copy(clip, data / f"{1000 + int(parts[6])}_DFA_{CREMAD[parts[2]]}_XX.flv")
    cache, run = trained(data.parent, tmp_path / "work", "--dataset", "cremad", "--crop", "center")
    clip = next(data.glob("1002_*.flv"))
    (prediction,) = predict_files([clip], run)
    assert prediction.error == "" and {e for e, _ in prediction.ranked} == \
        {"neutral", "happy", "sad", "angry", "fearful", "disgust"}
    expected, classes = _expected(run, cache, clip.stem)
    expected = expected[classes] / expected[classes].sum()
    got = dict(prediction.ranked)
    for k, label in enumerate(classes):
        assert got[EMOTIONS[label]] == pytest.approx(expected[k].item(), abs=2e-3)
