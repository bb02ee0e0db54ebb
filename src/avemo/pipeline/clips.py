"""The clip record every stage after discovery speaks, and the emotion vocabulary."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from avemo.emotions import EMOTIONS

@dataclass(frozen=True)
class ClipRecord:
    """One audio-visual clip and what its file name says about it.

    ``clip_id`` is unique inside a dataset and names the cache entry. Fields a dataset does not define
    (CREMA-D has no statement repetition) are ``None``.
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

    @property
    def label(self) -> int:
        return EMOTIONS.index(self.emotion)

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
