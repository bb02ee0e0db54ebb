"""Video sampling: which decoded frames make the 6 x 16 snippets, and the spatial crop."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class VideoConfig:
    """How a clip becomes ``snippets`` x ``frames`` RGB frames of ``size`` x ``size`` pixels.

    Defaults follow Hara et al.'s Kinetics models (16-frame, 112 x 112 inputs; at test time the short side
    is scaled to 112 and the centre is cropped) and the seed's 6 snippets covering the clip.
    """

    snippets: int = 6
    frames: int = 16
    size: int = 112
    resize: int = 112  # short side after scaling, before the centre crop

    def __post_init__(self) -> None:
        if self.resize < self.size:
            raise ValueError(f"resize ({self.resize}) must be at least the crop size ({self.size})")
        if min(self.snippets, self.frames, self.size) < 1:
            raise ValueError("snippets, frames and size must be positive")

    def scaled_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) after scaling the short side to ``resize``, keeping the aspect ratio."""
        if width <= height:
            return self.resize, max(self.resize, round(height * self.resize / width))
        return max(self.resize, round(width * self.resize / height)), self.resize


def snippet_windows(duration: float, snippets: int) -> np.ndarray:
    """(snippets, 2) start and end times: the clip cut into equal consecutive windows."""
    edges = np.linspace(0.0, duration, snippets + 1)
    return np.stack([edges[:-1], edges[1:]], axis=1)


def sample_indices(times: np.ndarray, duration: float, snippets: int, frames: int) -> np.ndarray:
    """Indices (snippets, frames) of the decoded frames shown at evenly spaced instants.

    Snippet ``i`` covers the i-th of ``snippets`` equal windows of the clip and takes ``frames`` instants at
    the centres of equal sub-windows. Each instant maps to the frame on screen at that time, which makes
    variable frame rates and clips shorter than ``snippets * frames`` frames work (frames then repeat).
    ``times`` are the presentation times of the decoded frames in seconds, ascending, starting at 0.
    """
    if len(times) == 0:
        raise ValueError("no frames")
    start, end = snippet_windows(duration, snippets).T
    instants = start[:, None] + (end - start)[:, None] * ((np.arange(frames) + 0.5) / frames)[None, :]
    index = np.searchsorted(times, instants, side="right") - 1
    return index.clip(0, len(times) - 1)


def centre_crop_box(width: int, height: int, size: int) -> tuple[int, int]:
    """Top-left corner (x, y) of the centred ``size`` x ``size`` square."""
    return (width - size) // 2, (height - size) // 2


def snippets_from_frames(frames: np.ndarray, index: np.ndarray, size: int) -> torch.Tensor:
    """Pick ``index`` from (N, H, W, 3) uint8 frames, centre-crop, return (S, 3, F, size, size) uint8.

    Channels move first by a permutation (the seed reinterpreted HWC memory with ``view``, scrambling
    pixels).
    """
    height, width = frames.shape[1:3]
    x, y = centre_crop_box(width, height, size)
    picked = frames[index, y:y + size, x:x + size, :]  # (S, F, size, size, 3)
    return torch.from_numpy(np.ascontiguousarray(picked)).permute(0, 4, 1, 2, 3).contiguous()
