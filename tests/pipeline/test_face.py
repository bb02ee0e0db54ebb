"""Face-centred crops: detection on a photographed face, one still box per clip, fallbacks, the fingerprint,
and the DALI path cutting the same box."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from avemo.cache import FeatureCache
from avemo.cli import app
from avemo.pipeline import face
from avemo.pipeline.dali import dali_installed
from avemo.pipeline.face import centre_box, face_box, iou
from avemo.pipeline.video import region, snippets_from_region
from avemo.spec import CENTRE_SHIFT, MARGIN, VideoConfig
from avemo.synth import SynthConfig, synthesize
from tests.conftest import built_once, make_spec, solid_clip

FACE_EXTRACT = ["--video-arch", "r3d10", "--size", "32", "--workers", "1", "--batch-size", "4", "--crop", "face"]


@pytest.fixture(scope="module")
def real_faces(tmp_path_factory):
    """10 actors x 2 clips around a photographed face, each actor's at its own random place and scale."""
    return built_once(tmp_path_factory, "faces-10x2", lambda root: synthesize(
        root, actors=10, clips_per_actor=2, seed=5, config=SynthConfig(width=320, height=180, faces="real")))


def _extract(data, cache, *options):
    result = CliRunner().invoke(app, ["extract", str(data), "--cache", str(cache), *FACE_EXTRACT, *options])
    assert result.exit_code == 0, result.output
    return result


def test_detected_face_matches_the_true_face_and_the_crop_keeps_it(real_faces, tmp_path):
    _extract(real_faces, tmp_path / "c")
    truth = json.loads((real_faces / "faces.json").read_text())
    entries = FeatureCache.open(tmp_path / "c").index()
    assert len(entries) == 20
    assert len({tuple(truth[e["clip_id"]][2:]) for e in entries}) == 10  # ten different face sizes
    hits = [e for e in entries if e["crop"]["source"] == "face"]
    good = [e for e in hits if iou(tuple(e["crop"]["face"]), tuple(truth[e["clip_id"]])) > 0.5]
    assert len(good) >= 0.95 * len(entries)
    for e in hits:  # the margin keeps the whole face in the still crop
        x, y, w, h = truth[e["clip_id"]]
        bx, by, bw, bh = e["crop"]["box"]
        inside = max(0, min(x + w, bx + bw) - max(x, bx)) * max(0, min(y + h, by + bh) - max(y, by))
        assert inside >= 0.9 * w * h
        assert bw == bh  # square
    assert json.loads((tmp_path / "c" / "report.json").read_text())["no_face"] == []


def test_clips_without_a_face_fall_back_to_the_centre_and_are_reported(real_faces, tmp_path):
    data = tmp_path / "data" / "Actor_01"
    data.mkdir(parents=True)
    sound = np.sin(np.arange(48_000) / 10).astype(np.float32) * 0.3
    for emotion, colour in [(3, (200, 40, 40)), (4, (40, 40, 200))]:  # walls, no face
        solid_clip(data / f"01-01-0{emotion}-01-01-01-01.mp4", colour, size=(96, 64), audio=sound)
    face_clip = next(real_faces.rglob("*.mp4"))
    (data / "01-01-05-01-01-01-01.mp4").write_bytes(face_clip.read_bytes())
    result = _extract(data.parent, tmp_path / "c")
    assert "no face found (centre crop used): 2" in result.output
    report = json.loads((tmp_path / "c" / "report.json").read_text())
    assert sorted(report["no_face"]) == sorted(str(p) for p in data.glob("01-01-0[34]-*.mp4"))
    crops = {e["clip_id"]: e["crop"] for e in FeatureCache.open(tmp_path / "c").index()}
    assert crops["01-01-03-01-01-01-01"] == {"box": centre_box(96, 64).as_list(), "source": "center"}
    assert crops["01-01-05-01-01-01-01"]["source"] == "face"


def test_crop_mode_is_part_of_the_fingerprint(synth_root, tmp_path):
    data = synth_root / "Actor_02"
    result = CliRunner().invoke(app, ["extract", str(data), "--cache", str(tmp_path / "c"), *FACE_EXTRACT[:-1],
                                      "center"])
    assert result.exit_code == 0, result.output
    again = CliRunner().invoke(app, ["extract", str(data), "--cache", str(tmp_path / "c"), *FACE_EXTRACT])
    assert again.exit_code == 2 and "crop" in again.output
    # Caches from before the crop option were centre-cropped: their fingerprint inputs are unchanged.
    assert "crop" not in make_spec(VideoConfig()).fingerprint_inputs()["video"]
    assert make_spec(VideoConfig(crop="face")).fingerprint_inputs()["video"]["crop"] == "face"


def test_face_box_is_the_median_square_kept_inside_the_frame(monkeypatch):
    # Each fake frame's first pixel says which detections the detector "finds" in it.
    found = {0: [(100, 60, 40)], 1: [(104, 62, 44), (30, 30, 10)], 2: [(250, 20, 60)], 3: [(102, 58, 42)], 4: []}
    monkeypatch.setattr(face, "detect", lambda frame: found[int(frame[0, 0, 0])])
    frames = [np.full((180, 320, 3), i, np.uint8) for i in range(5)]
    box = face_box(frames, 320, 180)
    # The face found again in frames 0, 1 and 3 wins over frame 2's larger one-off detection; medians over
    # those three: centre (102, 60), side 42.
    side = round(42 * MARGIN)
    assert (box.width, box.height, box.source) == (side, side, "face")
    assert box.face == (102 - 21, 60 - 21, 42, 42)
    assert (box.x, box.y) == (round(102 - side / 2), round(60 + CENTRE_SHIFT * 42 - side / 2))
    # A face at the edge: the box is shifted to stay inside the frame, never cut.
    found.update({0: [(5, 170, 40)], 1: [(5, 170, 40)]})
    edge = face_box(frames[:2], 320, 180)
    assert edge.x == 0 and edge.y == 180 - edge.height
    # One hit is not trusted: centre crop.
    found.update({0: [(100, 60, 40)], 1: []})
    assert face_box(frames[:2], 320, 180) == centre_box(320, 180)


def test_region_is_cut_and_scaled():
    frames = np.zeros((3, 90, 160, 3), np.uint8)
    frames[:, 20:60, 50:90] = (200, 10, 10)  # a 40 x 40 red square
    out = snippets_from_region(frames, np.array([[0, 1], [2, 2]]), (50, 20, 40, 40), 16)
    assert out.shape == (2, 3, 2, 16, 16)
    expected = torch.tensor([200, 10, 10], dtype=torch.uint8).view(1, 3, 1, 1, 1).expand_as(out)
    assert torch.equal(out, expected)


@pytest.mark.skipif(not dali_installed(), reason="DALI is not installed (pip install 'avemo[dali]')")
def test_dali_cuts_the_same_face_box(tmp_path):
    data = tmp_path / "data"
    synthesize(data, actors=2, clips_per_actor=2, seed=6,
               config=SynthConfig(width=320, height=180, faces="real", codec="vp9"))
    _extract(data, tmp_path / "pyav", "--decoder", "pyav")
    _extract(data, tmp_path / "dali", "--decoder", "dali")
    pyav, dali = FeatureCache.open(tmp_path / "pyav"), FeatureCache.open(tmp_path / "dali")
    entries = {e["clip_id"]: e for e in pyav.index()}
    assert len(entries) == 4
    for e in dali.index():
        assert e["crop"] == entries[e["clip_id"]]["crop"] and e["crop"]["source"] == "face"
        got, _ = dali.read(e["clip_id"])
        expected, _ = pyav.read(e["clip_id"])
        scale = expected.float().abs().max().item()
        # As for the centre crop: decoder rounding moves features by a few % of the largest one.
        torch.testing.assert_close(got.float(), expected.float(), rtol=5e-2, atol=5e-2 * scale)


def test_region_maps_a_coded_box_into_the_decoded_frames():
    video = VideoConfig(crop="face")
    coded = (1280, 720)
    width, height = video.decode_size(*coded)
    assert (width, height) == (455, 256)
    # A box in coded pixels lands at the same place, scaled, in the frames decoded at 455 x 256.
    x, y, w, h = region(video, coded, (640, 360, 320, 180))
    assert (x, y) == (round(640 * 455 / 1280), round(360 * 256 / 720))
    assert (w, h) == (round(960 * 455 / 1280) - x, round(540 * 256 / 720) - y)
    # A box at the far corner stays inside the frame.
    x, y, w, h = region(video, coded, (1000, 500, 280, 220))
    assert x + w <= width and y + h <= height
    assert region(VideoConfig(crop="center", size=112, resize=112), coded, (0, 0, 1, 1)) == (43, 0, 112, 112)


def test_face_crop_settings_are_in_the_fingerprint():
    face_inputs = make_spec(VideoConfig(crop="face")).fingerprint_inputs()["video"]
    assert face_inputs["face"]["margin"] == MARGIN and "skimage" in face_inputs["face"]
