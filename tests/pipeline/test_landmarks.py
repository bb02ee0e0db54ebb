"""--crop landmarks: boxes from OpenFace landmark CSVs, untrusted frames ignored, fallbacks reported, the
settings in the feature spec, and predict on a landmarks run."""

import json

import pytest
from typer.testing import CliRunner

from avemo.cache import FeatureCache
from avemo.cli import app
from avemo.fusion.model import FusionConfig
from avemo.fusion.runs import train_run
from avemo.fusion.train import TrainConfig
from avemo.pipeline.face import iou
from avemo.pipeline.landmarks import landmark_box, openface_csv, read_boxes
from avemo.spec import MARGIN, FeatureSpec, LandmarkSettings, VideoConfig
from avemo.synth import SynthConfig, synthesize
from tests.conftest import make_spec

runner = CliRunner()
SMALL = ["--video-arch", "r3d10", "--size", "32", "--workers", "0", "--batch-size", "4"]


def test_untrusted_frames_are_ignored_and_the_box_is_still_and_square(tmp_path):
    face = (40.0, 30.0, 50.0, 60.0)
    text = openface_csv([face] * 5, fps=30)
    header, *rows = text.splitlines()
    far = openface_csv([(200.0, 150.0, 20.0, 20.0)], fps=30).splitlines()[1].split(", ")
    lost, unsure = list(far), list(far)
    lost[4] = "0"  # success 0: the tracker lost the face
    unsure[3] = "0.30"  # confidence under the threshold
    path = tmp_path / "clip.csv"
    path.write_text("\n".join([header, *rows, *[", ".join(lost)] * 6, *[", ".join(unsure)] * 6]) + "\n")
    assert read_boxes(path, 0.8).round(2).tolist() == [list(face)] * 5
    box = landmark_box(path, 320, 240)
    assert box.source == "landmarks" and box.face == (40, 30, 50, 60)
    assert box.width == box.height == round(60 * MARGIN)  # the longer side widened, squared
    assert (box.x + box.width / 2, box.y + box.height / 2) == pytest.approx((65, 60), abs=0.5)  # same centre
    # a low enough threshold trusts the 6 unsure frames (far away, against 5): the median moves there
    assert landmark_box(path, 320, 240, LandmarkSettings(min_confidence=0.2)).face != box.face


def test_missing_or_too_unsure_files_give_no_box_and_broken_ones_are_named(tmp_path):
    assert landmark_box(tmp_path / "missing.csv", 320, 240) is None
    one = tmp_path / "one.csv"
    one.write_text(openface_csv([(1, 2, 30, 30)], fps=30))  # one trusted frame: too few
    assert landmark_box(one, 320, 240) is None
    bad = tmp_path / "bad.csv"
    bad.write_text("frame, success\n1, 1\n")
    with pytest.raises(ValueError, match="bad.csv.*not an OpenFace landmark file"):
        landmark_box(bad, 320, 240)


def test_the_confidence_threshold_is_part_of_the_feature_spec():
    video = VideoConfig(crop="landmarks")
    default = make_spec(video)
    assert default.landmarks == LandmarkSettings() and default.face is not None  # the detector is the fallback
    stricter = FeatureSpec(**{**default.__dict__, "landmarks": LandmarkSettings(min_confidence=0.95)})
    assert stricter.fingerprint != default.fingerprint
    assert stricter.differences(default) == ["landmarks.min_confidence"]
    assert FeatureSpec.from_json(json.loads(json.dumps(stricter.to_json()))) == stricter
    assert make_spec(VideoConfig(crop="face")).fingerprint != default.fingerprint
    assert "landmarks" not in make_spec(VideoConfig(crop="center")).to_json()  # older specs read as they did


@pytest.fixture(scope="module")
def landmark_data(tmp_path_factory):
    """3 actors x 2 clips around a photographed face, with exact landmark CSVs; one CSV removed."""
    root = tmp_path_factory.mktemp("landmarks")
    synthesize(root, actors=3, clips_per_actor=2, seed=5, config=SynthConfig(width=320, height=180, faces="real"))
    assert len(list((root / "landmarks").glob("*.csv"))) == 6
    (root / "landmarks" / "01-01-02-01-01-01-02.csv").unlink()
    return root


@pytest.fixture(scope="module")
def landmark_cache(landmark_data, tmp_path_factory):
    cache = tmp_path_factory.mktemp("lcache") / "cache"
    result = runner.invoke(app, ["extract", str(landmark_data), "--cache", str(cache), *SMALL, "--crop", "landmarks",
                                 "--landmarks", str(landmark_data / "landmarks")])
    assert result.exit_code == 0, result.output
    return cache, result


def test_exact_landmarks_find_the_true_face_and_a_missing_file_falls_back_and_is_reported(landmark_data,
                                                                                          landmark_cache):
    cache, result = landmark_cache
    truth = json.loads((landmark_data / "faces.json").read_text())
    entries = {e["clip_id"]: e for e in FeatureCache.open(cache).index()}
    assert len(entries) == 6
    missing = entries.pop("01-01-02-01-01-01-02")
    assert missing["crop"]["source"] in ("face", "center")
    for clip_id, e in entries.items():
        assert e["crop"]["source"] == "landmarks"
        assert iou(tuple(e["crop"]["face"]), tuple(truth[clip_id])) > 0.8
    report = json.loads((cache / "report.json").read_text())
    assert [r["path"].endswith("01-01-02-01-01-01-02.mp4") for r in report["no_landmarks"]] == [True]
    assert "no usable landmark file" in result.output and "01-01-02-01-01-01-02.mp4" in result.output
    spec = FeatureCache.open(cache).spec
    assert spec.video.crop == "landmarks" and spec.landmarks == LandmarkSettings()


def test_crop_landmarks_without_a_folder_is_one_line(landmark_data, tmp_path):
    result = runner.invoke(app, ["extract", str(landmark_data), "--cache", str(tmp_path / "c"), *SMALL,
                                 "--crop", "landmarks"])
    assert result.exit_code == 2
    (line,) = [l for l in result.output.splitlines() if l.startswith("error:")]
    assert "--landmarks DIR" in line and not (tmp_path / "c").exists()


def test_predict_on_a_landmarks_run_says_once_that_it_uses_the_detector(landmark_data, landmark_cache, tmp_path):
    cache, _ = landmark_cache
    train_run(cache, tmp_path / "run", TrainConfig(n_folds=3, epochs=1, model=FusionConfig(dim=32)))
    clips = sorted(landmark_data.rglob("*.mp4"))[:2]
    result = runner.invoke(app, ["predict", *map(str, clips), "--run", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert result.output.count("new videos have none, so the face detector finds the face") == 1
    assert all(clip.name in result.stdout for clip in clips)
