"""The web app of ``avemo serve`` (FastAPI): the page, and the HTTP interface it uses, which scripts can use too.

    POST   /api/analyses                  multipart field ``video`` -> 202 {"id": ..., ...}
    GET    /api/analyses                  every analysis, newest first
    GET    /api/analyses/{id}             status, progress, the windows so far (``?since=N``: from window N), summary
    GET    /api/analyses/{id}/events      server-sent events: ``window`` (one each), ``progress``, then ``end``
    GET    /api/analyses/{id}/video       the uploaded video (HTTP Range, for the player)
    GET    /api/analyses/{id}/timeline.csv|.json|.png
    DELETE /api/analyses/{id}             the analysis and its files
    GET    /api/run                       the run: classes and their colours, window, modality

With a token (``avemo serve --token``), every request, the page and its scripts included, carries it: as
``Authorization: Bearer <token>`` or as ``?token=<token>`` (what a video element or an event stream can send).
Without one, only requests to this machine's own names (localhost, 127.0.0.1, [::1]) are answered, so that no
web site can rebind its name to the server. Uploads and deletions sent by another site's page (their
``Origin``) are refused either way.
"""

from __future__ import annotations

import asyncio
import html
import json
import secrets
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

from avemo.web.analyses import Analyses, Status, UploadError, display_name

STATIC = Path(__file__).parent / "static"
ASSETS = {"app.js": "text/javascript", "style.css": "text/css"}
POLL = 0.25  # seconds between looks at an analysis's files, for its event stream
LOCAL_NAMES = {"localhost", "127.0.0.1", "[::1]"}


@dataclass
class ServeSettings:
    run: Path
    data: Path
    device: str = "auto"
    token: str | None = None
    max_upload: int = 2 << 30  # bytes
    batch_size: int = 4


def create_app(settings: ServeSettings, analyses: Analyses | None = None) -> FastAPI:
    """The app for ``settings``; ``analyses`` may be given ready-made (tests share one recognizer)."""
    if analyses is None:
        from avemo.fusion.run import Run

        recognizer = Run(settings.run).recognizer(device=settings.device)
        analyses = Analyses(settings.data, recognizer, settings.max_upload, settings.batch_size)
    rec = analyses.rec

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        analyses.start()
        yield
        analyses.stop()

    app = FastAPI(title="avemo", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.analyses = analyses

    @app.middleware("http")
    async def check_caller(request: Request, call_next: Any) -> Response:
        if settings.token is not None:
            given = request.query_params.get("token") or request.headers.get("authorization", "").removeprefix(
                "Bearer ")
            if not secrets.compare_digest(given.encode(), settings.token.encode()):
                return JSONResponse({"detail": "a token is needed: open the address avemo serve printed (with "
                                               "?token=...)"}, status_code=401)
        elif _host_name(request.headers.get("host", "")) not in LOCAL_NAMES:
            # no token: only this machine's own names, so that no web site can rebind its name to this server
            return JSONResponse({"detail": "this server answers to localhost only"}, status_code=403)
        origin = request.headers.get("origin")
        if request.method not in ("GET", "HEAD") and origin and urlsplit(origin).netloc != request.headers.get("host"):
            return JSONResponse({"detail": "uploads and deletions come from this server's own page only"},
                                status_code=403)  # another site's page posting to this one
        return await call_next(request)

    def found(analysis_id: str) -> Any:
        try:
            return analyses.get(analysis_id)
        except KeyError:
            raise HTTPException(404, f"no analysis {analysis_id[:40]!r}") from None

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        query = html.escape(f"?token={quote(settings.token, safe='')}") if settings.token else ""
        return (STATIC / "index.html").read_text().replace("{{query}}", query)

    @app.get("/static/{name}")
    def asset(name: str) -> FileResponse:
        if name not in ASSETS:
            raise HTTPException(404, "no such file")
        return FileResponse(STATIC / name, media_type=ASSETS[name])

    @app.get("/api/run")
    def run_info() -> dict[str, Any]:
        from avemo.reports.plots import class_colours

        return {"run": str(rec.run.path), "classes": rec.classes, "colours": class_colours(rec.classes),
                "modality": rec.run.modality, "needs_audio": rec.run.needs_audio}

    @app.post("/api/analyses", status_code=202)
    async def upload(request: Request) -> dict[str, Any]:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > analyses.max_upload + (1 << 20):
            raise HTTPException(413, f"the file is larger than the server's limit of {analyses.max_upload / 1e9:.1f} "
                                     "GB (avemo serve --max-upload)")
        content_type, options = parse_options_header(request.headers.get("content-type", ""))
        if content_type != b"multipart/form-data" or b"boundary" not in options:
            raise HTTPException(415, "send the video as multipart/form-data, in a field named 'video'")
        receiving = await run_in_threadpool(analyses.receive, "")
        receiver = _VideoField(receiving)
        parser = MultipartParser(options[b"boundary"], receiver.callbacks())
        try:
            async for chunk in request.stream():
                parser.write(chunk)
                if receiver.error is not None:
                    raise receiver.error
            parser.finalize()
            if receiver.error is not None:
                raise receiver.error
            receiving.name = display_name(receiver.name)
            record = await run_in_threadpool(analyses.accept, receiving)  # decoding: off the event loop
        except UploadError as error:
            receiving.discard()
            raise HTTPException(error.status, str(error)) from None
        except Exception as error:  # a dropped connection, a malformed body: nothing is kept
            receiving.discard()
            raise HTTPException(400, f"the upload did not arrive whole ({type(error).__name__}); send it again") \
                from None
        except BaseException:  # the server stopping mid-upload: nothing is kept either
            receiving.discard()
            raise
        return record.to_dict()

    @app.get("/api/analyses")
    def listing() -> list[dict[str, Any]]:
        return [a.to_dict() for a in analyses.list()]

    @app.get("/api/analyses/{analysis_id}")
    def one(analysis_id: str, since: int = 0) -> dict[str, Any]:
        record = found(analysis_id)
        return {**record.to_dict(), "eta": _eta(record), "windows": analyses.windows(analysis_id, max(0, since)),
                "summary": analyses.summary(analysis_id) if record.status == Status.done else None}

    @app.get("/api/analyses/{analysis_id}/events")
    async def events(analysis_id: str, request: Request) -> StreamingResponse:
        found(analysis_id)

        # A browser reconnecting on its own says which window it had last (its id): go on after it.
        resumed = request.headers.get("last-event-id", "")
        skip = int(resumed) if resumed.isdigit() else 0

        async def stream() -> AsyncIterator[str]:
            sent, offset, last = 0, 0, None

            async def new_windows() -> AsyncIterator[str]:
                nonlocal sent, offset
                rows, offset = await run_in_threadpool(analyses.read_windows, analysis_id, offset)
                for window in rows:
                    sent += 1
                    if sent > skip:
                        yield _event("window", window, sent)

            while not await request.is_disconnected():
                try:
                    record = analyses.get(analysis_id)
                except KeyError:
                    yield _event("end", {"id": analysis_id, "status": "deleted"})
                    return
                async for event in new_windows():
                    yield event
                progress = {"status": record.status, "done_seconds": record.done_seconds,
                            "seconds": record.seconds, "eta": _eta(record), "windows": sent}
                if progress != last:
                    yield _event("progress", progress)
                    last = progress
                if record.status in (Status.done, Status.failed):
                    async for event in new_windows():  # the last rows, written before the status
                        yield event
                    yield _event("end", {**record.to_dict(), "summary": analyses.summary(analysis_id)})
                    return
                await asyncio.sleep(POLL)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    @app.get("/api/analyses/{analysis_id}/video")
    def video(analysis_id: str) -> FileResponse:
        record = found(analysis_id)
        return FileResponse(analyses.video(analysis_id), media_type=record.media_type)

    @app.get("/api/analyses/{analysis_id}/timeline.{suffix}")
    def timeline_file(analysis_id: str, suffix: str) -> FileResponse:
        found(analysis_id)
        try:
            path = analyses.timeline_file(analysis_id, suffix)
        except KeyError:
            raise HTTPException(404, "ask for timeline.csv, timeline.json or timeline.png") from None
        if not path.is_file():
            raise HTTPException(404, "not there yet: the analysis has not finished")
        return FileResponse(path, filename=f"timeline.{suffix}",
                            media_type={"csv": "text/csv", "json": "application/json", "png": "image/png"}[suffix])

    @app.delete("/api/analyses/{analysis_id}", status_code=204)
    def delete(analysis_id: str) -> Response:
        found(analysis_id)
        try:
            analyses.delete(analysis_id)
        except UploadError as error:
            raise HTTPException(error.status, str(error)) from None
        return Response(status_code=204)

    return app


def _host_name(header: str) -> str:
    """A Host header's name without its port: ``localhost:8000`` -> ``localhost``, ``[::1]:8000`` -> ``[::1]``."""
    return header[:header.find("]") + 1] if header.startswith("[") else header.rsplit(":", 1)[0]


def _event(kind: str, data: Any, event_id: int | None = None) -> str:
    return (f"id: {event_id}\n" if event_id is not None else "") + f"event: {kind}\ndata: {json.dumps(data)}\n\n"


def _eta(record: Any) -> float | None:
    """Seconds left at the rate so far (None before any progress)."""
    if record.status != Status.running or record.done_seconds <= 0 or not record.seconds:
        return None
    rate = record.done_seconds / max(1e-6, time.time() - record.started)
    return round(max(0.0, record.seconds - record.done_seconds) / rate, 1)


class _VideoField:
    """Multipart callbacks that send the part named ``video`` to the upload as it arrives; other parts are
    ignored, and a second video is refused."""

    def __init__(self, receiving: Any) -> None:
        self.receiving, self.name, self.error = receiving, "", None
        self.field, self.value, self.headers = b"", b"", {}
        self.current, self.seen = False, False

    def callbacks(self) -> dict[str, Any]:
        return {"on_part_begin": self._begin, "on_header_field": self._field, "on_header_value": self._value,
                "on_header_end": self._header_end, "on_headers_finished": self._headers_done,
                "on_part_data": self._data, "on_part_end": self._end}

    def _begin(self) -> None:
        self.headers, self.current = {}, False

    def _field(self, data: bytes, start: int, end: int) -> None:
        self.field += data[start:end]

    def _value(self, data: bytes, start: int, end: int) -> None:
        self.value += data[start:end]

    def _header_end(self) -> None:
        self.headers[self.field.lower()] = self.value
        self.field, self.value = b"", b""

    def _headers_done(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        if options.get(b"name") == b"video":
            if self.seen:
                self.error = UploadError("one video per upload")
            self.current = self.seen = True
            self.name = options.get(b"filename", b"video").decode("utf-8", "replace")

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self.current and self.error is None:
            try:
                self.receiving.write(data[start:end])
            except UploadError as error:
                self.error = error

    def _end(self) -> None:
        self.current = False
