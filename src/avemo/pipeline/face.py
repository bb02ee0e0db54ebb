"""Where the face is: the clip's subject, found on one frame per snippet and followed when it moves.

In RAVDESS the face fills a small part of the 1280 x 720 frame; a centre crop scaled to 112 keeps about 45
pixels of it. avemo runs a face detector (:mod:`avemo.pipeline.detectors`) on the middle frame of each of the
clip's snippets, links the detections into tracks (the same face from frame to frame) and takes the clip's
subject: among the faces the detector is sure of (at least 0.8 of the surest one's score) and sees on at least
half as many frames as the most present one, the one with the most frames times size. Then:

- a subject that stays put (its centre within ``FaceDetector.follow`` of its side of its median place) gets
  one still box for the clip, the median of its detections (a 3D CNN reads motion: a jittering crop would add
  motion that is not there);
- a subject that moves gets one box per snippet, of one size, centred on its track smoothed over
  neighbouring snippets: steady within each 16-frame snippet, following the face between them;
- a snippet whose frame did not show the subject (it turned away, or left the picture part-way) takes the
  box of the nearest snippet that did; a clip with fewer than ``min_hits`` frames showing a face falls back
  to the centre crop (and extract names it).

Each box is widened by the detector's margin to keep forehead and chin, squared and kept inside the frame.
Boxes are in the pixels of the coded video, so the PyAV and DALI paths crop the same region.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from avemo.choices import Crop
from avemo.pipeline.detectors import Detection, detect
from avemo.spec import FaceDetector


@dataclass(frozen=True)
class CropBox:
    """A square (``none``: the whole frame) region of the coded video, in its pixels.

    ``track``: for a face that moves, the top-left corner of each snippet's box (all of side ``width``);
    ``x``, ``y`` are then the median place. None: every snippet shows ``x, y, width, height``.
    """

    x: int
    y: int
    width: int
    height: int
    source: str  # "face", "landmarks", "center" (asked for, or a face crop's fallback) or "none"
    face: tuple[int, int, int, int] | None = None  # the face found (median box, before the margin)
    track: tuple[tuple[int, int], ...] | None = None

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.width, self.height]

    def snippet_boxes(self, snippets: int) -> list[tuple[int, int, int, int]]:
        """(x, y, width, height) of each snippet's region."""
        if self.track is None:
            return [(self.x, self.y, self.width, self.height)] * snippets
        return [(x, y, self.width, self.height) for x, y in self.track]

    def to_json(self) -> dict:
        """What the cache index records of it."""
        return {"box": self.as_list(), "source": self.source, **({"face": list(self.face)} if self.face else {}),
                **({"track": [list(c) for c in self.track]} if self.track else {})}

    @classmethod
    def from_json(cls, data: dict) -> CropBox:
        """The box ``to_json`` wrote (a timeline resumed from its rows)."""
        x, y, width, height = (int(v) for v in data["box"])
        face = tuple(int(v) for v in data["face"]) if data.get("face") else None
        track = tuple((int(a), int(b)) for a, b in data["track"]) if data.get("track") else None
        return cls(x, y, width, height, str(data["source"]), face, track)

    def describe(self) -> str:
        """Where the picture was cut, in words (predict's and timeline's notes)."""
        if self.source == "face":
            moving = f", followed over {len(self.track)} snippets" if self.track else ""
            return f"face at x {self.x}, y {self.y}, side {self.width}{moving}"
        if self.source == "landmarks":
            return f"face from landmarks at x {self.x}, y {self.y}, side {self.width}"
        return {"center": "no face found: the centre of the picture", "none": "the whole picture"}.get(
            self.source, self.source)


def centre_box(width: int, height: int, fraction: float = 1.0) -> CropBox:
    """The centred square of ``fraction`` of the short side: what scaling the short side to ``resize`` and
    cropping ``size`` keeps (``fraction`` = size / resize)."""
    return CropBox(*Crop.center.fixed_box(width, height, fraction), Crop.center.value)


@lru_cache(maxsize=1)
def current_detector() -> FaceDetector:
    """The detector settings this installation runs (and records in the feature specs it writes)."""
    return FaceDetector.current()


def _same_face(a: Detection, b: Detection, gap: int) -> bool:
    """b, ``gap`` snippets after a, is where a is, at about its size: a face moves less than about half its
    side between two snippets' middle frames."""
    (ax, ay), (bx, by) = a.centre, b.centre
    reach = 0.6 * a.side * gap
    return abs(ax - bx) < reach and abs(ay - by) < reach and 0.6 < b.side / a.side < 1.6


def tracks(per_frame: list[list[Detection]]) -> list[dict[int, Detection]]:
    """Detections linked from frame to frame: each track maps frame number -> its detection there. Each frame's
    detections join the tracks whose latest detection they match, nearest pairs first; the others start
    tracks of their own."""
    found: list[dict[int, Detection]] = []
    for t, faces in enumerate(per_frame):
        pairs = sorted((np.hypot(d.centre[0] - track[max(track)].centre[0], d.centre[1] - track[max(track)].centre[1]), i, j)
                       for i, track in enumerate(found) for j, d in enumerate(faces)
                       if _same_face(track[max(track)], d, t - max(track)))
        joined: set[int] = set()
        for _, i, j in pairs:
            if t not in found[i] and j not in joined:
                found[i][t] = faces[j]
                joined.add(j)
        found.extend({t: d} for j, d in enumerate(faces) if j not in joined)
    return found


def subject(per_frame: list[list[Detection]], min_hits: int) -> dict[int, Detection] | None:
    """The clip's subject: among tracks seen on ``min_hits`` frames, on at least half as many as the most
    present one and scored at least 0.8 of the surest one's score, the one with the most frames times median
    side; None when no face is seen often enough."""
    linked = [t for t in tracks(per_frame) if len(t) >= min(min_hits, len(per_frame))]
    if not linked:
        return None
    most = max(len(t) for t in linked)
    # A face the detector is much less sure of than the surest one (a glass, a pattern) is not the subject,
    # however large; a hard face alone (a profile, film lighting) still is.
    sure = {id(t): float(np.median([d.score for d in t.values()])) for t in linked}
    surest = max(sure.values())
    present = [t for t in linked if 2 * len(t) >= most and sure[id(t)] >= 0.8 * surest]
    # large and present: a face seen on every frame outweighs one twice its size seen on half of them
    return max(present, key=lambda t: (len(t) * float(np.median([d.side for d in t.values()])), len(t)))


def face_box(frames: list[np.ndarray], width: int, height: int, fallback: float = 1.0,
             settings: FaceDetector | None = None) -> CropBox:
    """The crop for a clip from the middle frame of each snippet (RGB, any common scale), in coded pixels."""
    settings = settings or current_detector()
    per_frame = [[d.scaled(width / f.shape[1], height / f.shape[0]) for d in detect(f, settings)] for f in frames]
    return track_box(per_frame, width, height, settings, fallback)


def track_box(per_frame: list[list[Detection]], width: int, height: int, settings: FaceDetector,
              fallback: float = 1.0) -> CropBox:
    """The crop from the detections on each snippet's middle frame (coded pixels): still or followed."""
    face = subject(per_frame, settings.min_hits)
    if face is None:
        return centre_box(width, height, fallback)
    seen = sorted(face)
    hits = [(d.centre[0], d.centre[1], d.width, d.height) for d in face.values()]
    still = still_box(hits, width, height, settings.margin, settings.centre_shift, "face")
    side = float(np.median([d.side for d in face.values()]))
    # every snippet: its own detection, else the nearest snippet's that had one; then a running median of three
    # (the first and last snippets repeated at the ends, so that steady motion is followed without lag)
    nearest = [face[min(seen, key=lambda s: (abs(s - t), s))].centre for t in range(len(per_frame))]
    padded = [nearest[0], *nearest, nearest[-1]]
    centres = np.array([np.median(padded[t:t + 3], axis=0) for t in range(len(per_frame))])
    median = np.median(np.array([d.centre for d in face.values()]), axis=0)
    if np.abs(centres - median).max() <= settings.follow * side:
        return still
    corners = tuple((int(np.clip(round(cx - still.width / 2), 0, width - still.width)),
                     int(np.clip(round(cy + settings.centre_shift * side - still.height / 2), 0,
                                 height - still.height)))
                    for cx, cy in centres)
    return CropBox(still.x, still.y, still.width, still.height, "face", still.face, corners)


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
