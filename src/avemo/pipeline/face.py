"""Where the face is: one still, square crop box per clip, from a face detector that ships in a PyPI package.

In RAVDESS the face fills a small part of the 1280 x 720 frame; a centre crop scaled to 112 keeps about 45
pixels of it. avemo finds the face on a few frames of each clip with scikit-image's LBP frontal-face cascade
(the model file is inside the scikit-image wheel: nothing is downloaded at run time), takes the median
centre and size of the detections so that the crop stays still over the clip (a 3D CNN reads motion; a
jittering crop would add motion that is not there), widens it by a margin to keep forehead and chin, squares
it and keeps it inside the frame. A clip where too few frames show a face falls back to the centre crop.

Boxes are in the pixels of the coded video, so the PyAV and DALI paths crop the same region. The detector's
settings (what a feature spec records of it) are ``avemo.spec.FaceDetector`` and its constants.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from avemo.choices import Crop
from avemo.spec import CENTRE_SHIFT, DETECT_SIDE, MARGIN, MIN_HITS


@dataclass(frozen=True)
class CropBox:
    """A square (``none``: the whole frame) region of the coded video, in its pixels."""

    x: int
    y: int
    width: int
    height: int
    source: str  # "face", "landmarks", "center" (asked for, or a face crop's fallback) or "none"
    face: tuple[int, int, int, int] | None = None  # the face found (median box, before the margin)

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.width, self.height]

    def to_json(self) -> dict:
        """What the cache index records of it."""
        return {"box": self.as_list(), "source": self.source, **({"face": list(self.face)} if self.face else {})}


def centre_box(width: int, height: int, fraction: float = 1.0) -> CropBox:
    """The centred square of ``fraction`` of the short side: what scaling the short side to ``resize`` and
    cropping ``size`` keeps (``fraction`` = size / resize)."""
    return CropBox(*Crop.center.fixed_box(width, height, fraction), Crop.center.value)


@lru_cache(maxsize=1)
def _detector() -> Any:
    from skimage import data
    from skimage.feature import Cascade

    return Cascade(data.lbp_frontal_face_cascade_filename())


def detect(frame: np.ndarray) -> list[tuple[float, float, float]]:
    """Faces in one RGB frame as (centre x, centre y, side) in its pixels; it is scaled to ``DETECT_SIDE``
    first (the cascade's cost grows with the pixels, its accuracy does not)."""
    import torch

    scale = DETECT_SIDE / min(frame.shape[:2])
    size = (max(1, round(frame.shape[0] * scale)), max(1, round(frame.shape[1] * scale)))
    small = torch.nn.functional.interpolate(torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None].float(),
                                            size=size, mode="bilinear", antialias=True, align_corners=False)
    image = small[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
    found = _detector().detect_multi_scale(img=image, scale_factor=1.25, step_ratio=1,
                                           min_size=(DETECT_SIDE // 6, DETECT_SIDE // 6),
                                           max_size=(DETECT_SIDE, DETECT_SIDE), min_neighbor_number=2)
    return [((d["c"] + d["width"] / 2) / scale, (d["r"] + d["height"] / 2) / scale, (d["width"] + d["height"]) / 2 / scale)
            for d in found]


def face_box(frames: list[np.ndarray], width: int, height: int, margin: float = MARGIN,
             fallback: float = 1.0) -> CropBox:
    """One still box for a clip from a few of its frames (RGB, any common scale), in coded-video pixels.

    The face is the detection found again, at the same place, in the most frames (ties: the larger one), so a
    spurious detection on one or two frames cannot move the crop; each frame then contributes its detection
    nearest to it, and the box centre and side are the medians of those. Fewer than ``MIN_HITS`` frames
    showing that face: the centre box.
    """
    per_frame = [[(cx * width / f.shape[1], cy * height / f.shape[0], side * width / f.shape[1])
                  for cx, cy, side in detect(f)] for f in frames]

    def near(a: tuple[float, float, float], b: tuple[float, float, float]) -> bool:
        return abs(a[0] - b[0]) < a[2] / 2 and abs(a[1] - b[1]) < a[2] / 2 and 0.6 < b[2] / a[2] < 1.6

    candidates = [d for found in per_frame for d in found]
    if not candidates:
        return centre_box(width, height, fallback)
    face = max(candidates, key=lambda c: (sum(any(near(c, d) for d in found) for found in per_frame), c[2]))
    hits = [min((d for d in found if near(face, d)), key=lambda d: abs(d[0] - face[0]) + abs(d[1] - face[1]))
            for found in per_frame if any(near(face, d) for d in found)]
    if len(hits) < min(MIN_HITS, len(frames)):
        return centre_box(width, height, fallback)
    return still_box([(cx, cy, side, side) for cx, cy, side in hits], width, height, margin, CENTRE_SHIFT, "face")


def still_box(hits: list[tuple[float, float, float, float]], width: int, height: int, margin: float, shift: float,
              source: str) -> CropBox:
    """One still square crop from per-frame face boxes (centre x, centre y, width, height): the median box,
    its longer side widened by ``margin``, moved down by ``shift`` of that side (a detector's box sits above
    the face's centre), squared and kept inside the frame. Detected faces and landmark files share it."""
    cx, cy, w, h = np.median(np.asarray(hits, dtype=np.float64), axis=0)
    face = (round(cx - w / 2), round(cy - h / 2), round(w), round(h))
    found = max(w, h)
    side = max(1, min(round(found * margin), width, height))
    x = int(np.clip(round(cx - side / 2), 0, width - side))
    y = int(np.clip(round(cy + shift * found - side / 2), 0, height - side))
    return CropBox(x, y, side, side, source, face)


def iou(a: CropBox | tuple[float, float, float, float], b: CropBox | tuple[float, float, float, float]) -> float:
    """Intersection over union of two (x, y, width, height) boxes."""
    ax, ay, aw, ah = a.as_list() if isinstance(a, CropBox) else a
    bx, by, bw, bh = b.as_list() if isinstance(b, CropBox) else b
    w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = w * h
    return inter / (aw * ah + bw * bh - inter)
