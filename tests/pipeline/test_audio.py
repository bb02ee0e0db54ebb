import numpy as np
import pytest
import torch

from avemo.pipeline.audio import log_spectrogram, segments
from avemo.pipeline.decode import decode_clip
from avemo.spec import AudioConfig, VideoConfig
from tests.conftest import solid_clip


def _tone(freq: float, seconds: float, rate: int = 16000) -> torch.Tensor:
    t = torch.arange(int(seconds * rate)) / rate
    return 0.5 * torch.sin(2 * torch.pi * freq * t)


def test_paper_parameters_and_per_clip_normalisation():
    config = AudioConfig()
    assert (config.win_length, config.hop_length, config.n_fft) == (512, 160, 512)
    spec = log_spectrogram(_tone(1000, 2.0) + 0.01 * torch.randn(32000), config)
    assert spec.shape == (256, 201)
    assert spec.mean().item() == pytest.approx(0, abs=1e-4) and spec.std().item() == pytest.approx(1, abs=1e-3)
    assert int(spec.mean(dim=1).argmax()) == 32  # 1000 Hz / (16000 / 512 Hz per bin)


def test_fft_size_does_not_depend_on_signal_length():
    config = AudioConfig()
    short, long = log_spectrogram(_tone(500, 0.5), config), log_spectrogram(_tone(500, 3.0), config)
    assert short.shape[0] == long.shape[0] == 256
    assert int(short.mean(dim=1).argmax()) == int(long.mean(dim=1).argmax()) == 16


def test_segments_are_centred_on_their_snippets_and_padded_with_silence():
    config = AudioConfig(segment_frames=20)
    signal = torch.zeros(48000)
    signal[16000:17600] = _tone(2000, 0.1)  # a burst from 1.0 s to 1.1 s
    spec = log_spectrogram(signal + 1e-4 * torch.randn(48000), config)
    centres = np.array([0.25, 1.05, 2.9])
    segs = segments(spec, centres, config)
    assert segs.shape == (3, 256, 20)
    energy = segs[:, 60:70].mean(dim=(1, 2))  # 2000 Hz is bin 64
    assert energy.argmax() == 1 and energy[1] > energy[0] + 1
    assert (segs[2, :, -5:] == spec.min()).all()  # past the end of the clip


@pytest.mark.parametrize("audio_start", [0.0, 0.5])
def test_soundtrack_is_resampled_mono_and_aligned_with_the_first_frame(tmp_path, audio_start):
    rate = 48000
    audio = np.zeros(2 * rate, np.float32)
    audio[rate:rate + rate // 10] = 0.5 * np.sin(2 * np.pi * 440 * np.arange(rate // 10) / rate)
    clip = solid_clip(tmp_path / "beep.mp4", (10, 10, 10), seconds=2.0, audio=audio, audio_start=audio_start)
    decoded = decode_clip(clip, VideoConfig(size=32, resize=32), 16000)
    assert decoded.sample_rate == 16000 and decoded.samples.ndim == 1
    assert len(decoded.samples) == pytest.approx(32000 + audio_start * 16000, abs=1200)
    onset = int(np.argmax(np.abs(decoded.samples) > 0.1))
    assert onset == pytest.approx((1.0 + audio_start) * 16000, abs=160)  # within 10 ms of the beep's time


def test_too_short_soundtrack_is_a_clear_error():
    with pytest.raises(ValueError, match="soundtrack too short"):
        log_spectrogram(torch.zeros(100), AudioConfig())
