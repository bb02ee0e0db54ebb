"""The soundtrack as a per-clip normalised log spectrogram, cut into segments aligned with the snippets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class AudioConfig:
    """Spectrogram parameters; defaults are the paper's (32 ms Hamming window, 10 ms hop, 256 bins).

    ``n_fft`` is ``2 * freq_bins`` (the window is zero-padded to it when shorter) and the Nyquist bin is
    dropped, so exactly ``freq_bins`` bins remain. Each of the segments is ``segment_frames`` hops long and
    centred on its video snippet; the default 0.96 s lets 6 segments span RAVDESS's longest clips (5.3 s).
    """

    sample_rate: int = 16_000
    window_ms: float = 32.0
    hop_ms: float = 10.0
    freq_bins: int = 256
    segment_frames: int = 96
    top_db: float = 80.0

    @property
    def win_length(self) -> int:
        return round(self.sample_rate * self.window_ms / 1000)

    @property
    def hop_length(self) -> int:
        return round(self.sample_rate * self.hop_ms / 1000)

    @property
    def n_fft(self) -> int:
        return 2 * self.freq_bins

    def __post_init__(self) -> None:
        if self.win_length > self.n_fft:
            raise ValueError(
                f"a {self.window_ms} ms window ({self.win_length} samples) does not fit "
                f"{self.freq_bins} frequency bins (n_fft {self.n_fft}); raise freq_bins"
            )


def log_spectrogram(samples: torch.Tensor, config: AudioConfig) -> torch.Tensor:
    """(freq_bins, hops) log-power spectrogram in dB of mono ``samples``, normalised to zero mean, unit std.

    The n_fft is fixed by the configuration, never by the signal length (the seed used the whole signal as
    one FFT). Power is floored ``top_db`` below the clip's peak so digital silence cannot dominate the
    statistics. Works on whatever device ``samples`` is on.
    """
    if samples.numel() <= config.n_fft // 2:  # torch.stft's reflection padding needs this much
        raise ValueError(f"soundtrack too short ({samples.numel()} samples at {config.sample_rate} Hz)")
    window = torch.hamming_window(config.win_length, periodic=False, device=samples.device)
    spec = torch.stft(samples.float(), n_fft=config.n_fft, hop_length=config.hop_length,
                      win_length=config.win_length, window=window, center=True, return_complex=True)
    power = spec[: config.freq_bins].abs().square()
    db = 10.0 * torch.log10(power.clamp_min(1e-10))
    db = db.clamp_min(db.max() - config.top_db)
    return (db - db.mean()) / db.std().clamp_min(1e-5)


def segments(spec: torch.Tensor, centres_s: np.ndarray, config: AudioConfig) -> torch.Tensor:
    """(len(centres_s), freq_bins, segment_frames) windows of ``spec`` centred on the given times.

    Hops outside the clip are filled with the clip's quietest value (silence), not zeros, which after
    normalisation would read as average loudness.
    """
    width = config.segment_frames
    fill = spec.min()
    padded = torch.cat([spec.new_full((spec.shape[0], width), fill), spec,
                        spec.new_full((spec.shape[0], width), fill)], dim=1)
    hop_s = config.hop_length / config.sample_rate
    starts = np.round(np.asarray(centres_s) / hop_s).astype(int) - width // 2 + width
    starts = starts.clip(0, padded.shape[1] - width)
    return torch.stack([padded[:, s:s + width] for s in starts])
