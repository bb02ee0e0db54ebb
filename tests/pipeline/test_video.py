import numpy as np
import pytest
import torch

from avemo.choices import Crop
from avemo.pipeline.decode import decode_clip
from avemo.pipeline.video import sample_indices, snippets_from_frames
from avemo.spec import VideoConfig
from avemo.synth import SynthConfig, write_clip
from tests.conftest import solid_clip


def test_sampling_covers_the_clip_in_six_windows_of_sixteen():
    times = np.arange(110) / 30.0
    index = sample_indices(times, 110 / 30.0, snippets=6, frames=16)
    assert index.shape == (6, 16)
    assert (np.diff(index.reshape(-1)) >= 0).all()
    for i in range(6):  # snippet i stays inside the i-th sixth of the clip
        assert index[i].min() >= np.floor(i * 110 / 6) and index[i].max() < np.ceil((i + 1) * 110 / 6)
    assert index[0, 0] <= 1 and index[-1, -1] >= 108


def test_short_clip_repeats_frames_instead_of_failing():
    times = np.arange(20) / 25.0
    index = sample_indices(times, 20 / 25.0, 6, 16)
    assert index.shape == (6, 16) and index.min() == 0 and index.max() == 19
    assert len(np.unique(index)) == 20


def test_variable_frame_rate_maps_instants_to_the_frame_on_screen():
    # A frame held for 0.9 s then nine quick frames: time, not frame count, decides what is sampled.
    times = np.array([0.0, 0.9, 0.91, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97, 0.98])
    index = sample_indices(times, 1.0, snippets=2, frames=4)
    assert index[0].tolist() == [0, 0, 0, 0]  # instants 0.0625 ... 0.4375 s
    assert index[1].tolist() == [0, 0, 0, 4]  # 0.5625, 0.6875, 0.8125, 0.9375 s (frame 4 shows from 0.93 s)


def test_snippets_are_permuted_channels_first_not_reinterpreted():
    n, h, w = 5, 6, 8
    frames = np.zeros((n, h, w, 3), np.uint8)
    frames[..., 0] = np.arange(n)[:, None, None] * 10  # red encodes the frame
    frames[..., 1] = np.arange(h)[None, :, None] * 10 + 1  # green encodes the row
    frames[..., 2] = np.arange(w)[None, None, :] * 10 + 2  # blue encodes the column
    index = np.array([[0, 1], [3, 4]])
    out = snippets_from_frames(frames, index, size=4)
    assert out.shape == (2, 3, 2, 4, 4) and out.dtype == torch.uint8
    assert out[1, 0, 1, 0, 0] == 40  # snippet 1, red, frame 4
    assert out[0, 1, 0, :, 0].tolist() == [11, 21, 31, 41]  # rows 1..4 of the centred crop
    assert out[0, 2, 0, 0, :].tolist() == [22, 32, 42, 52]  # columns 2..5


def test_short_side_scaling_keeps_aspect():
    assert VideoConfig().scaled_size(1280, 720) == (199, 112)
    assert VideoConfig().scaled_size(720, 1280) == (112, 199)
    with pytest.raises(ValueError):
        VideoConfig(size=128, resize=112)


@pytest.mark.parametrize("crop, detector, landmarks, fixed", [
    ("face", True, False, False), ("landmarks", True, True, False), ("center", False, False, True),
    ("none", False, False, True),
])
def test_the_crop_says_what_it_needs(crop, detector, landmarks, fixed):
    mode = VideoConfig(crop=crop).crop_mode
    assert mode is Crop(crop) and VideoConfig(crop=crop).crop == crop  # stored as plain text
    assert (mode.uses_detector, mode.reads_landmarks, mode.fixed) == (detector, landmarks, fixed)


def test_each_crop_decodes_at_its_own_size():
    # 1280 x 720, size 112, resize 128: none squashes to the model's size; center scales the short side to
    # resize (1280 * 128 / 720 = 227.6); face and landmarks to the detector's 256 (1280 * 256 / 720 = 455.1).
    sizes = {crop: VideoConfig(size=112, resize=128, crop=crop).decode_size(1280, 720) for crop in Crop}
    assert sizes == {Crop.none: (112, 112), Crop.center: (228, 128), Crop.face: (455, 256),
                     Crop.landmarks: (455, 256)}
    assert VideoConfig(size=112, resize=128, crop="face").decode_size(720, 1280) == (256, 455)


def test_fixed_crops_know_their_box_and_the_others_find_theirs():
    # center: 112 / 128 of the short side, 0.875 * 720 = 630 pixels, centred
    assert Crop.center.fixed_box(1280, 720, 112 / 128) == (325, 45, 630, 630)
    assert Crop.none.fixed_box(1280, 720, 112 / 128) == (0, 0, 1280, 720)
    for crop in (Crop.face, Crop.landmarks):
        with pytest.raises(ValueError, match="finds its box in each clip"):
            crop.fixed_box(1280, 720, 1.0)


def test_decoding_is_rgb_and_scaled(tmp_path):
    clip = solid_clip(tmp_path / "red.mp4", (220, 20, 20), audio=np.zeros(48000, np.float32), size=(96, 64))
    decoded = decode_clip(clip, VideoConfig(), 16000)
    assert decoded.frames.shape == (10, 112, 168, 3)
    red, green, blue = decoded.frames.reshape(-1, 3).mean(axis=0)
    assert red > 180 and green < 60 and blue < 60
    assert decoded.duration == pytest.approx(1.0, abs=0.01)


def test_variable_frame_rate_file_is_decoded_with_its_own_timestamps(tmp_path):
    config = SynthConfig(width=64, height=48)
    times = np.array([0.0, 0.5, 0.55, 0.6, 0.65, 0.7])
    frames = [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(len(times))]
    write_clip(tmp_path / "vfr.mp4", frames, times, np.zeros(48000, np.float32), config)
    decoded = decode_clip(tmp_path / "vfr.mp4", VideoConfig(size=32, resize=32), 16000)
    assert decoded.times == pytest.approx(times, abs=0.002)
    index = sample_indices(decoded.times, decoded.duration, 2, 4)
    # duration 0.75 s; instants 0.05 ... 0.33 s all see the first frame, held for half a second
    assert index.tolist() == [[0, 0, 0, 0], [0, 1, 3, 5]]
