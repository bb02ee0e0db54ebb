"""``avemo fetch``: a dataset's public archives into the folder ``avemo extract`` reads, checked, resumable, and
done once. See :mod:`avemo.fetch.datasets` for the sources, :mod:`avemo.fetch.http` for the downloads and
:mod:`avemo.fetch.unpack` for the unpacking."""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from avemo.fetch.datasets import Dataset, Part, is_done, target, unpacked_marker
from avemo.fetch.http import FetchError, Retry, download
from avemo.fetch.unpack import free_bytes, safe_unzip
from avemo.files import atomic_write

# Unpacked RAVDESS is about its zips' size (MP4 does not compress); allow twice the archive, at least 1 GB,
# before calling an archive a bomb.
UNPACK_FACTOR, UNPACK_FLOOR = 2.0, 1 << 30


@dataclass
class PlannedPart:
    part: Part
    done: bool  # unpacked by an earlier fetch (its marker is there)
    have: int  # bytes of it already downloaded (a stopped fetch's)

    @property
    def to_download(self) -> int:
        return 0 if self.done else max(0, (self.part.remote.size or 0) - self.have)


@dataclass
class FetchPlan:
    dataset: Dataset
    folder: Path
    parts: list[PlannedPart]
    free: int  # bytes free on the folder's disk

    @property
    def to_download(self) -> int:
        return sum(p.to_download for p in self.parts)

    keep_archives: bool = False

    @property
    def needs(self) -> int:
        """Bytes of disk the rest needs: what is left to download, and room to unpack the archives (each is
        deleted once unpacked, unless kept: then room for all of them unpacked)."""
        todo = [p.part.remote.size or 0 for p in self.parts if not p.done and p.part.unpack]
        return self.to_download + (sum(todo) if self.keep_archives else max(todo, default=0))


@dataclass
class FetchSummary:
    plan: FetchPlan
    fetched: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (file, why)
    received: int = 0  # bytes over the network


def plan(dataset: Dataset, folder: Path, keep_archives: bool = False) -> FetchPlan:
    parts = []
    for part in dataset.parts:
        path = target(folder, part)
        partial = path.with_name(path.name + ".part")
        done = is_done(folder, part)
        have = 0 if done else path.stat().st_size if path.exists() else \
            partial.stat().st_size if partial.exists() else 0
        parts.append(PlannedPart(part, done, have))
    return FetchPlan(dataset, folder, parts, free_bytes(folder), keep_archives)


def _not_a_page(part: Part, path: Path) -> None:
    """A file with no published checksum may be a host's error page saved under its name (Google Drive sends
    one when a file's daily quota is used up): refuse it."""
    with path.open("rb") as handle:
        head = handle.read(512).lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):
        path.unlink()
        raise FetchError(f"{part.remote.name}: the server sent a web page, not the file (a host's quota or sign-in "
                         "page); try later, or download it in a browser")


def run_fetch(fetch_plan: FetchPlan, retry: Retry = Retry(),
              on_file: Callable[[str, int], None] | None = None, on_bytes: Callable[[int], None] | None = None,
              on_done: Callable[[str, str], None] | None = None) -> FetchSummary:
    """Download, check (and unpack) every part not done yet, ``dataset.workers`` at a time. A part that fails
    is named in the summary and the others go on; a full disk stops everything (what arrived is kept).
    ``on_file`` hears each file (name, bytes to fetch), ``on_bytes`` the bytes as they come, ``on_done`` each
    file's outcome ("" or why). The callbacks may be called from worker threads."""
    folder = fetch_plan.folder
    if fetch_plan.needs > fetch_plan.free:
        raise FetchError(f"{folder}: {fetch_plan.needs / 1e9:.1f} GB needed (the downloads left and room to unpack "
                         f"the largest), {fetch_plan.free / 1e9:.1f} GB free; free space or choose another folder")
    summary = FetchSummary(fetch_plan)
    (folder / ".avemo-fetch").mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()

    def one(planned: PlannedPart) -> None:
        part, path = planned.part, target(folder, planned.part)
        if on_file is not None:
            on_file(part.remote.name, planned.to_download)
        received = 0
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not (path.exists() and not part.remote.check(path)):
                received = download(part.remote, path, on_bytes, retry)
                if not (part.remote.md5 or part.remote.sha256):
                    _not_a_page(part, path)
            if part.unpack:
                size = part.remote.size or path.stat().st_size
                safe_unzip(path, folder / part.into, max(UNPACK_FLOOR, int(UNPACK_FACTOR * size)))
        except FetchError as error:
            with lock:
                summary.failed.append((part.remote.name, str(error)))
            if on_done is not None:
                on_done(part.remote.name, str(error))
            return
        if part.unpack:
            atomic_write(unpacked_marker(folder, part), f"md5 {part.remote.md5}\n".encode())
            if not fetch_plan.keep_archives:
                path.unlink(missing_ok=True)
        with lock:
            summary.received += received
            summary.fetched.append(part.remote.name)
        if on_done is not None:
            on_done(part.remote.name, "")

    todo = [p for p in fetch_plan.parts if not p.done]
    if fetch_plan.dataset.workers <= 1:
        for planned in todo:
            one(planned)
    else:
        with ThreadPoolExecutor(fetch_plan.dataset.workers) as pool:
            futures = [pool.submit(one, planned) for planned in todo]
            try:  # a full disk (or Ctrl-C) stops the rest at once; what arrived is kept
                wait(futures, return_when=FIRST_EXCEPTION)
                for future in futures:
                    if future.done() and not future.cancelled() and future.exception() is not None:
                        raise future.exception()
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    return summary


class Silent:
    """What :func:`fetch_all` tells as it goes (the CLI shows it); this one tells nothing."""

    def listing(self, what: str, done: int, total: int) -> None: ...

    def plan(self, todo: FetchPlan, dry_run: bool) -> None: ...

    def fetching(self, todo: FetchPlan) -> Any:
        return contextlib.nullcontext(self)

    on_file = on_bytes = on_done = None

    def summary(self, summary: FetchSummary, next_step: str) -> None: ...


def source_dataset(source: str, folder: Path, *, speech: bool = True, song: bool = True, landmarks: bool = False,
                   wav: bool = True, mp3: bool = False, video: str = "hara2017", audio: str = "imagenet",
                   zenodo_url: str | None = None, github_url: str | None = None, gdrive_url: str | None = None,
                   torchvision_url: str | None = None, retry: Retry = Retry(), show: Any = None) -> Dataset:
    """What ``source`` (ravdess, cremad, weights) publishes, as asked for, listed from its servers."""
    from avemo.fetch import datasets
    from avemo.fetch.gdrive import gdrive_base
    from avemo.fetch.github import GitHub

    show = show or Silent()
    if source == "ravdess":
        base, _ = datasets.zenodo_base(zenodo_url)
        return datasets.ravdess(base, speech=speech, song=song, landmarks=landmarks, retry=retry)
    if source == "cremad":
        return datasets.cremad(GitHub.resolve(github_url), folder, wav=wav, mp3=mp3, retry=retry,
                               on_progress=lambda done, total: show.listing("LFS pointers", done, total))
    if source == "weights":
        return datasets.weights(video, audio, gdrive_base(gdrive_url), torchvision_url, have=folder, retry=retry)
    raise FetchError(f"{source}: choose ravdess, cremad or weights")


def fetch_all(source: str, folder: Path, *, dry_run: bool = False, keep_archives: bool = False,
              retry: Retry = Retry(), show: Any = None, next_step: str | None = None,
              **options: Any) -> FetchSummary | None:
    """List, plan and fetch ``source`` into ``folder`` (options as :func:`source_dataset`); None when there
    was nothing to do or ``dry_run``. Raises FetchError before any download if the disk is too small.
    ``next_step`` is the command the summary suggests (default: the extraction of a dataset)."""
    show = show or Silent()
    dataset = source_dataset(source, folder, retry=retry, show=show, **options)
    todo = plan(dataset, folder, keep_archives)
    show.plan(todo, dry_run)
    if dry_run or all(p.done for p in todo.parts):
        return None
    with show.fetching(todo) as bar:
        summary = run_fetch(todo, retry, on_file=bar.on_file, on_bytes=bar.on_bytes, on_done=bar.on_done)
    if next_step is None:
        next_step = "" if source == "weights" else f"avemo extract {folder} --cache CACHE" + (
            " --dataset cremad" if source == "cremad" else "")
    show.summary(summary, next_step)
    return summary


def sha256_lines(fetch_plan: FetchPlan) -> list[str]:
    """``<sha256>  <path>`` for every file of a plan that is there (sha256sum's format, to compare by eye)."""
    from avemo.engines.weights import sha256_file

    lines = []
    for planned in fetch_plan.parts:
        path = target(fetch_plan.folder, planned.part)
        if path.is_file():
            lines.append(f"{sha256_file(path)}  {path}")
    return lines


__all__ = ["FetchError", "FetchPlan", "FetchSummary", "Retry", "fetch_all", "plan", "run_fetch", "source_dataset"]
