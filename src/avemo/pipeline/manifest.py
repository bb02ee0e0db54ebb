"""A user's own labelled clips listed in a CSV or JSON Lines file: ``path,label,speaker`` required; optional
``audio_path`` (a separate soundtrack) and ``fold`` (explicit folds); any other column is kept as metadata in
the cache index. Relative paths resolve against the manifest's folder. A bad row (missing file, empty
label, a value without a column) is reported by its line number and the others go on.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from avemo.errors import AvemoError
from avemo.pipeline.clips import ClipRecord, Discovery, Skipped, clip_id_of, number_speakers

DATASET = "manifest"
REQUIRED = ("path", "label", "speaker")
KNOWN = (*REQUIRED, "audio_path", "fold")


class ManifestError(AvemoError, ValueError):
    """A manifest that cannot be read at all; the message names the file and what to do."""


def _rows(manifest: Path) -> list[tuple[int, dict]]:
    """(line number, row) of every row; raise ``ManifestError`` for a file that is no CSV/JSONL manifest."""
    try:
        text = manifest.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise ManifestError(f"{manifest}: cannot read it ({type(err).__name__}); give a UTF-8 CSV or JSONL file") from None
    if manifest.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                row = None
            rows.append((number, row if isinstance(row, dict) else {"\0bad": line[:60]}))
        return rows
    reader = csv.DictReader(text.splitlines(), skipinitialspace=True)
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise ManifestError(f"{manifest}: no column {', '.join(missing)} (the header must name path, label and "
                            "speaker)")
    return [(reader.line_num, row) for row in reader]


def discover(manifest: Path) -> Discovery:
    """The clips a manifest lists, with their labels, speakers, folds and metadata."""
    if not manifest.is_file():
        raise ManifestError(f"{manifest}: no such manifest file")
    root = manifest.parent
    good: list[tuple[Path, dict]] = []
    skipped: list[Skipped] = []
    for number, row in _rows(manifest):
        where = Path(f"{manifest.name}:{number}")
        if "\0bad" in row:
            skipped.append(Skipped(where, "not a JSON object", row["\0bad"]))
            continue
        if None in row:  # csv: more values than the header has columns
            skipped.append(Skipped(where, "unknown column", f"values without a header: {row[None]}"))
            continue
        values = {k: ("" if v is None else str(v)).strip() for k, v in row.items()}
        problem = next((f"empty {c}" for c in REQUIRED if not values.get(c)), None)
        fold = values.get("fold", "")
        if problem is None and fold and not fold.isdigit():
            problem = f"fold {fold!r} is not a number"
        path = (root / values.get("path", "")).resolve() if values.get("path") else None
        if problem is None and not path.is_file():
            problem = f"file not found: {path}"
        audio = values.get("audio_path", "")
        if problem is None and audio and not (root / audio).is_file():
            problem = f"audio file not found: {root / audio}"
        if problem is not None:
            skipped.append(Skipped(where, problem, values.get("path", "")))
            continue
        good.append((path, values))
    actors = number_speakers([v["speaker"] for _, v in good])
    clips, seen = [], set()
    for (path, values), actor in zip(good, actors):
        clip_id = clip_id_of(path.relative_to(root) if path.is_relative_to(root) else Path(path.name))
        if clip_id in seen:
            skipped.append(Skipped(path, "duplicate clip", "listed twice in the manifest"))
            continue
        seen.add(clip_id)
        clips.append(ClipRecord(
            clip_id=clip_id, path=path, dataset=DATASET, actor=actor, gender="unknown", emotion=values["label"],
            audio_path=(root / values["audio_path"]).resolve() if values.get("audio_path") else None,
            speaker=values["speaker"], fold=int(values["fold"]) if values.get("fold") else None,
            meta={k: v for k, v in values.items() if k not in KNOWN}))
    return Discovery(clips=clips, skipped=skipped)
