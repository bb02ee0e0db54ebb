"""``avemo timeline``: emotion over time in a long video, window by window; a CSV, a JSON and a plot."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from avemo.choices import DeviceName
from avemo.cli.shared import SHOW_PER_REASON, Reporter, command, err, note, out


@command
def timeline(
    video: Annotated[Path, typer.Argument(metavar="VIDEO", help="A video of any length (with its soundtrack).")],
    run: Annotated[Path, typer.Option(help="Run folder written by avemo train.")],
    window: Annotated[Optional[float], typer.Option(min=0.1, help="Window length in seconds.",
                                                    show_default="the run's clip length: the mean duration of its "
                                                                 "cache's clips, or 3.0 when the cache is gone")] = None,
    hop: Annotated[Optional[float], typer.Option(min=0.04, help="Seconds from one window's start to the next. "
                                                 "A multiple of the snippet length (window / 6) runs each moment "
                                                 "of the video through the video backbone once; other hops "
                                                 "recompute the snippets windows share.",
                                                 show_default="one snippet: the window / 6")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Folder for timeline.csv, timeline.json and "
                                                    "timeline.png.", show_default="VIDEO's name + '-timeline'")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Windows per backbone batch.")] = 4,
    device: Annotated[DeviceName, typer.Option(help="auto: CUDA when PyTorch sees a GPU.")] = DeviceName.auto,
    as_json: Annotated[bool, typer.Option("--json", help="Print the timeline as JSON on stdout.")] = False,
) -> None:
    """Emotion over time: slide a window over a long video in one streaming pass; every fold of the run votes.

    Writes a CSV (start, end, top label, a probability per class, face box), a JSON and a plot. A window that
    cannot be decoded is marked and the rest goes on (exit code 3; 1 when none could be).
    """
    import avemo
    from avemo.reports.results import Window, csv_header, csv_row

    rec = avemo.Run(run).recognizer(device=device.value)
    target = out_dir if out_dir is not None else video.with_name(video.stem + "-timeline")
    created = not target.exists()
    target.mkdir(parents=True, exist_ok=True)
    # Rows go to timeline.csv as windows finish, so that a run stopped part-way keeps what it did; the finished
    # timeline rewrites it whole (atomically) beside the JSON and the plot.
    with (target / "timeline.csv").open("w", newline="") as live, \
            Reporter("timeline", None, "windows") as progress:
        rows = csv.writer(live, lineterminator="\n")
        rows.writerow(csv_header(rec.classes))

        def finished(w: Window) -> None:
            rows.writerow(csv_row(rec.classes, w))
            live.flush()
            progress.advance(status=w.error and "not decoded")

        try:
            result = rec.timeline(video, window=window, hop=hop, batch_size=batch_size,
                                  on_total=progress.set_total, on_window=finished)
        except avemo.AvemoError:  # refused before any window (no soundtrack, too short): leave nothing behind
            if progress.done == 0:
                live.close()
                (target / "timeline.csv").unlink(missing_ok=True)
                if created:
                    target.rmdir()
            raise
    paths = result.write(target)
    failed = [w for w in result.windows if w.error]
    for w in failed[:SHOW_PER_REASON]:
        err.print(f"[yellow]{w.start:.1f}-{w.end:.1f} s[/]: {escape(w.error)}", highlight=False, soft_wrap=True)
    if len(failed) > SHOW_PER_REASON:
        err.print(f"  ... and {len(failed) - SHOW_PER_REASON} more windows not decoded (marked in the CSV)")
    note(f"{len(result.windows)} windows of {result.window:.2f} s ({result.window_source}) every {result.hop:g} s"
         + ("" if result.audio else "; no soundtrack: video only"))
    finds_faces = rec.spec.video.crop_mode.uses_detector
    decoded = [w for w in result.windows if not w.error]
    if finds_faces and decoded:
        faceless = [w for w in decoded if w.box is None or w.box.source == "center"]
        colour = "yellow" if faceless else "dim"
        note(f"[{colour}]a face was found in {len(decoded) - len(faceless)} of {len(decoded)} windows"
             + (f"; the others show the centre of the picture (box_source 'center' in the CSV), e.g. "
                f"{faceless[0].start:.1f}-{faceless[0].end:.1f} s" if faceless else "") + "[/]")
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=1))
    else:
        table = Table(title=f"avemo timeline {escape(str(video))}")
        for column in ("start", "end", "top", "probability", *(["face"] if finds_faces else [])):
            table.add_column(column)
        for w in result.windows:
            p = max(w.probabilities) if w.probabilities else None
            face = [] if not finds_faces else ["-" if w.box is None else "no" if w.box.source == "center"
                                               else "followed" if w.box.track else "yes"]
            table.add_row(f"{w.start:.1f}", f"{w.end:.1f}", escape(result.top(w) or "not decoded"),
                          f"{p:.2f}" if p is not None else "-", *face)
        out.print(table)
    shares = ", ".join(f"{label} {share:.0%}" for label, share in result.shares().items())
    if shares:
        note(f"share of time: {shares}; {sum(1 for *_, t in result.segments() if t)} segments "
             "(summary in timeline.json)")
    note(f"wrote {', '.join(str(p) for p in paths)}")
    if len(failed) == len(result.windows):
        raise typer.Exit(1)
    if failed:
        raise typer.Exit(3)
