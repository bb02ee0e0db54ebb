"""Files of a public GitHub repository kept in Git LFS (CREMA-D's), each checked against its LFS SHA-256.

Three documented steps, each on its own GitHub host:

1. The file list: ``GET {api}/repos/{owner}/{repo}/git/trees/{ref}?recursive=1`` (GitHub REST API, "Get a
   tree": https://docs.github.com/en/rest/git/trees): every blob's ``path``, ``size`` and git ``sha``, with
   ``truncated`` set when the list is incomplete.
2. Each file as committed, from ``{raw}/{owner}/{repo}/{ref}/{path}``: for an LFS file that is its pointer
   (https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md: ``version https://git-lfs.github.com/spec/v1``,
   ``oid sha256:<hex>``, ``size <bytes>``). Its git blob SHA-1 must be the tree's ``sha``, so a pointer cannot
   be swapped in transit. Pointers are read once and kept in the fetch folder.
3. The content of an LFS file, from ``{media}/{owner}/{repo}/{ref}/{path}`` (the link GitHub's web pages give
   for LFS files), checked against the pointer's size and SHA-256. A file not in LFS is fetched from raw and
   checked against the SHA-256 of the bytes step 2 verified.

``{api}``, ``{raw}`` and ``{media}`` are https://api.github.com, https://raw.githubusercontent.com and
https://media.githubusercontent.com/media, or, for a mirror (and the tests' loopback server), ``URL/api``,
``URL/raw`` and ``URL/media`` under one root named with ``--github-url`` or ``AVEMO_GITHUB_URL``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import quote

from avemo.fetch.http import FetchError, Remote, Retry, check_scheme, get_bytes, get_json
from avemo.files import atomic_write

GITHUB_ENV = "AVEMO_GITHUB_URL"
_POINTER = re.compile(rb"version https://git-lfs\.github\.com/spec/v1\noid sha256:([0-9a-f]{64})\nsize (\d+)\n")
POINTER_MAX = 1024  # the spec caps a pointer file below 1024 bytes


@dataclass(frozen=True)
class GitHub:
    """Where a repository's list, files and LFS contents are served."""

    api: str
    raw: str
    media: str
    named: bool  # the user named a mirror (plain http allowed)

    @classmethod
    def resolve(cls, url: str | None) -> GitHub:
        named = url or os.environ.get(GITHUB_ENV)
        if named:
            root = named.rstrip("/")
            check_scheme(root, explicit=True)
            return cls(f"{root}/api", f"{root}/raw", f"{root}/media", True)
        return cls("https://api.github.com", "https://raw.githubusercontent.com",
                   "https://media.githubusercontent.com/media", False)

    def headers(self) -> dict[str, str]:
        token = os.environ.get("GITHUB_TOKEN")  # lifts the API's 60 requests an hour; never sent to a mirror
        return {"Authorization": f"Bearer {token}"} if token and not self.named else {}


def git_blob_sha1(data: bytes) -> str:
    """The id git gives a file's bytes (what the tree lists)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def tree(hub: GitHub, repo: str, ref: str, retry: Retry = Retry()) -> list[dict]:
    """Every file (blob) of ``repo`` at ``ref``: dicts with ``path``, ``sha`` and ``size``."""
    url = f"{hub.api}/repos/{repo}/git/trees/{ref}?recursive=1"
    answer = get_json(url, retry, {"Accept": "application/vnd.github+json", **hub.headers()})
    if not isinstance(answer, dict) or not isinstance(answer.get("tree"), list):
        raise FetchError(f"{url}: no file list in the answer; is this GitHub (or a mirror of it)?")
    if answer.get("truncated"):
        raise FetchError(f"{url}: GitHub sent only part of the file list; fetch again later")
    blobs = [e for e in answer["tree"] if isinstance(e, dict) and e.get("type") == "blob"]
    for entry in blobs:
        path = str(entry.get("path", ""))
        if not path or path.startswith("/") or ".." in path.split("/") or "\\" in path:
            raise FetchError(f"{url}: a file path that is not plain ({path!r}); refused")
    return blobs


def lfs_files(hub: GitHub, repo: str, ref: str, wanted: Callable[[str], bool], index: Path,
              retry: Retry = Retry(), workers: int = 8,
              on_progress: Callable[[int, int], None] | None = None) -> list[Remote]:
    """The files of ``repo`` whose paths ``wanted`` accepts, each as a Remote named by its path with the size
    and SHA-256 its content must have. Pointers already read (kept in ``index``, by git sha) are not read
    again; ``on_progress`` hears (read, to read)."""
    blobs = [b for b in tree(hub, repo, ref, retry) if wanted(b["path"])]
    known: dict[str, dict] = {}
    if index.is_file():
        try:
            known = json.loads(index.read_text())
        except ValueError:
            known = {}  # a damaged index only costs reading the pointers again
    todo = [b for b in blobs if b["sha"] not in known]
    lock, done = threading.Lock(), [0]

    def read(blob: dict) -> None:
        url = f"{hub.raw}/{repo}/{ref}/{quote(blob['path'])}"
        data, _ = get_bytes(url, retry, limit=max(POINTER_MAX, int(blob.get("size") or 0)))
        if git_blob_sha1(data) != blob["sha"]:
            raise FetchError(f"{url}: not the file the repository lists (git sha {blob['sha'][:12]}...); fetch again "
                             "later or from another mirror")
        match = _POINTER.fullmatch(data) if len(data) < POINTER_MAX else None
        entry = ({"lfs": True, "sha256": match.group(1).decode(), "size": int(match.group(2))} if match else
                 {"lfs": False, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)})
        with lock:
            known[blob["sha"]] = entry
            done[0] += 1
            if on_progress is not None:
                on_progress(done[0], len(todo))

    try:
        with ThreadPoolExecutor(workers) as pool:
            futures = [pool.submit(read, b) for b in todo]
            try:
                for future in futures:
                    future.result()
            except BaseException:  # a failure or Ctrl-C: the thousands of reads still queued are dropped
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    finally:
        if todo:
            index.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(index, json.dumps(known).encode())  # what was read is kept, even on failure
    remotes = []
    for blob in blobs:
        entry = known[blob["sha"]]
        base = hub.media if entry["lfs"] else hub.raw
        remotes.append(Remote(blob["path"], f"{base}/{repo}/{ref}/{quote(blob['path'])}", entry["size"],
                              sha256=entry["sha256"]))
    return remotes
