"""The analyses behind ``avemo serve``: uploaded videos, each in its own folder under the data folder, analysed
one at a time by a worker thread into a timeline folder (the one ``avemo timeline`` writes), and listed,
read and deleted by the web app.

A folder ``DATA/analyses/<id>/`` holds ``analysis.json`` (the record: the name the user gave, for display only,
the status and the error), ``video`` (the upload, under that fixed name: a user's name is never a path) and
``timeline/`` (``timeline.csv``, ``timeline.jsonl`` row by row as windows finish, then ``timeline.json`` and
``timeline.png``). Ids are random hex, checked before any path is made of one. An analysis that was queued or
running when the server stopped is queued again when it starts, and goes on from the windows it had finished.
"""

from __future__ import annotations

import json
import queue
import re
import shutil
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from avemo.choices import Choice
from avemo.errors import AvemoError
from avemo.files import atomic_write

if TYPE_CHECKING:
    from avemo.recognizer import Recognizer

RECORD, VIDEO, TIMELINE = "analysis.json", "video", "timeline"
CHUNK = 1 << 20
_ID = re.compile(r"[0-9a-f]{32}")
# What the browser's player is told a file is, by the container PyAV finds (not by the file's name).
MEDIA_TYPES = {"mov,mp4,m4a,3gp,3g2,mj2": "video/mp4", "matroska,webm": "video/webm", "ogg": "video/ogg"}


class Status(Choice):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"


class UploadError(AvemoError):
    """An upload that is refused; the message says why, for the page to show. Nothing of it is kept."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Analysis:
    id: str
    name: str  # the file name the user gave: shown, never used as a path
    size: int
    created: float
    media_type: str
    status: str = Status.queued.value
    error: str = ""
    seconds: float = 0.0  # the video's duration
    done_seconds: float = 0.0  # seconds of video analysed so far
    started: float = 0.0
    finished: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def probe(path: Path) -> tuple[str, bool, float]:
    """(media type for the player, whether there is sound, duration) of a file judged by decoding it: a video
    stream whose first frame decodes. Raises UploadError otherwise."""
    import av

    from avemo.pipeline.decode import describe_error, media_seconds

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise UploadError("this file has no video stream; upload a video")
            if next(container.decode(container.streams.video[0]), None) is None:
                raise UploadError("no frame of this video could be decoded; it may be damaged or cut short")
            media_type = MEDIA_TYPES.get(container.format.name, "application/octet-stream")
            has_audio = bool(container.streams.audio)
    except UploadError:
        raise
    except (av.FFmpegError, OSError, ValueError, IndexError) as error:
        # FFmpeg's own words, without the server's path of the file
        reason = " ".join(describe_error(error).split()) or type(error).__name__
        raise UploadError(f"this file cannot be read as a video ({reason[:120]})") from None
    # the duration as the timeline measures it, so that its progress and this record agree
    return media_type, has_audio, media_seconds(path) or 0.0


@dataclass
class Upload:
    """A video arriving: written to its analysis's folder as it comes, refused once past the limit."""

    id: str
    folder: Path
    name: str
    limit: int
    handle: BinaryIO
    size: int = 0

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise UploadError(f"the file is larger than the server's limit of {self.limit / 1e9:.1f} GB (avemo serve "
                              "--max-upload)", status=413)
        self.handle.write(data)

    def discard(self) -> None:
        self.handle.close()
        shutil.rmtree(self.folder, ignore_errors=True)


class Analyses:
    """The analyses of one server: upload, list, read, delete; a worker analyses them one at a time."""

    def __init__(self, data: Path, recognizer: Recognizer, max_upload: int = 2 << 30, batch_size: int = 4) -> None:
        self.root = data / "analyses"
        self.root.mkdir(parents=True, exist_ok=True)
        self.rec, self.max_upload, self.batch_size = recognizer, max_upload, batch_size
        self.lock = threading.Lock()
        self.todo: queue.Queue[str | None] = queue.Queue()
        self.worker = threading.Thread(target=self._work, name="avemo-analyses", daemon=True)
        self.current = ""
        for folder in self.root.iterdir():  # an upload cut off by a stopped server: never recorded, never shown
            if _ID.fullmatch(folder.name) and not (folder / RECORD).exists():
                shutil.rmtree(folder, ignore_errors=True)
        for record in sorted(self.list(), key=lambda a: a.created):  # what a stopped server left
            if record.status in (Status.queued, Status.running):
                record.status = Status.queued.value
                self._save(record)
                self.todo.put(record.id)

    # -- records ----------------------------------------------------------------------------------------

    def folder(self, analysis_id: str) -> Path:
        if not _ID.fullmatch(analysis_id):
            raise KeyError(analysis_id)
        return self.root / analysis_id

    def get(self, analysis_id: str) -> Analysis:
        path = self.folder(analysis_id) / RECORD
        try:
            return Analysis(**json.loads(path.read_text()))
        except FileNotFoundError:
            raise KeyError(analysis_id) from None
        except (ValueError, TypeError):
            return Analysis(analysis_id, "?", 0, path.stat().st_mtime, "application/octet-stream",
                            Status.failed.value, f"{path}: damaged record")

    def list(self) -> list[Analysis]:
        found = []
        for folder in self.root.iterdir():
            if _ID.fullmatch(folder.name) and (folder / RECORD).is_file():
                try:
                    found.append(self.get(folder.name))
                except KeyError:  # deleted meanwhile
                    continue
        return sorted(found, key=lambda a: a.created, reverse=True)

    def _save(self, record: Analysis) -> None:
        atomic_write(self.folder(record.id) / RECORD, json.dumps(record.to_dict(), indent=1).encode())

    def video(self, analysis_id: str) -> Path:
        return self.folder(analysis_id) / VIDEO

    def timeline_file(self, analysis_id: str, suffix: str) -> Path:
        if suffix not in ("csv", "json", "png"):
            raise KeyError(suffix)
        return self.folder(analysis_id) / TIMELINE / f"timeline.{suffix}"

    def windows(self, analysis_id: str, start: int = 0) -> list[dict[str, Any]]:
        """The windows finished so far (from the ``start``-th)."""
        return self.read_windows(analysis_id, 0)[0][start:]

    def read_windows(self, analysis_id: str, offset: int) -> tuple[list[dict[str, Any]], int]:
        """The windows written after byte ``offset`` of ``timeline.jsonl`` (whole lines only), and the offset
        after them: an event stream reads each row once, however long the video."""
        path = self.folder(analysis_id) / TIMELINE / "timeline.jsonl"
        try:
            with path.open("rb") as handle:
                handle.seek(offset)
                text = handle.read()
        except FileNotFoundError:
            return [], offset
        rows = []
        for line in text.split(b"\n")[:-1]:
            try:
                rows.append(json.loads(line))
            except ValueError:
                break
            offset += len(line) + 1
        return rows, offset

    def summary(self, analysis_id: str) -> dict[str, Any] | None:
        path = self.timeline_file(analysis_id, "json")
        try:
            document = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return None
        return document.get("summary") if isinstance(document.get("windows"), list) and "summary" in document else None

    # -- changes ----------------------------------------------------------------------------------------

    def create(self, upload: BinaryIO, name: str) -> Analysis:
        """Stream ``upload`` to disk (refused past ``max_upload``), judge it by decoding, queue it."""
        receiving = self.receive(name)
        try:
            while block := upload.read(CHUNK):
                receiving.write(block)
        except BaseException:
            receiving.discard()
            raise
        return self.accept(receiving)

    def receive(self, name: str) -> Upload:
        """A new analysis's folder, ready to take the video's bytes as they arrive."""
        analysis_id = uuid.uuid4().hex
        folder = self.folder(analysis_id)
        folder.mkdir()
        return Upload(analysis_id, folder, display_name(name), self.max_upload, (folder / VIDEO).open("wb"))

    def accept(self, upload: Upload) -> Analysis:
        """Judge the received file by decoding it and queue it; a refused one leaves nothing behind."""
        try:
            upload.handle.close()
            if upload.size == 0:
                raise UploadError("no video arrived (an empty file, or no field named 'video')")
            media_type, has_audio, seconds = probe(upload.folder / VIDEO)
            if not has_audio and self.rec.run.needs_audio:
                raise UploadError(f"this video has no soundtrack, and the run was trained on {self.rec.run.modality} "
                                  "(audio and video); upload the video with its sound")
            record = Analysis(upload.id, upload.name, upload.size, time.time(), media_type, seconds=seconds)
            self._save(record)
        except BaseException:
            upload.discard()
            raise
        self.todo.put(upload.id)
        return record

    def delete(self, analysis_id: str) -> None:
        folder = self.folder(analysis_id)
        if not (folder / RECORD).is_file():
            raise KeyError(analysis_id)
        with self.lock:
            if self.current == analysis_id:
                raise UploadError("this analysis is running; wait for it to end", status=409)
            shutil.rmtree(folder)

    # -- the worker ------------------------------------------------------------------------------------

    def start(self) -> None:
        if not self.worker.is_alive():  # a new thread each time the app starts (a thread starts only once)
            self.worker = threading.Thread(target=self._work, name="avemo-analyses", daemon=True)
            self.worker.start()

    def stop(self) -> None:
        self.todo.put(None)

    def _work(self) -> None:
        while (analysis_id := self.todo.get()) is not None:
            try:
                self._analyse(analysis_id)
            except Exception:  # noqa: BLE001 - a record that cannot be written (a full disk): the next goes on
                pass
            finally:
                with self.lock:
                    self.current = ""

    def _analyse(self, analysis_id: str) -> None:
        from avemo.timelines import timeline_into

        with self.lock:
            try:
                record = self.get(analysis_id)
            except KeyError:  # deleted while queued
                return
            self.current = analysis_id
        folder = self.folder(analysis_id)
        resume = (folder / TIMELINE / "timeline.json").is_file()
        record.status, record.started, record.error = Status.running.value, time.time(), ""
        self._save(record)

        def progress(seconds: float) -> None:
            record.done_seconds = round(seconds, 3)
            self._save(record)

        def analyse(resume: bool) -> str:
            try:
                return timeline_into(self.rec, folder / VIDEO, folder / TIMELINE, resume=resume,
                                     batch_size=self.batch_size, on_progress=progress).error
            except Exception as error:  # noqa: BLE001 - the page shows it; the server goes on with the next
                return " ".join(str(error).split()) or type(error).__name__

        record.error = analyse(resume)
        if record.error and resume:  # rows that cannot be continued (the run changed, say): start afresh
            shutil.rmtree(folder / TIMELINE, ignore_errors=True)
            record.done_seconds = 0.0
            record.error = analyse(False)
        record.status = (Status.failed if record.error else Status.done).value
        if not record.error:
            record.done_seconds = max(record.done_seconds, record.seconds)
        record.finished = time.time()
        with self.lock:
            if folder.is_dir():
                self._save(record)


def display_name(name: str) -> str:
    """The last part of the name the browser sent, printable, at most 200 characters: shown, never a path."""
    name = re.split(r"[\\/]", name or "")[-1]
    return "".join(ch for ch in name if ch.isprintable())[:200] or "video"
