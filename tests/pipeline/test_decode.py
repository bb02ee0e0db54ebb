import numpy as np
import pytest

from avemo.pipeline.clips import ClipRecord
from avemo.pipeline.decode import ClipError, decode_clip
from avemo.pipeline.prepare import ClipDataset, FailedClip, PreparedClip
from avemo.spec import AudioConfig, VideoConfig
from tests.conftest import solid_clip

SMALL = VideoConfig(size=32, resize=32)


def test_empty_file(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"")
    with pytest.raises(ClipError, match="empty file"):
        decode_clip(tmp_path / "a.mp4", SMALL, 16000)


@pytest.mark.parametrize("faststart", [False, True])
def test_truncated_file_is_refused_wherever_it_is_cut(tmp_path, faststart):
    clip = solid_clip(tmp_path / "full.mp4", (1, 2, 3), seconds=2.0, audio=np.zeros(96000, np.float32),
                      faststart=faststart)
    data = clip.read_bytes()
    for keep in np.arange(0.05, 0.96, 0.075):
        cut = tmp_path / f"cut{keep:.3f}.mp4"
        cut.write_bytes(data[: int(len(data) * keep)])
        with pytest.raises(ClipError, match="truncated") as info:
            decode_clip(cut, SMALL, 16000)
        assert "copy" in str(info.value) and "\n" not in str(info.value)


def test_complete_faststart_file_is_accepted(tmp_path):
    clip = solid_clip(tmp_path / "full.mp4", (1, 2, 3), seconds=2.0, audio=np.zeros(96000, np.float32),
                      faststart=True)
    assert decode_clip(clip, SMALL, 16000).duration == pytest.approx(2.0, abs=0.01)


def test_garbage_file(tmp_path):
    (tmp_path / "g.mp4").write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(ClipError, match="cannot open .*not a media file"):
        decode_clip(tmp_path / "g.mp4", SMALL, 16000)


def test_missing_soundtrack_names_the_file_and_the_remedy(tmp_path):
    clip = solid_clip(tmp_path / "silent.mp4", (1, 2, 3))
    with pytest.raises(ClipError, match="no audio track") as info:
        decode_clip(clip, SMALL, 16000)
    message = str(info.value)
    # worded for any data: what gives a clip its sound, or what does without it
    assert "silent.mp4" in message and "audio_path" in message and "AudioWAV" in message
    assert "--modality video" in message and "modality 01" not in message and "\n" not in message


def test_dataset_returns_failures_as_values(tmp_path):
    good = solid_clip(tmp_path / "good.mp4", (1, 2, 3), audio=np.zeros(48000, np.float32))
    (tmp_path / "bad.mp4").write_bytes(b"")
    records = [ClipRecord(name, tmp_path / f"{name}.mp4", "ravdess", 1, "male", "happy") for name in ("good", "bad")]
    data = ClipDataset(records, VideoConfig(snippets=2, frames=4, size=32, resize=32), AudioConfig())
    ok, bad = data[0], data[1]
    assert isinstance(ok, PreparedClip) and ok.video.shape == (2, 3, 4, 32, 32) and ok.audio.shape == (2, 256, 96)
    assert isinstance(bad, FailedClip) and bad.error.reason == "empty file (0 bytes)"
    assert good.exists()


def test_clip_error_survives_the_trip_from_a_worker_process(tmp_path):
    import pickle

    error = pickle.loads(pickle.dumps(ClipError(tmp_path / "x.mp4", "no audio track", "use the AV file")))
    assert (error.path, error.reason, error.hint) == (tmp_path / "x.mp4", "no audio track", "use the AV file")
