"""``avemo fetch``: a dataset's public archives into the folder ``avemo extract`` reads, checked, resumable, and
done once. See :mod:`avemo.fetch.datasets` for the sources, :mod:`avemo.fetch.http` for the downloads and
:mod:`avemo.fetch.unpack` for the unpacking."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from avemo.fetch.datasets import Dataset, Part, unpacked_marker
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
        """Bytes of disk the rest needs: what is left to download, and room to unpack it (each archive is
        deleted once unpacked, unless kept: then room for all of them unpacked)."""
        todo = [p.part.remote.size or 0 for p in self.parts if not p.done]
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
        archive = _archive(folder, part)
        partial = archive.with_name(archive.name + ".part")
        have = archive.stat().st_size if archive.exists() else partial.stat().st_size if partial.exists() else 0
        parts.append(PlannedPart(part, unpacked_marker(folder, part).is_file(), have))
    return FetchPlan(dataset, folder, parts, free_bytes(folder), keep_archives)


def _archive(folder: Path, part: Part) -> Path:
    return folder / ".avemo-fetch" / part.remote.name


def run_fetch(fetch_plan: FetchPlan, retry: Retry = Retry(),
              on_file: Callable[[str, int], None] | None = None, on_bytes: Callable[[int], None] | None = None,
              on_done: Callable[[str, str], None] | None = None) -> FetchSummary:
    """Download, check and unpack every part not done yet. A part that fails is named in the summary and the
    others go on; a full disk stops everything (what arrived is kept). ``on_file`` hears each file (name,
    bytes to fetch), ``on_bytes`` the bytes as they come, ``on_done`` each file's outcome ("" or why)."""
    folder = fetch_plan.folder
    if fetch_plan.needs > fetch_plan.free:
        raise FetchError(f"{folder}: {fetch_plan.needs / 1e9:.1f} GB needed (the downloads left and room to unpack "
                         f"the largest), {fetch_plan.free / 1e9:.1f} GB free; free space or choose another folder")
    summary = FetchSummary(fetch_plan)
    (folder / ".avemo-fetch").mkdir(parents=True, exist_ok=True)
    for planned in fetch_plan.parts:
        if planned.done:
            continue
        part, archive = planned.part, _archive(folder, planned.part)
        if on_file is not None:
            on_file(part.remote.name, planned.to_download)
        try:
            if not (archive.exists() and not part.remote.check(archive)):
                summary.received += download(part.remote, archive, on_bytes, retry)
            size = part.remote.size or archive.stat().st_size
            safe_unzip(archive, folder / part.into, max(UNPACK_FLOOR, int(UNPACK_FACTOR * size)))
        except FetchError as error:
            summary.failed.append((part.remote.name, str(error)))
            if on_done is not None:
                on_done(part.remote.name, str(error))
            continue
        atomic_write(unpacked_marker(folder, part), f"md5 {part.remote.md5}\n".encode())
        if not fetch_plan.keep_archives:
            archive.unlink(missing_ok=True)
        summary.fetched.append(part.remote.name)
        if on_done is not None:
            on_done(part.remote.name, "")
    return summary


__all__ = ["FetchError", "FetchPlan", "FetchSummary", "Retry", "plan", "run_fetch"]
