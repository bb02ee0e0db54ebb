import wave

import numpy as np
import pytest

from avemo.pipeline.cremad import parse_name
from avemo.pipeline.discover import discover
from avemo.pipeline.prepare import prepare_clip
from avemo.spec import AudioConfig, VideoConfig
from tests.conftest import solid_clip


def test_parse_name():
    assert parse_name("1001_DFA_ANG_XX") == (1001, "DFA", "angry", "unspecified")
    assert parse_name("1091_IEO_SAD_HI") == (1091, "IEO", "sad", "high")
    for bad in ("1001_DFA_XXX_XX", "0999_DFA_ANG_XX", "1001_ZZZ_ANG_XX", "1001_DFA_ANG", "1001-DFA-ANG-XX"):
        with pytest.raises(ValueError):
            parse_name(bad)


def _write_wav(path, seconds=1.0, rate=16000, freq=440.0):
    t = np.arange(int(seconds * rate)) / rate
    data = (0.3 * np.sin(2 * np.pi * freq * t) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(data.tobytes())


def test_discover_reads_gender_sheet_and_uses_wav_when_the_video_is_silent(tmp_path):
    video = tmp_path / "VideoFlash"
    video.mkdir()
    solid_clip(video / "1001_DFA_ANG_XX.flv", (200, 30, 30), seconds=1.0)  # no audio track
    solid_clip(video / "1002_IEO_HAP_HI.flv", (30, 200, 30), seconds=1.0,
               audio=np.zeros(48000, np.float32))
    (video / "1003_bad_name.flv").write_bytes(b"x")
    (tmp_path / "AudioWAV").mkdir()
    _write_wav(tmp_path / "AudioWAV" / "1001_DFA_ANG_XX.wav")
    (tmp_path / "VideoDemographics.csv").write_text("ActorID,Age,Sex,Race,Ethnicity\n1001,51,Male,Caucasian,Not Hispanic\n")
    found = discover(tmp_path, "cremad")
    assert [c.clip_id for c in found.clips] == ["1001_DFA_ANG_XX", "1002_IEO_HAP_HI"]
    angry, happy = found.clips
    assert (angry.gender, angry.emotion, angry.statement, angry.actor) == ("male", "angry", "DFA", 1001)
    assert happy.gender == "unknown" and happy.audio_path is None
    assert found.skipped_by_reason() == {"unparseable name": 1}
    prepared = prepare_clip(angry, VideoConfig(snippets=2, frames=4, size=32, resize=32), AudioConfig())
    # The soundtrack came from the WAV: a 440 Hz tone peaks near bin 440 / (16000 / 512) = 14.
    assert int(prepared.audio.mean(dim=(0, 2)).argmax()) in (13, 14, 15)
    assert prepared.video[:, 0].float().mean() > 150  # red channel first: RGB, not BGR
