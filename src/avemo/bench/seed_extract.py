"""The seed's extraction approach, rebuilt on PyAV for a fair side-by-side measurement.

What it reproduces (from the seed's ``video_model.py``): every one of the 6 x 16 frames is fetched by a seek
(OpenCV's ``CAP_PROP_POS_FRAMES`` seeks to the previous key frame and decodes forward, as done here), the
whole frame is squashed to 256 x 256, and the 3D ResNet-101 runs in training mode with autograd on, one
clip at a time. It is a baseline to measure against, not something avemo runs.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import torch


def seek_frames(path: Path, snippets: int = 6, frames: int = 16, size: int = 256) -> torch.Tensor:
    """(snippets, 3, frames, size, size) float frames, each fetched with its own seek."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate)
        total = stream.frames or int(float(stream.duration * stream.time_base) * fps)
        duration = total / fps
        out = np.empty((snippets, frames, size, size, 3), np.uint8)
        for i in range(snippets):
            times = np.linspace(duration * i / snippets, duration * (i + 1) / snippets, frames)
            for j, t in enumerate(times):
                index = min(int(t * fps), total - 2)
                target = int(index / fps / stream.time_base)
                container.seek(target, stream=stream, backward=True)
                for frame in container.decode(stream):
                    if frame.pts is not None and frame.pts >= target:
                        break
                out[i, j] = frame.to_ndarray(width=size, height=size, format="rgb24")
    return torch.from_numpy(out).permute(0, 4, 1, 2, 3).float()


def seed_backbone(net: torch.nn.Module, snippets: torch.Tensor) -> torch.Tensor:
    """Training mode, gradients recorded: what the seed's ``evaluateResnet3D`` did."""
    net.train()
    return net(snippets)
