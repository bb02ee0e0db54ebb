"""A user's own labelled clips, one sub-folder per class: ``DATA/<label>/*.mp4``.

The speaker of each clip comes from ``--speaker-pattern``, a regular expression with a named group
``speaker`` searched in the file name (``r"_(?P<speaker>\\d+)_"``). Without it every clip is a speaker of
its own, so folds split clips, not speakers (the run's reports say so).
"""

from __future__ import annotations

import re
from pathlib import Path

from avemo.errors import AvemoError
from avemo.pipeline.clips import VIDEO_SUFFIXES, ClipRecord, Discovery, Skipped, clip_id_of, number_speakers

DATASET = "folders"


class PatternError(AvemoError, ValueError):
    """A ``--speaker-pattern`` that cannot name speakers."""


def speaker_regex(pattern: str | None) -> re.Pattern | None:
    if pattern is None:
        return None
    try:
        regex = re.compile(pattern)
    except re.error as err:
        raise PatternError(f"--speaker-pattern {pattern!r}: not a regular expression ({err})") from None
    if "speaker" not in regex.groupindex:
        raise PatternError(f"--speaker-pattern {pattern!r}: needs a named group (?P<speaker>...), e.g. "
                           r"'_(?P<speaker>\d+)_'")
    return regex


def discover(root: Path, speaker_pattern: str | None = None) -> Discovery:
    """Every video below ``root/<label>/`` (at any depth) with its label and speaker."""
    regex = speaker_regex(speaker_pattern)
    found: list[tuple[Path, str, str | None]] = []
    skipped: list[Skipped] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")):
        relative = path.relative_to(root)
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            skipped.append(Skipped(path, "not a video file", f"suffix {path.suffix or '(none)'}"))
            continue
        if len(relative.parts) < 2:
            skipped.append(Skipped(path, "not in a class folder", f"put it in {root}/<label>/"))
            continue
        speaker = None
        if regex is not None:
            match = regex.search(path.name)
            if match is None or not match.group("speaker"):
                skipped.append(Skipped(path, "speaker pattern does not match", speaker_pattern or ""))
                continue
            speaker = match.group("speaker")
        found.append((path, relative.parts[0], speaker))
    actors = number_speakers([s for _, _, s in found])
    clips = [ClipRecord(clip_id=clip_id_of(path.relative_to(root)), path=path, dataset=DATASET, actor=actor,
                        gender="unknown", emotion=label, speaker=speaker)
             for (path, label, speaker), actor in zip(found, actors)]
    return Discovery(clips=clips, skipped=skipped)
