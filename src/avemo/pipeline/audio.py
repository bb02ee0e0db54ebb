"""The soundtrack as a per-clip normalised log spectrogram, cut into segments aligned with the snippets."""

from __future__ import annotations

import numpy as np
import torch

from avemo.spec import AudioConfig


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
