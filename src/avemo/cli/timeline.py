"""``avemo timeline``: emotion over time in long videos, window by window; a folder of CSV, JSON Lines, JSON and a
plot per video, written as the windows finish."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from avemo.choices import DeviceName
from avemo.cli.shared import SHOW_PER_REASON, Reporter, command, echo_json, err, fail, note, out


@command
def timeline(
    videos: Annotated[list[Path], typer.Argument(metavar="VIDEO...", help="Videos of any length (with their "
                                                                           "soundtrack).")],
    run: Annotated[Path, typer.Option("--run", "--run-dir", help="Run folder written by avemo train (--run-dir "
                                      "under torchrun, which takes --run for its own).")],
    window: Annotated[Optional[float], typer.Option(min=0.1, help="Window length in seconds.",
                                                    show_default="the run's clip length: the mean duration of its "
                                                                 "cache's clips, or 3.0 when the cache is gone")] = None,
    hop: Annotated[Optional[float], typer.Option(min=0.04, help="Seconds from one window's start to the next. "
                                                 "A multiple of the snippet length (window / 6) runs each moment "
                                                 "of the video through the video backbone once; other hops "
                                                 "recompute the snippets windows share.",
                                                 show_default="one snippet: the window / 6")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="With one VIDEO: the folder for its timeline.csv, "
                                                    ".jsonl, .json and .png. With several: the folder that gets a "
                                                    "folder per video (its name + '-timeline').",
                                                    show_default="beside each video, its name + '-timeline'")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Go on from the windows a stopped run left in a video's "
                                         "folder (made with the same video, run, window and hop).")] = False,
    batch_size: Annotated[int, typer.Option(min=1, help="Windows per backbone batch.")] = 4,
    device: Annotated[DeviceName, typer.Option(help="auto: CUDA when PyTorch sees a GPU.")] = DeviceName.auto,
    as_json: Annotated[bool, typer.Option("--json", help="Print the timeline as JSON on stdout (with several "
                                          "videos: a summary per video).")] = False,
) -> None:
    """Emotion over time: slide a window over long videos in one streaming pass each; every fold of the run votes.

    Per video, a folder: timeline.csv and timeline.jsonl (start, end, top label, a probability per class, face
    box; a row as each window finishes, so a stopped run keeps them and --resume goes on), timeline.json (the
    settings, every window and a summary: share of time per emotion, segments, windows not decoded) and
    timeline.png. The backbones load once for all videos; under torchrun the videos are shared among the ranks.
    A window that cannot be decoded is marked and the rest goes on; so does a video that cannot be read. Exit
    code 0 when all went well, 3 when some windows or videos failed, 1 when none could be read (2 when the one
    video given is refused).
    """
    from avemo.timelines import TimelineJob, run_timelines

    job = TimelineJob(videos=list(videos), run=run, out=out_dir, resume=resume, window=window, hop=hop,
                      batch_size=batch_size, device=device.value)
    current: list = []  # the video at hand, for the line an interruption prints
    start = time.perf_counter()
    with Reporter("timeline", None, "s of video") as progress:
        def started(total: float) -> None:
            progress.set_total(max(1, round(total)))

        def advanced(seconds: float, video) -> None:
            current[:] = [video]
            elapsed = time.perf_counter() - start
            progress.advance(done=min(round(seconds), progress.total or 0), status=f"{escape(video.video.name)}, "
                             f"{seconds / elapsed:.2f} s of video per s" if elapsed > 0 else "")

        def finished(video) -> None:
            if video.error and len(job.videos) > 1:  # one video's error is the command's
                progress.line(f"[red]{escape(str(video.video))}[/]: {escape(video.error)}")

        try:
            summary = run_timelines(job, started, advanced, finished)
        except KeyboardInterrupt:
            where = f" in {current[0].folder}" if current else ""
            fail(f"interrupted; the windows finished so far are kept{where}: run the same command with --resume "
                 "to go on from there", code=130)
    if len(summary.videos) == 1:
        _one_video(summary.videos[0], summary.faces, as_json)
    else:
        _many_videos(summary, as_json)
    failed = [v for v in summary.videos if not v.ok]
    if len(failed) == len(summary.videos):
        raise typer.Exit(1 if len(summary.videos) > 1 else 2)
    if failed or any(v.not_decoded for v in summary.videos):
        raise typer.Exit(3)


def _one_video(video, faces: bool, as_json: bool) -> None:
    if video.error:
        fail(video.error)
    result = video.timeline
    failed = [w for w in result.windows if w.error]
    if len(failed) == len(result.windows):
        err.print(f"[red]{escape(str(video.video))}[/]: no window could be decoded", highlight=False)
    for w in failed[:SHOW_PER_REASON]:
        err.print(f"[yellow]{w.start:.1f}-{w.end:.1f} s[/]: {escape(w.error)}", highlight=False, soft_wrap=True)
    if len(failed) > SHOW_PER_REASON:
        err.print(f"  ... and {len(failed) - SHOW_PER_REASON} more windows not decoded (marked in the CSV)")
    note(f"{len(result.windows)} windows of {result.window:.2f} s ({result.window_source}) every {result.hop:g} s"
         + ("" if result.audio else "; no soundtrack: video only")
         + (f"; {video.kept} kept from the stopped run" if video.kept else ""))
    finds_faces = faces
    decoded = [w for w in result.windows if not w.error]
    if finds_faces and decoded:
        faceless = [w for w in decoded if w.box is None or w.box.source == "center"]
        colour = "yellow" if faceless else "dim"
        note(f"[{colour}]a face was found in {len(decoded) - len(faceless)} of {len(decoded)} windows"
             + (f"; the others show the centre of the picture (box_source 'center' in the CSV), e.g. "
                f"{faceless[0].start:.1f}-{faceless[0].end:.1f} s" if faceless else "") + "[/]")
    if as_json:
        echo_json(result.to_dict())
    else:
        table = Table(title=f"avemo timeline {escape(str(video.video))}")
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
    note(f"wrote {', '.join(str(p) for p in video.files)}")


def _many_videos(summary, as_json: bool) -> None:
    if as_json:
        echo_json([v.to_dict() for v in summary.videos])
    else:
        table = Table(title="avemo timeline")
        for column in ("video", "seconds", "windows", "not decoded", "most of the time", "folder"):
            table.add_column(column)
        for v in summary.videos:
            top = next(iter(v.shares.items()), None)
            # names, not paths: the errors were named in full above, the folders are beside or inside --out
            table.add_row(escape(v.video.name), f"{v.seconds:.1f}", str(v.windows) if v.ok else "-",
                          str(v.not_decoded) if v.ok else "-",
                          f"{top[0]} {top[1]:.0%}" if top else ("[red]not read[/]" if not v.ok else "-"),
                          escape(v.folder.name) if v.ok else "-")
        out.print(table)
    ok = [v for v in summary.videos if v.ok]
    ranks = f" on {summary.ranks} torchrun ranks" if summary.ranks > 1 else ""
    note(f"{len(ok)} of {len(summary.videos)} videos read; {summary.computed:.0f} s of video in {summary.seconds:.0f} s"
         f"{ranks} ({summary.rate:.2f} s of video per s)"
         + (f"; {sum(v.kept for v in ok)} windows kept from stopped runs" if any(v.kept for v in ok) else ""))
