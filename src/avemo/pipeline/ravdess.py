"""RAVDESS file names (``MM-VV-EE-II-SS-RR-AA.mp4``) and discovery of its audio-visual clips."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from avemo.emotions import EMOTIONS
from avemo.pipeline.clips import ClipRecord, Discovery, Skipped

MODALITIES = {1: "audio-video", 2: "video-only", 3: "audio-only"}
VOCAL_CHANNELS = {1: "speech", 2: "song"}
INTENSITIES = {1: "normal", 2: "strong"}
STATEMENTS = {1: "Kids are talking by the door", 2: "Dogs are sitting by the door"}
MEDIA_SUFFIXES = {".mp4", ".wav", ".avi", ".mov", ".mkv"}


class InvalidName(ValueError):
    """A file name that is not a valid RAVDESS name; the message says which part is wrong."""


@dataclass(frozen=True)
class RavdessName:
    modality: int
    vocal_channel: int
    emotion: int
    intensity: int
    statement: int
    repetition: int
    actor: int

    @property
    def gender(self) -> str:
        return "male" if self.actor % 2 == 1 else "female"

    def stem(self) -> str:
        parts = (self.modality, self.vocal_channel, self.emotion, self.intensity, self.statement,
                 self.repetition, self.actor)
        return "-".join(f"{p:02d}" for p in parts)


def parse_name(stem: str) -> RavdessName:
    """Parse and validate a RAVDESS file stem; raise ``InvalidName`` naming the faulty part."""
    parts = stem.split("-")
    if len(parts) != 7 or not all(len(p) == 2 and p.isdigit() for p in parts):
        raise InvalidName("expected 7 two-digit fields MM-VV-EE-II-SS-RR-AA")
    mod, voc, emo, inten, stmt, rep, actor = (int(p) for p in parts)
    checks = [
        (mod in MODALITIES, f"modality {mod:02d} not in 01-03"),
        (voc in VOCAL_CHANNELS, f"vocal channel {voc:02d} not in 01-02"),
        (1 <= emo <= len(EMOTIONS), f"emotion {emo:02d} not in 01-08"),
        (inten in INTENSITIES, f"intensity {inten:02d} not in 01-02"),
        (not (emo == 1 and inten == 2), "neutral (01) has no strong intensity (02)"),
        (stmt in STATEMENTS, f"statement {stmt:02d} not in 01-02"),
        (rep in (1, 2), f"repetition {rep:02d} not in 01-02"),
        (1 <= actor <= 24, f"actor {actor:02d} not in 01-24"),
    ]
    for ok, message in checks:
        if not ok:
            raise InvalidName(message)
    return RavdessName(mod, voc, emo, inten, stmt, rep, actor)


def record_from_name(path: Path, name: RavdessName) -> ClipRecord:
    return ClipRecord(
        clip_id=name.stem(),
        path=path,
        dataset="ravdess",
        actor=name.actor,
        gender=name.gender,
        emotion=EMOTIONS[name.emotion - 1],
        intensity=INTENSITIES[name.intensity],
        vocal_channel=VOCAL_CHANNELS[name.vocal_channel],
        statement=f"{name.statement:02d}",
        repetition=name.repetition,
    )


def discover(root: Path, vocal_channels: tuple[str, ...] = ("speech", "song")) -> Discovery:
    """Find RAVDESS audio-visual clips anywhere below ``root`` (``Actor_XX/`` folders or one flat folder).

    Video-only and audio-only recordings, names that do not parse, channels not asked for and a second
    file with the same name are skipped with their reason.
    """
    clips: dict[str, ClipRecord] = {}
    skipped: list[Skipped] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in MEDIA_SUFFIXES):
        try:
            name = parse_name(path.stem)
        except InvalidName as err:
            skipped.append(Skipped(path, "unparseable name", str(err)))
            continue
        if name.modality != 1:
            reason = f"{MODALITIES[name.modality]} (modality {name.modality:02d})"
            skipped.append(Skipped(path, reason, "only audio-video (01) clips are used"))
            continue
        if path.suffix.lower() == ".wav":
            skipped.append(Skipped(path, "audio file with an audio-video name", "modality 01 names an mp4"))
            continue
        record = record_from_name(path, name)
        if record.vocal_channel not in vocal_channels:
            skipped.append(Skipped(path, "vocal channel not selected", record.vocal_channel or ""))
            continue
        if record.clip_id in clips:
            skipped.append(Skipped(path, "duplicate clip", f"same name as {clips[record.clip_id].path}"))
            continue
        clips[record.clip_id] = record
    return Discovery(clips=list(clips.values()), skipped=skipped)
