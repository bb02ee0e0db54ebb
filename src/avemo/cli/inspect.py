"""``avemo inspect``: what a feature cache holds and what made it; ``--verify`` reads every entry."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from avemo.cli.shared import command, err, note, out


@command
def inspect(
    cache: Annotated[Path, typer.Argument(metavar="CACHE", help="Feature cache folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    verify: Annotated[bool, typer.Option("--verify", help="Read every entry and check its checksum (exit 1 if one "
                                         "is damaged).")] = False,
) -> None:
    """Describe a feature cache: what made its features, entries, shapes, actors and emotions;
    damaged entries by name."""
    from avemo.cache import FeatureCache

    store = FeatureCache.open(cache)
    spec = store.spec
    entries, broken = store.scan()
    info = {
        "cache": str(cache),
        "entries": len(entries),
        "video_shape": store.manifest["video_shape"],
        "audio_shape": store.manifest["audio_shape"],
        "dtype": spec.dtype,
        "fingerprint": store.fingerprint,
        "spec": spec.to_json(),
        "produced_by": dict(Counter(e["produced_by"] or "unrecorded" for e in entries)),
        "datasets": dict(Counter(e["dataset"] for e in entries)),
        "actors": {str(k): v for k, v in sorted(Counter(e["actor"] for e in entries).items())},
        "emotions": dict(sorted(Counter(e["emotion"] for e in entries).items())),
        "broken_entries": [str(p) for p in broken],
        **store.health(broken, verify),
    }
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        if verify and info["damaged_entries"]:
            raise typer.Exit(1)
        return
    table = Table(title=f"avemo cache {escape(str(cache))}", show_header=False)
    random_ = {"video weights": spec.video_backbone.weights.random, "audio weights": spec.audio_backbone.weights.random}
    for key, value in spec.summary():
        table.add_row(key, f"[bold red]{value}[/]" if random_.get(key) else escape(value))
    table.add_row("shapes", f"video {tuple(info['video_shape'])}, audio {tuple(info['audio_shape'])}")
    table.add_row("entries", str(len(entries)))
    table.add_row("made by", escape(", ".join(f"{k}: {v}" for k, v in info["produced_by"].items()) or "-"))
    for key in ("datasets", "actors", "emotions"):
        table.add_row(key, escape(", ".join(f"{k}: {v}" for k, v in info[key].items()) or "-"))
    table.add_row("broken entries", escape(", ".join(Path(p).name for p in info["broken_entries"][:10]) or "none")
                  + (f" and {len(broken) - 10} more" if len(broken) > 10 else ""))
    out.print(table)
    for item in info["damaged_entries"]:
        err.print(f"[red]damaged[/] {escape(item['entry'])}: {escape(item['reason'])}", highlight=False,
                  soft_wrap=True)
    if info["damaged_entries"]:
        note(f"the avemo extract command that made {cache} extracts them again")
    if verify and info["damaged_entries"]:
        raise typer.Exit(1)
