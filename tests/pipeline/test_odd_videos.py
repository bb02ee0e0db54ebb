"""Real-world oddities, each generated with PyAV: every one is cached, upright, with bounded memory."""

from fractions import Fraction

import av
import numpy as np
import pytest
from typer.testing import CliRunner

from avemo.cache import FeatureCache
from avemo.cli import app
from avemo.pipeline.decode import decode_clip
from avemo.pipeline.prepare import prepare_file
from avemo.pipeline.video import sample_indices
from avemo.spec import AudioConfig, VideoConfig
from tests.conftest import FAST_EXTRACT

VIDEO = VideoConfig(size=32, resize=32, crop="center")
RED, BLUE, GREEN = (230, 20, 20), (20, 20, 230), (20, 230, 20)


def pattern(width: int, height: int) -> np.ndarray:
    """Left half red, right half blue, a green band on top: which way is up shows after any turn."""
    img = np.zeros((height, width, 3), np.uint8)
    img[:, : width // 2], img[:, width // 2:] = RED, BLUE
    img[: height // 4] = GREEN
    return img


def write(path, codec="libx264", pix_fmt="yuv420p", size=(64, 48), frames=30, fps=10, rate=48000,
          layout="stereo", audio_seconds=None, rotation=0):
    """A clip of ``frames`` frames of :func:`pattern` and a 440 Hz tone lasting ``audio_seconds``.

    With ``rotation`` the pattern is coded turned the other way, as a phone held upright records it: shown as
    the display matrix says, it is upright again.
    """
    audio_seconds = frames / fps if audio_seconds is None else audio_seconds
    turns = rotation // 90
    shown = size[::-1] if turns % 2 else size
    image = np.ascontiguousarray(np.rot90(pattern(*shown), -turns))
    with av.open(str(path), "w") as container:
        video = container.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = size[0], size[1], pix_fmt
        if rotation:
            video.set_display_rotation(rotation)
        audio = container.add_stream("aac", rate=rate, layout=layout)
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format=pix_fmt)
            frame.pts, frame.time_base = i, Fraction(1, fps)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(round(audio_seconds * rate)) / rate)).astype(np.float32)
        channels = np.ascontiguousarray(np.stack([tone] * (2 if layout == "stereo" else 1)))
        for start in range(0, channels.shape[1], 1024):
            chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(channels[:, start:start + 1024]), format="fltp",
                                               layout=layout)
            chunk.sample_rate, chunk.pts, chunk.time_base = rate, start, Fraction(1, rate)
            container.mux(audio.encode(chunk))
        container.mux(audio.encode(None))
    return path


CASES = {  # name: (options, frames expected)
    "10-bit H.264": (dict(pix_fmt="yuv420p10le"), 30),
    "size not divisible by 16 (98x70)": (dict(size=(98, 70)), 30),
    "MPEG-4 Part 2": (dict(codec="mpeg4"), 30),
    "stereo 44.1 kHz": (dict(rate=44100), 30),
    "soundtrack shorter than the picture": (dict(audio_seconds=1.0), 30),
    "9 frames": (dict(frames=9), 9),
    "rotated phone video": (dict(rotation=90), 30),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_odd_clip_decodes_and_prepares(tmp_path, name):
    options, count = CASES[name]
    path = write(tmp_path / "clip.mp4", **options)
    frames, segments, frame_count, duration, _ = prepare_file(path, VIDEO, AudioConfig())
    assert tuple(frames.shape) == (6, 3, 16, 32, 32) and tuple(segments.shape) == (6, 256, 96)
    assert frame_count == count and duration == pytest.approx(count / 10, abs=0.01)
    # The centre of the picture, upright: red on the left, blue on the right, in every sampled frame.
    centre = frames[:, :, :, 20].float().mean(dim=(0, 2))  # (3 channels, 32 columns), a row below the band
    assert centre[0, 4] > 150 > centre[2, 4] and centre[2, -5] > 150 > centre[0, -5], name


def test_a_rotated_video_is_decoded_upright(tmp_path):
    path = write(tmp_path / "phone.mp4", size=(64, 48), rotation=90)  # coded 64x48 landscape, shown portrait
    decoded = decode_clip(path, VIDEO, 16000)  # scaled to a short side of 32, not cropped yet
    assert decoded.rotation == 90 and decoded.size == (48, 64)
    shown = decoded.frames[0].astype(int)
    height, width = shown.shape[:2]
    assert height > width  # portrait, as a player shows it
    for (fy, fx), colour in [((0.1, 0.5), GREEN), ((0.6, 0.2), RED), ((0.6, 0.8), BLUE)]:
        assert np.abs(shown[int(fy * height), int(fx * width)] - colour).max() < 60, (fy, fx)


def test_a_four_minute_clip_keeps_only_the_frames_it_samples(tmp_path):
    path = write(tmp_path / "long.mp4", size=(32, 32), frames=4 * 60 * 4, fps=4, rate=16000, layout="mono")
    everything = decode_clip(path, VIDEO, 16000)
    sampled = decode_clip(path, VIDEO, 16000,
                          choose=lambda t, d: sample_indices(t, d, VIDEO.snippets, VIDEO.frames).ravel())
    assert len(sampled.times) == 960 and everything.frames.shape[0] == 960
    assert sampled.frames.shape[0] <= VIDEO.snippets * VIDEO.frames  # not 960: memory does not grow with length
    index = sample_indices(sampled.times, sampled.duration, VIDEO.snippets, VIDEO.frames)
    np.testing.assert_array_equal(sampled.frames[sampled.rows(index)], everything.frames[index])
    assert sampled.duration == pytest.approx(240.0) and sampled.samples.size == pytest.approx(240 * 16000, rel=0.01)


def test_every_odd_clip_is_cached_by_extract(tmp_path):
    data = tmp_path / "data" / "Actor_01"
    data.mkdir(parents=True)
    for emotion, name in enumerate(sorted(CASES), start=1):
        write(data / f"01-01-{emotion:02d}-01-01-01-01.mp4", **CASES[name][0])
    runner = CliRunner()
    result = runner.invoke(app, ["extract", str(tmp_path / "data"), "--cache", str(tmp_path / "cache"),
                                 *FAST_EXTRACT])
    assert result.exit_code == 0, result.output
    entries, broken = FeatureCache.open(tmp_path / "cache").scan()
    assert len(entries) == len(CASES) and broken == []


def test_the_dali_path_names_a_rotated_clip_instead_of_caching_it_sideways(tmp_path):
    from avemo.pipeline.clips import ClipRecord
    from avemo.pipeline.decode import ClipError
    from avemo.pipeline.prepare import encode_clip

    path = write(tmp_path / "01-01-03-01-01-01-01.mp4", rotation=90)
    record = ClipRecord(clip_id=path.stem, path=path, dataset="ravdess", actor=1, gender="male", emotion="happy")
    with pytest.raises(ClipError, match="rotated video") as caught:
        encode_clip(record, VIDEO, AudioConfig(), cpu_decoder=False)
    assert "--decoder pyav" in caught.value.hint
