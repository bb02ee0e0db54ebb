"""CREMA-D file names (``1001_DFA_ANG_XX.flv``) and discovery of its clips."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from avemo.pipeline.clips import ClipRecord, Discovery, Skipped

EMOTION_CODES = {
    "ANG": "angry",
    "DIS": "disgust",
    "FEA": "fearful",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sad",
}
LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
SENTENCES = {"IEO", "TIE", "IOM", "IWW", "TAI", "MTI", "IWL", "ITH", "DFA", "ITS", "TSI", "WSI"}
VIDEO_SUFFIXES = {".flv", ".mp4", ".avi", ".mkv", ".mov"}
_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")


def parse_name(stem: str) -> tuple[int, str, str, str]:
    """Return (actor, sentence, emotion, level) or raise ``ValueError`` naming the faulty part."""
    match = _NAME.match(stem)
    if match is None:
        raise ValueError("expected AAAA_SSS_EEE_LL, e.g. 1001_DFA_ANG_XX")
    actor_s, sentence, emotion, level = match.groups()
    actor = int(actor_s)
    if not 1001 <= actor <= 1091:
        raise ValueError(f"actor {actor} not in 1001-1091")
    if sentence not in SENTENCES:
        raise ValueError(f"unknown sentence code {sentence}")
    if emotion not in EMOTION_CODES:
        raise ValueError(f"unknown emotion code {emotion}")
    if level not in LEVELS:
        raise ValueError(f"unknown level {level}")
    return actor, sentence, EMOTION_CODES[emotion], LEVELS[level]


def _genders(root: Path) -> dict[int, str]:
    """Actor genders from the ``VideoDemographics.csv`` CREMA-D ships, when it is present."""
    sheet = next(iter(sorted(root.rglob("VideoDemographics.csv"))), None)
    if sheet is None:
        return {}
    genders: dict[int, str] = {}
    with sheet.open(newline="") as handle:
        for row in csv.DictReader(handle):
            try:
                genders[int(row["ActorID"])] = row["Sex"].strip().lower()
            except (KeyError, ValueError):
                continue
    return genders


def discover(root: Path) -> Discovery:
    """Find CREMA-D clips below ``root``; a WAV with the same stem is kept as the fallback soundtrack."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    wavs = {p.stem: p for p in files if p.suffix.lower() == ".wav"}
    genders = _genders(root)
    clips: dict[str, ClipRecord] = {}
    skipped: list[Skipped] = []
    for path in files:
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            continue
        try:
            actor, sentence, emotion, level = parse_name(path.stem)
        except ValueError as err:
            skipped.append(Skipped(path, "unparseable name", str(err)))
            continue
        if path.stem in clips:
            skipped.append(Skipped(path, "duplicate clip", f"same name as {clips[path.stem].path}"))
            continue
        clips[path.stem] = ClipRecord(
            clip_id=path.stem,
            path=path,
            dataset="cremad",
            actor=actor,
            gender=genders.get(actor, "unknown"),
            emotion=emotion,
            intensity=level,
            statement=sentence,
            audio_path=wavs.get(path.stem),
        )
    return Discovery(clips=list(clips.values()), skipped=skipped)
