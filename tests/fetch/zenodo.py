"""A loopback server that answers as Zenodo does for a record (https://developers.zenodo.org): the records API
lists each file's name (``key``), ``size`` and ``checksum`` (``md5:<hex>``), and
``/records/<id>/files/<name>?download=1`` serves it, honouring HTTP Range (206 Partial Content). Faults can be
injected per file (tests/fetch/hosts.py: a connection dropped after some bytes, a byte flipped, server errors),
and the listing can stop half-way."""

from __future__ import annotations

import hashlib
import json

from tests.fetch.hosts import Faults, Host


class Zenodo(Host):
    def __init__(self, record: str, files: dict[str, bytes], legacy_names: bool = False) -> None:
        super().__init__()
        self.record, self.files, self.legacy_names = record, files, legacy_names
        self.faults.update({name: Faults() for name in files})
        self.served.update({name: 0 for name in files})
        self.api_calls = 0
        self.api_drops = 0  # the next N answers of the records API stop half-way

    def route(self, path, query, handler):
        if path == f"/api/records/{self.record}":
            self.api_calls += 1
            entries = [{("filename" if self.legacy_names else "key"): name, "size": len(data),
                        "checksum": (hashlib.md5(data).hexdigest() if self.legacy_names
                                     else "md5:" + hashlib.md5(data).hexdigest())}
                       for name, data in self.files.items()]
            body = json.dumps({"id": int(self.record), "files": entries}).encode()
            if self.api_drops:
                self.api_drops -= 1
                handler.send_response(200)
                handler.send_header("Content-Type", "application/json")
                handler.send_header("Content-Length", str(len(body)))
                handler.end_headers()
                handler.wfile.write(body[:len(body) // 2])
                handler.wfile.flush()
                handler.close_connection = True
                handler.connection.shutdown(2)
                return
            self.answer(handler, body, "application/json")
            return
        prefix = f"/records/{self.record}/files/"
        name = path[len(prefix):] if path.startswith(prefix) else None
        if name not in self.files:
            handler.send_error(404)
            return
        self.serve_file(handler, name, self.files[name])
