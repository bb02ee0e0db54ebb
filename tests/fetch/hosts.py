"""Loopback servers that answer as GitHub (for a Git LFS repository) and Google Drive (for a shared folder) do,
as :mod:`avemo.fetch.github` and :mod:`avemo.fetch.gdrive` cite them, plus a plain file host (torchvision's
download.pytorch.org). Files are served with HTTP Range; faults can be injected per file."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse


@dataclass
class Faults:
    drop_after: list[int] = field(default_factory=list)  # per request, in order: close after this many bytes
    corrupt: int = 0  # the next N full answers have one byte flipped
    stall: list[tuple[int, float]] = field(default_factory=list)  # per request: (bytes, seconds) to wait after them
    errors: int = 0  # the next N requests get 503


def pointer(data: bytes) -> bytes:
    """A Git LFS pointer file (https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md)."""
    return (f"version https://git-lfs.github.com/spec/v1\noid sha256:{hashlib.sha256(data).hexdigest()}\n"
            f"size {len(data)}\n").encode()


def zip_of(files: dict[str, bytes]) -> bytes:
    """A zip archive (stored, as RAVDESS's are) of ``files``, by name inside it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Host:
    """A threaded loopback server; subclasses answer ``route(path, query, handler)``."""

    def __init__(self) -> None:
        self.served: dict[str, int] = {}  # bytes of content sent per file
        self.requests: list[str] = []
        self.faults: dict[str, Faults] = {}
        self.ranges: list[tuple[str, str]] = []  # (file, its Range header or "")
        self.lock = threading.Lock()
        host = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                url = urlparse(self.path)
                with host.lock:
                    host.requests.append(url.path)
                host.route(unquote(url.path), parse_qs(url.query), self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def route(self, path: str, query: dict, handler: BaseHTTPRequestHandler) -> None:
        raise NotImplementedError

    @staticmethod
    def answer(handler: BaseHTTPRequestHandler, body: bytes, content_type: str, headers: dict | None = None) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(body)

    def serve_file(self, handler: BaseHTTPRequestHandler, name: str, data: bytes, headers: dict | None = None) -> None:
        """``data`` with HTTP Range (206), and the faults set for ``name``."""
        faults = self.faults.setdefault(name, Faults())
        if faults.errors:
            faults.errors -= 1
            handler.send_error(503, "Service Unavailable")
            return
        header = handler.headers.get("Range", "")
        with self.lock:
            self.ranges.append((name, header))
        start, end = 0, len(data) - 1
        if header:
            first, _, last = header.split("=")[1].partition("-")
            start, end = int(first), (int(last) if last else len(data) - 1)
            if start >= len(data):
                handler.send_error(416)
                return
        body = bytearray(data[start:end + 1])
        if faults.corrupt and not header:
            faults.corrupt -= 1
            body[len(body) // 2] ^= 0xFF
        handler.send_response(206 if header else 200)
        if header:
            handler.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("Accept-Ranges", "bytes")
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        cut = faults.drop_after.pop(0) if faults.drop_after else None
        sent = body if cut is None else body[:cut]
        if faults.stall:  # send some, then go quiet longer than the client waits
            first, seconds = faults.stall.pop(0)
            handler.wfile.write(sent[:first])
            handler.wfile.flush()
            with self.lock:
                self.served[name] = self.served.get(name, 0) + first
            time.sleep(seconds)
            handler.close_connection = True
            return
        handler.wfile.write(sent)
        with self.lock:
            self.served[name] = self.served.get(name, 0) + len(sent)
        if cut is not None:
            handler.wfile.flush()
            handler.close_connection = True
            handler.connection.shutdown(2)


class GitHubLFS(Host):
    """``/api/repos/<repo>/git/trees/<ref>?recursive=1``, ``/raw/<repo>/<ref>/<path>`` (pointers, or plain files)
    and ``/media/<repo>/<ref>/<path>`` (LFS contents), under one root as ``--github-url`` expects."""

    def __init__(self, repo: str, ref: str, files: dict[str, bytes], plain: set[str] = frozenset()) -> None:
        super().__init__()
        self.repo, self.ref, self.files, self.plain = repo, ref, files, set(plain)
        self.swapped: set[str] = set()  # paths whose raw file is not the one the tree lists

    def committed(self, path: str) -> bytes:
        return self.files[path] if path in self.plain else pointer(self.files[path])

    def route(self, path, query, handler):
        if path == f"/api/repos/{self.repo}/git/trees/{self.ref}" and query.get("recursive") == ["1"]:
            tree = [{"path": p, "mode": "100644", "type": "blob", "sha": git_sha1(self.committed(p)),
                     "size": len(self.committed(p))} for p in sorted(self.files)]
            folders = sorted({p.split("/")[0] for p in self.files if "/" in p})
            tree += [{"path": f, "mode": "040000", "type": "tree", "sha": "0" * 40} for f in folders]
            self.answer(handler, json.dumps({"sha": "1" * 40, "tree": tree, "truncated": False}).encode(),
                        "application/json")
            return
        for kind in ("raw", "media"):
            prefix = f"/{kind}/{self.repo}/{self.ref}/"
            if path.startswith(prefix) and path[len(prefix):] in self.files:
                name = path[len(prefix):]
                if kind == "raw":
                    data = self.committed(name)
                    if name in self.swapped:
                        data = pointer(b"something else")
                    self.answer(handler, data, "text/plain")
                    if name in self.plain:
                        with self.lock:
                            self.served[name] = self.served.get(name, 0) + len(data)
                elif name not in self.plain:
                    self.serve_file(handler, name, self.files[name])
                else:
                    handler.send_error(404)
                return
        handler.send_error(404)


class GoogleDrive(Host):
    """``/drive/folders/<id>`` (the listing in ``window['_DRIVE_ivd']``), ``/uc?export=download&id=<id>`` (the
    file, or for files over ``large`` bytes the virus-scan page with its download form) and ``/download?...``
    (the form's target, like drive.usercontent.google.com/download, which needs its ``confirm`` and ``uuid``)."""

    def __init__(self, folders: dict[str, dict[str, bytes]], large: int = 1000, quota_exceeded: bool = False) -> None:
        super().__init__()
        self.folders, self.large, self.quota_exceeded = folders, large, quota_exceeded
        self.ids = {f"id-{folder}-{i}": (name, data) for folder, files in folders.items()
                    for i, (name, data) in enumerate(files.items())}
        self.uuids: set[str] = set()

    def route(self, path, query, handler):
        if path.startswith("/drive/folders/") and path.split("/")[-1] in self.folders:
            folder = path.split("/")[-1]
            entries = [[fid, [folder], name, "application/octet-stream"] for fid, (name, _) in self.ids.items()
                       if fid.startswith(f"id-{folder}-")]
            entries.append([f"sub-{folder}", [folder], "a sub-folder", "application/vnd.google-apps.folder"])
            data = json.dumps([entries, None]).replace("\\", "\\\\").replace('"', "\\x22")
            page = (f"<html><head><title>weights - Google Drive</title></head><body><script>window['_DRIVE_ivd'] = "
                    f"'{data}';if (window['_DRIVE_ivdc']) {{window['_DRIVE_ivdc']();}}</script></body></html>")
            self.answer(handler, page.encode(), "text/html; charset=utf-8")
            return
        fid = (query.get("id") or [""])[0]
        if path == "/uc" and fid in self.ids:
            name, data = self.ids[fid]
            if self.quota_exceeded:
                page = ('<html><body><p class="uc-error-caption">Sorry, you can\'t view or download this file at '
                        'this time.</p><p class="uc-error-subcaption">Too many users have viewed or downloaded this '
                        'file recently.</p></body></html>')
                self.answer(handler, page.encode(), "text/html; charset=utf-8")
            elif len(data) <= self.large:
                self.serve_file(handler, name, data, {"Content-Disposition": f'attachment; filename="{name}"'})
            else:
                token = str(uuid.uuid4())
                self.uuids.add(token)
                page = (f'<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>'
                        f'<p>Google Drive can&#39;t scan this file for viruses.</p>'
                        f'<form id="download-form" action="{self.url}/download" method="get">'
                        f'<input type="submit" id="uc-download-link" value="Download anyway"/>'
                        f'<input type="hidden" name="id" value="{fid}"><input type="hidden" name="export" '
                        f'value="download"><input type="hidden" name="confirm" value="t"><input type="hidden" '
                        f'name="uuid" value="{token}"></form></body></html>')
                self.answer(handler, page.encode(), "text/html; charset=utf-8")
            return
        if path == "/download" and fid in self.ids and query.get("confirm") == ["t"] and \
                (query.get("uuid") or [""])[0] in self.uuids:
            name, data = self.ids[fid]
            self.serve_file(handler, name, data, {"Content-Disposition": f'attachment; filename="{name}"'})
            return
        handler.send_error(404)


class Files(Host):
    """A plain file host: ``/<name>``."""

    def __init__(self, files: dict[str, bytes]) -> None:
        super().__init__()
        self.files = files

    def route(self, path, query, handler):
        name = path.lstrip("/")
        if name in self.files:
            self.serve_file(handler, name, self.files[name])
        else:
            handler.send_error(404)
