"""Face boxes from landmark files: OpenFace 2D landmark CSVs, one per video, named after it.

RAVDESS publishes them (``FacialTracking_Actors_01-24``) and many labs already run OpenFace. Each row is a
frame: ``frame, [face_id,] timestamp, confidence, success, ..., x_0..x_67, y_0..y_67`` (OpenFace writes a
space after each comma). A frame the tracker lost (``success`` 0) or doubted (``confidence`` under the
threshold) is ignored; every other frame gives the box around its 68 points, and the clip gets one still
box from them exactly as the face detector's hits make one (median, margin, squaring; ``face.still_box``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avemo.pipeline.face import CropBox, still_box
from avemo.spec import LandmarkSettings

POINTS = 68


@dataclass(frozen=True)
class LandmarkSource:
    """Where a clip's landmark file is, and how to read it."""

    folder: Path
    settings: LandmarkSettings = LandmarkSettings()

    def file_for(self, video: Path) -> Path:
        return self.folder / f"{video.stem}.csv"


class LandmarkFileError(ValueError):
    """A landmark file that cannot be read; the message names it."""


def read_boxes(path: Path, min_confidence: float) -> np.ndarray:
    """(N, 4) boxes (x, y, width, height) around the 68 points of every trusted frame of an OpenFace CSV."""
    try:
        with path.open(newline="") as handle:
            rows = csv.reader(handle, skipinitialspace=True)
            header = [h.strip() for h in next(rows, [])]
            try:
                xs = [header.index(f"x_{i}") for i in range(POINTS)]
                ys = [header.index(f"y_{i}") for i in range(POINTS)]
                success, confidence = header.index("success"), header.index("confidence")
            except ValueError:
                raise LandmarkFileError(f"{path}: not an OpenFace landmark file (needs success, confidence, "
                                        f"x_0..x_{POINTS - 1}, y_0..y_{POINTS - 1} columns)") from None
            boxes = []
            for line, row in enumerate(rows, start=2):
                if not row:
                    continue
                try:
                    if float(row[success]) < 0.5 or float(row[confidence]) < min_confidence:
                        continue
                    x = np.array([float(row[i]) for i in xs])
                    y = np.array([float(row[i]) for i in ys])
                except (ValueError, IndexError):
                    raise LandmarkFileError(f"{path}: line {line} is not a row of numbers") from None
                if np.isfinite(x).all() and np.isfinite(y).all():
                    boxes.append((x.min(), y.min(), x.max() - x.min(), y.max() - y.min()))
    except (OSError, UnicodeDecodeError) as err:
        raise LandmarkFileError(f"{path}: cannot read ({err})") from None
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4)


def landmark_box(path: Path, width: int, height: int, settings: LandmarkSettings = LandmarkSettings()) -> CropBox | None:
    """One still box from a clip's landmark file, in coded-video pixels; None when the file is missing or has
    fewer than ``min_frames`` trusted frames (the caller falls back to the detector)."""
    if not path.is_file():
        return None
    boxes = read_boxes(path, settings.min_confidence)
    if len(boxes) < settings.min_frames:
        return None
    hits = [(x + w / 2, y + h / 2, w, h) for x, y, w, h in boxes]
    return still_box(hits, width, height, settings.margin, shift=0.0, source="landmarks")


def openface_csv(boxes: list[tuple[float, float, float, float]], fps: float, confidence: float = 0.98) -> str:
    """An OpenFace-style CSV whose 68 points of frame i span exactly ``boxes[i]`` (for synthetic clips): the
    points lie on the ellipse inscribed in the box, four of them on its sides."""
    angles = np.arange(POINTS) * 2 * np.pi / POINTS
    header = ["frame", "face_id", "timestamp", "confidence", "success",
              *(f"x_{i}" for i in range(POINTS)), *(f"y_{i}" for i in range(POINTS))]
    lines = [", ".join(header)]
    for i, (x, y, w, h) in enumerate(boxes):
        px = x + w / 2 + w / 2 * np.cos(angles)
        py = y + h / 2 + h / 2 * np.sin(angles)
        lines.append(", ".join([str(i + 1), "0", f"{i / fps:.3f}", f"{confidence:.2f}", "1",
                                *(f"{v:.2f}" for v in px), *(f"{v:.2f}" for v in py)]))
    return "\n".join(lines) + "\n"
