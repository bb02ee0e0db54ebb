"""A loopback server that answers as Zenodo does for a record (https://developers.zenodo.org): the records API
lists each file's name (``key``), ``size`` and ``checksum`` (``md5:<hex>``), and
``/records/<id>/files/<name>?download=1`` serves it, honouring HTTP Range (206 Partial Content). Faults can be
injected per file: a connection dropped after some bytes, a byte flipped, server errors."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse


@dataclass
class Faults:
    drop_after: list[int] = field(default_factory=list)  # per request, in order: close after this many bytes
    corrupt: int = 0  # the next N full answers have one byte flipped
    errors: int = 0  # the next N requests get 503


class Zenodo:
    def __init__(self, record: str, files: dict[str, bytes], legacy_names: bool = False) -> None:
        self.record, self.files, self.legacy_names = record, files, legacy_names
        self.faults: dict[str, Faults] = {name: Faults() for name in files}
        self.served: dict[str, int] = {name: 0 for name in files}  # bytes sent per file
        self.ranges: list[tuple[str, str]] = []  # (file, Range header or "")
        self.api_calls = 0
        self.api_drops = 0  # the next N answers of the records API stop half-way
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                path = urlparse(self.path).path
                if path == f"/api/records/{server.record}":
                    server.api_calls += 1
                    entries = [{("filename" if server.legacy_names else "key"): name, "size": len(data),
                                "checksum": (hashlib.md5(data).hexdigest() if server.legacy_names
                                             else "md5:" + hashlib.md5(data).hexdigest())}
                               for name, data in server.files.items()]
                    body = json.dumps({"id": int(server.record), "files": entries}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if server.api_drops:
                        server.api_drops -= 1
                        self.wfile.write(body[:len(body) // 2])
                        self.wfile.flush()
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    self.wfile.write(body)
                    return
                prefix = f"/records/{server.record}/files/"
                name = path[len(prefix):] if path.startswith(prefix) else None
                if name not in server.files:
                    self.send_error(404)
                    return
                faults = server.faults[name]
                if faults.errors:
                    faults.errors -= 1
                    self.send_error(503, "Service Unavailable")
                    return
                data = server.files[name]
                header = self.headers.get("Range", "")
                server.ranges.append((name, header))
                start = int(header.split("=")[1].split("-")[0]) if header else 0
                if start >= len(data):
                    self.send_error(416)
                    return
                body = bytearray(data[start:])
                if faults.corrupt and not header:
                    faults.corrupt -= 1
                    body[len(body) // 2] ^= 0xFF
                self.send_response(206 if header else 200)
                if header:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                cut = faults.drop_after.pop(0) if faults.drop_after else None
                sent = body if cut is None else body[:cut]
                self.wfile.write(sent)
                server.served[name] += len(sent)
                if cut is not None:
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Zenodo:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
