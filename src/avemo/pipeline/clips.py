"""The clip record every stage after discovery speaks."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ClipRecord:
    """One audio-visual clip and what its file name (or a manifest) says about it.

    ``clip_id`` is unique inside a dataset and names the cache entry. ``emotion`` is the clip's class label:
    an emotion for RAVDESS and CREMA-D, any string for a user's own data. ``actor`` numbers the speaker, whose
    own name (when it is not a number) is in ``speaker``. Fields a dataset does not define (CREMA-D has no
    statement repetition) are ``None``.
    """

    clip_id: str
    path: Path
    dataset: str
    actor: int
    gender: str
    emotion: str
    intensity: str | None = None
    vocal_channel: str | None = None
    statement: str | None = None
    repetition: int | None = None
    audio_path: Path | None = None  # a separate soundtrack (CREMA-D WAV) when the video has none
    speaker: str | None = None  # the speaker as a user's dataset names them; None where unknown
    fold: int | None = None  # an explicit fold from a manifest
    meta: dict[str, str] = field(default_factory=dict)  # a manifest's extra columns

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path)
        data["audio_path"] = None if self.audio_path is None else str(self.audio_path)
        return data


@dataclass(frozen=True)
class Skipped:
    """A file discovery or extraction passed over, and why (one line a user can act on)."""

    path: Path
    reason: str
    detail: str = ""

    def line(self) -> str:
        return f"{self.path}: {self.reason}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class Discovery:
    """What a dataset adapter found under a folder."""

    clips: list[ClipRecord]
    skipped: list[Skipped]

    def skipped_by_reason(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for item in self.skipped:
            counts[item.reason] = counts.get(item.reason, 0) + 1
        return counts


VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".flv", ".mpg", ".mpeg", ".wmv")


def clip_id_of(relative: Path) -> str:
    """A cache entry name from a path below the dataset folder: unique where the paths are, one file name."""
    stem = relative.with_suffix("").as_posix()
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stem.replace("/", "__"))


def number_speakers(speakers: list[str | None]) -> list[int]:
    """Actor numbers for speaker names: the numbers themselves when every name is one (``"03"`` -> 3), else
    1, 2, ... in sorted order of the names; a clip without a speaker is a speaker of its own."""
    named = [s for s in speakers if s is not None]
    if named and all(s.isdigit() for s in named):
        numbers = {s: int(s) for s in named}
    else:
        numbers = {s: k for k, s in enumerate(sorted(set(named)), start=1)}
    next_free = max(numbers.values(), default=0) + 1
    actors = []
    for s in speakers:
        if s is None:
            actors.append(next_free)
            next_free += 1
        else:
            actors.append(numbers[s])
    return actors
