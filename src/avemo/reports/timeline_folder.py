"""A timeline's folder: its rows written as windows finish, the settings that made them, and resuming from them.

While a timeline runs, each finished window is appended to ``timeline.csv`` and to ``timeline.jsonl`` (one JSON
object per window: the records ``timeline.json`` lists) and flushed, so a run that stops keeps what it did;
``timeline.json`` holds the settings with ``"status": "running"``. At the end the files are written whole
(atomically), ``timeline.json`` gets the windows and the summary (``"status": "done"``) and the plot is drawn.

:meth:`TimelineFolder.resume` reads the rows back, a half-written last line dropped, after checking that the
video, the run's models, the window and the hop are those the rows were made with.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from avemo.errors import AvemoError
from avemo.files import atomic_write
from avemo.reports.results import Timeline, Window, csv_header, csv_row, window_record

CSV, JSONL, JSON, PNG = "timeline.csv", "timeline.jsonl", "timeline.json", "timeline.png"
RUNNING, DONE = "running", "done"


class TimelineFolderError(AvemoError):
    """A folder that cannot be resumed; the message names it and says what to do."""


@dataclass(frozen=True)
class Source:
    """What a timeline's rows depend on besides the window and hop: the video (path and size) and the run's
    models (the SHA-256 of their checkpoints)."""

    video: str
    video_bytes: int
    run: str
    models: str

    @classmethod
    def of(cls, video: Path, run: Path, checkpoints: list[Path]) -> Source:
        digest = hashlib.sha256()
        for file in checkpoints:
            digest.update(hashlib.sha256(file.read_bytes()).digest())
        return cls(str(video.resolve()), video.stat().st_size, str(run.resolve()), digest.hexdigest())

    def to_json(self) -> dict[str, Any]:
        return {"video": self.video, "video_bytes": self.video_bytes, "run": self.run, "models": self.models}


class TimelineFolder:
    """The folder of one video's timeline (made on first write)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._csv: TextIO | None = None
        self._jsonl: TextIO | None = None

    def __repr__(self) -> str:
        return f"TimelineFolder({str(self.path)!r})"

    # -- resuming ----------------------------------------------------------------------------------------

    def resume(self, timeline: Timeline, source: Source) -> tuple[list[Window], bool]:
        """The windows an earlier run of these settings finished, and whether it finished them all; nothing
        when the folder holds no timeline. Raises :class:`TimelineFolderError` for rows made otherwise."""
        state_file = self.path / JSON
        if not state_file.is_file():
            return [], False
        redo = "drop --resume to start it over, or give another --out"
        try:
            state = json.loads(state_file.read_text())
            made = {**state, **state["source"]}
        except (OSError, ValueError, KeyError, TypeError):
            raise TimelineFolderError(f"{state_file}: damaged, so its rows cannot be resumed; {redo}") from None
        wanted = {**self._settings(timeline), **source.to_json()}
        for key, words in [("video", "another video"), ("video_bytes", "the video changed since (its size differs)"),
                           ("run", "another run"), ("models", "the run's models changed since (trained again?)"),
                           ("classes", "other classes"), ("window", "another --window"), ("hop", "another --hop"),
                           ("audio", "the video's sound differs")]:
            if made.get(key) != wanted[key]:
                shown = f" ({made.get(key)} then, {wanted[key]} now)" if key in ("window", "hop") else ""
                raise TimelineFolderError(f"{self.path}: its rows were made with {words}{shown}; {redo}")
        windows = self._rows(timeline)
        return windows, state.get("status") == DONE

    def _rows(self, timeline: Timeline) -> list[Window]:
        from avemo.pipeline.face import CropBox

        rows = self.path / JSONL
        if not rows.is_file():
            return []
        lines = rows.read_text().split("\n")
        windows: list[Window] = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                probabilities = [float(record["probabilities"][c]) for c in timeline.classes] \
                    if record["probabilities"] else []
                box = CropBox.from_json(record["crop"]) if record.get("crop") else None
                window = Window(float(record["start"]), float(record["end"]), probabilities, box,
                                record.get("error") or "")
            except (ValueError, KeyError, TypeError):
                if number >= len(lines) - 1:  # the line a stopped run was writing: that window is done again
                    break
                raise TimelineFolderError(f"{rows}: line {number} is damaged; drop --resume to start over") from None
            if abs(window.start - len(windows) * timeline.hop) > 1e-3:
                raise TimelineFolderError(f"{rows}: line {number} starts at {window.start} s, not at window "
                                          f"{len(windows)}'s start; drop --resume to start over")
            windows.append(window)
        return windows

    # -- writing -----------------------------------------------------------------------------------------

    @staticmethod
    def _settings(timeline: Timeline) -> dict[str, Any]:
        return {"path": str(timeline.path), "classes": timeline.classes, "window": timeline.window,
                "window_source": timeline.window_source, "hop": timeline.hop, "audio": timeline.audio}

    @property
    def live(self) -> bool:
        """Whether ``start`` has opened the live files."""
        return self._csv is not None

    def start(self, timeline: Timeline, source: Source, kept: list[Window]) -> None:
        """Begin the live files: the settings, marked running, and the rows of ``kept`` (a resumed run's),
        each file replaced whole, so that a stop here loses none of the kept rows."""
        self.path.mkdir(parents=True, exist_ok=True)
        self._classes = timeline.classes
        rows = io.StringIO()
        writer = csv.writer(rows, lineterminator="\n")
        writer.writerow(csv_header(timeline.classes))
        writer.writerows(csv_row(timeline.classes, w) for w in kept)
        atomic_write(self.path / CSV, rows.getvalue().encode())
        atomic_write(self.path / JSONL, "".join(json.dumps(window_record(timeline.classes, w)) + "\n"
                                                for w in kept).encode())
        state = {"status": RUNNING, **self._settings(timeline), "source": source.to_json()}
        atomic_write(self.path / JSON, json.dumps(state, indent=1).encode())
        self._csv = (self.path / CSV).open("a", newline="")
        self._jsonl = (self.path / JSONL).open("a")
        self._rows_writer = csv.writer(self._csv, lineterminator="\n")

    def add(self, w: Window) -> None:
        """One finished window, on disk now."""
        self._write(w)
        self._flush()

    def _write(self, w: Window) -> None:
        self._rows_writer.writerow(csv_row(self._classes, w))
        self._jsonl.write(json.dumps(window_record(self._classes, w)) + "\n")

    def _flush(self) -> None:
        for handle in (self._csv, self._jsonl):
            handle.flush()

    def close(self) -> None:
        for handle in (self._csv, self._jsonl):
            if handle is not None:
                handle.close()
        self._csv = self._jsonl = None

    def finish(self, timeline: Timeline, source: Source) -> list[Path]:
        """The whole timeline, written atomically: the CSV, the JSON Lines, the JSON (done) and the plot."""
        self.close()
        self.path.mkdir(parents=True, exist_ok=True)
        timeline.to_csv(self.path / CSV)
        atomic_write(self.path / JSONL, "".join(json.dumps(window_record(timeline.classes, w)) + "\n"
                                                for w in timeline.windows).encode())
        data = {"status": DONE, **timeline.to_dict(), "source": source.to_json()}
        atomic_write(self.path / JSON, json.dumps(data, indent=1).encode())
        timeline.plot(self.path / PNG)
        return [self.path / CSV, self.path / JSONL, self.path / JSON, self.path / PNG]


def folder_names(videos: list[Path]) -> list[str]:
    """A distinct folder name per video: its name + ``-timeline``, with its parent folder's name (then a
    number) in front where two videos share a name."""
    names = [v.stem + "-timeline" for v in videos]
    counts = {n: names.count(n) for n in names}
    for i, v in enumerate(videos):
        if counts[names[i]] > 1:
            names[i] = f"{v.resolve().parent.name}-{names[i]}"
    seen: dict[str, int] = {}
    for i, n in enumerate(names):
        seen[n] = seen.get(n, 0) + 1
        if seen[n] > 1:
            names[i] = f"{n}-{seen[n]}"
    return names


def default_folder(video: Path) -> Path:
    """Where a video's timeline goes without ``--out``: beside it, its name + ``-timeline``."""
    return video.with_name(video.stem + "-timeline")

