"""Video sampling: which decoded frames make the 6 x 16 snippets, and the spatial crop."""

from __future__ import annotations

import numpy as np
import torch

from avemo.spec import VideoConfig


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


def region(video: VideoConfig, coded: tuple[int, int], box: tuple[int, int, int, int] | list[int]) -> tuple[int, int, int, int]:
    """(x, y, width, height) of the crop in frames decoded at ``video.decode_size(*coded)``.

    A fixed crop (center, none): the ``size`` square at :func:`centre_crop_box` (for none the frames are
    already ``size`` x ``size``); otherwise ``box`` (coded pixels) scaled and rounded. Both decoders cut exactly
    this region of frames of that size, so they see the same pixels up to rounding.
    """
    width, height = video.decode_size(*coded)
    if video.crop_mode.fixed:
        x, y = centre_crop_box(width, height, video.size)
        return x, y, video.size, video.size
    sx, sy = width / coded[0], height / coded[1]
    bx, by, bw, bh = box
    x0, y0 = round(bx * sx), round(by * sy)
    x1, y1 = max(x0 + 1, round((bx + bw) * sx)), max(y0 + 1, round((by + bh) * sy))
    return x0, y0, min(x1, width) - x0, min(y1, height) - y0


def snippets_from_region(frames: np.ndarray, index: np.ndarray, area: tuple[int, int, int, int],
                         size: int) -> torch.Tensor:
    """Pick ``index`` from (N, h, w, 3) uint8 frames, cut ``area`` (x, y, width, height), scale it to ``size``
    x ``size`` (antialiased bilinear): (S, 3, F, size, size) uint8."""
    x0, y0, w, h = area
    picked = torch.from_numpy(np.ascontiguousarray(frames[index.reshape(-1), y0:y0 + h, x0:x0 + w, :]))
    scaled = torch.nn.functional.interpolate(picked.permute(0, 3, 1, 2).float(), size=(size, size), mode="bilinear",
                                             antialias=True, align_corners=False)
    out = scaled.round_().clamp_(0, 255).to(torch.uint8)  # (S*F, 3, size, size)
    return out.view(*index.shape, 3, size, size).permute(0, 2, 1, 3, 4).contiguous()


def snippets_from_regions(frames: np.ndarray, index: np.ndarray, areas: list[tuple[int, int, int, int]],
                          size: int) -> torch.Tensor:
    """As :func:`snippets_from_region` with one area per snippet (a face the crop follows)."""
    if len(set(areas)) == 1:
        return snippets_from_region(frames, index, areas[0], size)
    return torch.cat([snippets_from_region(frames, index[s:s + 1], area, size) for s, area in enumerate(areas)])


def snippets_from_frames(frames: np.ndarray, index: np.ndarray, size: int) -> torch.Tensor:
    """Pick ``index`` from (N, H, W, 3) uint8 frames, centre-crop, return (S, 3, F, size, size) uint8.

    Channels move first by a permutation (the seed reinterpreted HWC memory with ``view``, scrambling
    pixels).
    """
    height, width = frames.shape[1:3]
    x, y = centre_crop_box(width, height, size)
    picked = frames[index, y:y + size, x:x + size, :]  # (S, F, size, size, 3)
    return torch.from_numpy(np.ascontiguousarray(picked)).permute(0, 4, 1, 2, 3).contiguous()
