"""What recognition returns: a :class:`Prediction` per video, a :class:`Timeline` of windows per long video.

Both convert to plain dicts (``to_dict``), to JSON and CSV, and to a pandas DataFrame where pandas is
installed (``to_dataframe``; pandas is not a dependency of avemo).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from avemo.errors import AvemoError
from avemo.files import atomic_write

if TYPE_CHECKING:
    import pandas

    from avemo.pipeline.face import CropBox


def _dataframe(rows: list[dict[str, Any]]) -> pandas.DataFrame:
    try:
        import pandas
    except ImportError:
        raise AvemoError("to_dataframe needs pandas, which avemo does not install: pip install pandas "
                         "(or use to_dict)") from None
    return pandas.DataFrame(rows)


def _box(box: CropBox | None) -> dict[str, Any] | None:
    return box.to_json() if box is not None else None


@dataclass
class Prediction:
    """The emotions of one video, best first; ``error`` says why a video could not be read (then ``ranked``
    is empty).

    >>> p = rec.predict([clip])[0]
    >>> p.label == p.ranked[0][0], round(sum(p.probabilities.values()), 3)
    (True, 1.0)
    >>> sorted(p.to_dict())
    ['box', 'error', 'label', 'path', 'probabilities']
    """

    path: Path
    ranked: list[tuple[str, float]] = field(default_factory=list)  # (class, probability), best first
    box: CropBox | None = None  # the region of the frames the model saw
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def label(self) -> str | None:
        """The most probable class (None when the video could not be read)."""
        return self.ranked[0][0] if self.ranked else None

    @property
    def probabilities(self) -> dict[str, float]:
        """Class -> probability, best first."""
        return dict(self.ranked)

    def to_dict(self, top: int | None = None) -> dict[str, Any]:
        """Plain data: path, label, probabilities (the ``top`` best, all by default), box, error."""
        return {"path": str(self.path), "label": self.label,
                "probabilities": {c: round(p, 4) for c, p in self.ranked[:top]}, "box": _box(self.box),
                "error": self.error or None}


class Predictions(list[Prediction]):
    """The predictions of several videos, in the order given.

    >>> table = rec.predict([clip, clip]).to_dataframe()   # doctest: +SKIP
    >>> rec.predict([clip]).to_dicts(top=1)[0]["label"] in rec.classes
    True
    """

    def to_dicts(self, top: int | None = None) -> list[dict[str, Any]]:
        return [p.to_dict(top) for p in self]

    def to_dataframe(self) -> pandas.DataFrame:
        """One row per video: path, label, error, and a column per class (needs pandas)."""
        return _dataframe([{"path": str(p.path), "label": p.label, "error": p.error or None, **p.probabilities}
                           for p in self])


@dataclass
class Window:
    """One window of a timeline: its span in seconds, a probability per class of the run (in its order), the
    crop box; ``error`` says why it could not be decoded (then ``probabilities`` is empty).

    >>> w = rec.timeline(long_clip, window=2.0, hop=2.0).windows[-1]
    >>> (w.end - w.start, len(w.probabilities) == len(rec.classes), w.error)
    (2.0, True, '')
    """

    start: float
    end: float
    probabilities: list[float] = field(default_factory=list)
    box: CropBox | None = None
    error: str = ""


CSV_BOX = ["box_x", "box_y", "box_width", "box_height", "box_source"]


def csv_header(classes: list[str]) -> list[str]:
    """The columns of ``timeline.csv``."""
    return ["start", "end", "top", *classes, *CSV_BOX, "error"]


def csv_row(classes: list[str], w: Window) -> list[str]:
    """One window as a row of ``timeline.csv``."""
    probs = [f"{p:.4f}" for p in w.probabilities] or [""] * len(classes)
    box = [*w.box.as_list(), w.box.source] if w.box is not None else [""] * len(CSV_BOX)
    return [f"{w.start:.3f}", f"{w.end:.3f}", top_label(classes, w), *probs, *box, w.error]


def window_record(classes: list[str], w: Window) -> dict[str, Any]:
    """One window as ``timeline.json`` lists it and ``timeline.jsonl`` holds it, a line each."""
    return {"start": round(w.start, 3), "end": round(w.end, 3), "top": top_label(classes, w) or None,
            "probabilities": {c: round(p, 4) for c, p in zip(classes, w.probabilities)}, "crop": _box(w.box),
            "error": w.error or None}


def top_label(classes: list[str], w: Window) -> str:
    """The most probable class of a window ("" for a window that could not be decoded)."""
    return classes[max(range(len(w.probabilities)), key=w.probabilities.__getitem__)] if w.probabilities else ""


@dataclass
class Timeline:
    """A video's emotions over time: an iterable of :class:`Window`.

    >>> tl = rec.timeline(long_clip, hop=0.5)
    >>> len(tl) == len(tl.windows), tl.windows[1].start - tl.windows[0].start
    (True, 0.5)
    >>> tl.to_csv().splitlines()[0].split(",")[:3]
    ['start', 'end', 'top']
    >>> tl.plot(tmp / "timeline.png").is_file()
    True
    """

    path: Path
    classes: list[str]
    window: float  # seconds
    window_source: str  # where the window length came from, in words
    hop: float
    audio: bool  # False: the video has no soundtrack (a video-only run)
    windows: list[Window] = field(default_factory=list)

    def __iter__(self) -> Iterator[Window]:
        return iter(self.windows)

    def __len__(self) -> int:
        return len(self.windows)

    def top(self, w: Window) -> str:
        """The most probable class of a window ("" for a window that could not be decoded)."""
        return top_label(self.classes, w)

    def segments(self) -> list[tuple[float, float, str]]:
        """(start, end, top label) of each run of consecutive windows with one top label; "" for a run that
        could not be decoded. Each window stands for the ``hop`` around its middle (the first and last reach
        the video's ends), so segments tile the video without overlapping.

        >>> tl = rec.timeline(long_clip, window=2.0, hop=1.0)
        >>> segments = tl.segments()
        >>> segments[0][0], segments[-1][1] == tl.windows[-1].end
        (0.0, True)
        """
        runs: list[tuple[float, float, str]] = []
        last = len(self.windows) - 1
        for i, w in enumerate(self.windows):
            middle = (w.start + w.end) / 2
            start = 0.0 if i == 0 else middle - self.hop / 2
            end = w.end if i == last else middle + self.hop / 2
            label = self.top(w)
            if runs and runs[-1][2] == label and abs(runs[-1][1] - start) < 1e-9:
                runs[-1] = (runs[-1][0], end, label)
            else:
                runs.append((start, end, label))
        return runs

    def shares(self) -> dict[str, float]:
        """The share of the decoded time each class is the top label, most first (sums to 1)."""
        totals: dict[str, float] = {}
        for start, end, label in self.segments():
            if label:
                totals[label] = totals.get(label, 0.0) + end - start
        whole = sum(totals.values())
        return {c: t / whole for c, t in sorted(totals.items(), key=lambda ct: -ct[1])} if whole else {}

    def summary(self) -> dict[str, Any]:
        """The share of time per class, the segments and the windows that could not be decoded."""
        return {"shares": {c: round(v, 4) for c, v in self.shares().items()},
                "segments": [{"start": round(a, 3), "end": round(b, 3), "top": t or None} for a, b, t in self.segments()],
                "not_decoded": [{"start": round(w.start, 3), "end": round(w.end, 3), "error": w.error}
                                for w in self.windows if w.error]}

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as ``timeline.json`` holds it."""
        return {"path": str(self.path), "classes": self.classes, "window": self.window,
                "window_source": self.window_source, "hop": self.hop, "audio": self.audio,
                "summary": self.summary(),
                "windows": [window_record(self.classes, w) for w in self.windows]}

    def to_json(self, path: str | Path | None = None) -> str:
        """The timeline as JSON text; also written (atomically) to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=1)
        if path is not None:
            atomic_write(Path(path), text.encode())
        return text

    def to_csv(self, path: str | Path | None = None) -> str:
        """start, end, top label, a probability per class, the crop box and the error, one row per window; also
        written (atomically) to ``path`` when given."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(csv_header(self.classes))
        writer.writerows(csv_row(self.classes, w) for w in self.windows)
        text = buffer.getvalue()
        if path is not None:
            atomic_write(Path(path), text.encode())
        return text

    def to_dataframe(self) -> pandas.DataFrame:
        """One row per window: start, end, top, a column per class, error (needs pandas)."""
        return _dataframe([{"start": w.start, "end": w.end, "top": self.top(w) or None,
                            **dict(zip(self.classes, w.probabilities)), "error": w.error or None}
                           for w in self.windows])

    def plot(self, path: str | Path) -> Path:
        """Draw the probabilities as stacked areas over time with the top label as a band; returns ``path``."""
        from avemo.reports.plots import plot_timeline

        plot_timeline(self, Path(path))
        return Path(path)

    def write(self, out: str | Path) -> list[Path]:
        """``out/timeline.csv``, ``timeline.json`` and ``timeline.png``."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / "timeline.csv", out / "timeline.json", out / "timeline.png"]
        self.to_csv(paths[0])
        self.to_json(paths[1])
        self.plot(paths[2])
        return paths
