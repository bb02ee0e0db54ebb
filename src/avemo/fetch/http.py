"""Downloads that survive what long downloads meet: resumed where they stopped (HTTP Range) after Ctrl-C, a
killed process or a dropped connection; retried with back-off on server errors and timeouts; checked against
the checksum the source publishes, fetched once more if they fail it; written whole or not at all.

Written on the standard library (urllib, TLS verified by default) rather than pooch: pooch downloads every
attempt from the first byte into a new temporary file (``HTTPDownloader`` opens its output ``"w+b"``), which
cannot resume the multi-gigabyte archives of the datasets, and it needs requests besides.
"""

from __future__ import annotations

import hashlib
import http.client
import http.cookiejar
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from avemo.errors import AvemoError
from avemo.files import FULL, DiskFullError

CHUNK = 1 << 20
USER_AGENT = "avemo (https://github.com/avemo; dataset fetcher)"


class FetchError(AvemoError):
    """A download that cannot be done; the message names the file or source and what to do."""


@dataclass(frozen=True)
class Remote:
    """A file a source publishes: its name, where it is, and what it must be."""

    name: str
    url: str
    size: int | None = None
    md5: str | None = None
    sha256: str | None = None

    def check(self, path: Path) -> str:
        """'' when ``path`` is this file, else what differs."""
        size = path.stat().st_size
        if self.size is not None and size != self.size:
            return f"{size} bytes, not the {self.size} published"
        for algorithm, expected in (("md5", self.md5), ("sha256", self.sha256)):
            if expected:
                digest = hashlib.new(algorithm)
                with path.open("rb") as handle:
                    while block := handle.read(CHUNK):
                        digest.update(block)
                # a prefix is enough where that is what the source publishes (torchvision's file names)
                if not digest.hexdigest().startswith(expected.lower()):
                    return f"{algorithm} {digest.hexdigest()[:12]}..., not the {expected[:12]}... published"
        return ""


@dataclass(frozen=True)
class Retry:
    """How hard to try: attempts per download, the first pause (doubled each time) and the socket timeout."""

    attempts: int = 5
    pause: float = 2.0
    timeout: float = 60.0


def check_scheme(url: str, explicit: bool) -> None:
    """https only, unless the user named the server (a mirror, or the tests' loopback server)."""
    if url.startswith("https://") or (explicit and url.startswith("http://")):
        return
    raise FetchError(f"{url}: only https is fetched from a default source; name a plain-http mirror yourself "
                     "(the option or the environment variable) to use one")


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Redirects are followed, but never from https to plain http (Hara's files have no checksum to catch a
    swap), and credentials (GITHUB_TOKEN) stay with the host they were meant for."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is None:
            return None
        if req.full_url.startswith("https://") and not new.full_url.startswith("https://"):
            raise FetchError(f"{req.full_url}: the server sends it on to plain http ({newurl}); refused: fetch it "
                             "from a mirror you trust")
        if urllib.parse.urlsplit(new.full_url).netloc != urllib.parse.urlsplit(req.full_url).netloc:
            new.remove_header("Authorization")
        return new


# Cookies are kept for the process: Google Drive's confirmation step of large files set one in older forms.
_OPENER = urllib.request.build_opener(_Redirects(), urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))


def _open(url: str, headers: dict[str, str], timeout: float) -> Any:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **headers})
    return _OPENER.open(request, timeout=timeout)  # noqa: S310 - the scheme is checked by the caller


def get_bytes(url: str, retry: Retry = Retry(), headers: dict[str, str] | None = None,
              limit: int = 64 << 20) -> tuple[bytes, dict[str, str]]:
    """A small document (listings, pointers, web pages) and its headers, retried like a download."""
    last = ""
    for attempt in range(retry.attempts):
        try:
            with _open(url, headers or {}, retry.timeout) as response:
                body = response.read(limit + 1)
                if len(body) > limit:
                    raise FetchError(f"{url}: the answer is larger than {limit >> 20} MB; is this the right server?")
                length = response.headers.get("Content-Length")
                if length is not None and length.isdigit() and len(body) < int(length):
                    raise http.client.IncompleteRead(body, int(length) - len(body))  # read(n) does not raise it
                return body, {k.lower(): v for k, v in response.headers.items()}
        except urllib.error.HTTPError as error:
            if error.code < 500 and error.code != 429:
                hint = ("GitHub's API answers 60 requests an hour without a token: wait, or set GITHUB_TOKEN"
                        if error.code == 403 and "api" in url else "check the address (or the mirror)")
                raise FetchError(f"{url}: the server answered {error.code} {error.reason}; {hint}") from None
            last = f"{error.code} {error.reason}"
        except (urllib.error.URLError, socket.timeout, ConnectionError, http.client.HTTPException) as error:
            last = str(getattr(error, "reason", error)) or type(error).__name__
        if attempt + 1 < retry.attempts:
            time.sleep(retry.pause * 2 ** attempt)
    raise FetchError(f"{url}: no answer after {retry.attempts} tries ({last}); check the connection and run the "
                     "same command again")


def get_json(url: str, retry: Retry = Retry(), headers: dict[str, str] | None = None) -> Any:
    """A JSON document, retried like a download."""
    import json

    body, _ = get_bytes(url, retry, {"Accept": "application/json", **(headers or {})})
    try:
        return json.loads(body)
    except ValueError:
        raise FetchError(f"{url}: the answer is not JSON; is this the right server?") from None


def download(remote: Remote, target: Path, on_bytes: Callable[[int], None] | None = None,
             retry: Retry = Retry()) -> int:
    """Fetch ``remote`` into ``target`` (through ``target.part``, resumed if it is there); returns the bytes
    received. A file that fails its checksum is fetched once more from the start, then refused."""
    received = 0
    for trial in range(2):
        received += _fetch(remote, target.with_name(target.name + ".part"), on_bytes, retry)
        part = target.with_name(target.name + ".part")
        wrong = remote.check(part)
        if not wrong:
            os.replace(part, target)
            return received
        part.unlink()
        if trial == 1:
            raise FetchError(f"{remote.name}: {wrong}, twice; the source or a proxy changes it: try again later "
                             "or from a mirror")
    raise AssertionError("unreachable")


def _fetch(remote: Remote, part: Path, on_bytes: Callable[[int], None] | None, retry: Retry) -> int:
    """Bytes from where ``part`` stops to the end, with retries (counted afresh whenever bytes arrived); returns
    the bytes received."""
    received, last, attempt = 0, "", -1
    size = remote.size  # where the source publishes none, the server's answer tells
    while (attempt := attempt + 1) < retry.attempts:
        before = received
        have = part.stat().st_size if part.exists() else 0
        if size is not None and have >= size:
            return received
        try:
            with _open(remote.url, {"Range": f"bytes={have}-"} if have else {}, retry.timeout) as response:
                if have and response.status != 206:  # the server ignored the range: start again
                    have = 0
                elif have and _range_start(response.headers.get("Content-Range")) != have:
                    part.unlink()  # another range than asked for: nothing of it can be placed
                    last = "the server answered another range than asked for"
                    continue
                size = size if size is not None else _total(response, have)
                with part.open("r+b" if have else "wb") as out:
                    out.seek(have)
                    out.truncate()
                    # read1: what has arrived, at once; read(n) waits for n bytes and loses them to a timeout
                    while block := response.read1(CHUNK):
                        out.write(block)
                        received += len(block)
                        if on_bytes is not None:
                            on_bytes(len(block))
                owed = response.length  # bytes the server announced and did not send (None: it did not say)
            if not owed and (size is None or part.stat().st_size >= size):
                return received
            last = "the connection closed early"
            if received > before:
                attempt = -1  # progress: the next drop starts the count again
        except urllib.error.HTTPError as error:
            if error.code == 416 and have:  # nothing after what we have: the file is whole (or longer)
                return received
            if error.code < 500 and error.code not in (408, 429):
                raise FetchError(f"{remote.name}: the server answered {error.code} {error.reason} for {remote.url}; "
                                 "check the address (or the mirror)") from None
            last = f"{error.code} {error.reason}"
        except (urllib.error.URLError, socket.timeout, ConnectionError, TimeoutError,
                http.client.HTTPException) as error:  # IncompleteRead: the connection dropped inside a body
            last = str(getattr(error, "reason", error)) or type(error).__name__
            if received > before:
                attempt = -1
        except OSError as error:
            if error.errno in FULL:  # what arrived stays: the same command goes on once there is space
                raise DiskFullError(error.errno, f"{FULL[error.errno]} while writing it; free space and run the same "
                                    "command again (what arrived is kept)", str(part)) from None
            last = str(error)
        if attempt + 1 < retry.attempts:
            time.sleep(retry.pause * 2 ** max(attempt, 0))
    raise FetchError(f"{remote.name}: stopped after {retry.attempts} tries ({last}); what arrived is kept in {part}: "
                     "run the same command again to go on")


def _range_start(header: str | None) -> int | None:
    """The first byte of a ``Content-Range: bytes a-b/n`` answer."""
    try:
        return int(str(header).split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _total(response: Any, have: int) -> int | None:
    """The whole file's size as the answer states it: Content-Range's total, or what came before plus
    Content-Length."""
    content_range = response.headers.get("Content-Range") or ""
    total = content_range.rpartition("/")[2]
    if total.isdigit():
        return int(total)
    length = response.headers.get("Content-Length")
    return have + int(length) if length and length.isdigit() else None
