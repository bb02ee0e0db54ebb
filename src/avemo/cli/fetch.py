"""``avemo fetch``: a dataset's public archives, checked and unpacked into the layout ``avemo extract`` reads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from avemo.choices import Source
from avemo.cli.shared import Reporter, command, err, note


def _size(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


@command
def fetch(
    source: Annotated[Source, typer.Argument(metavar="DATASET", help="What to fetch.")],
    folder: Annotated[Path, typer.Argument(metavar="DIR", help="Folder for the dataset (made if needed); give it to "
                                                             "avemo extract.")],
    speech: Annotated[bool, typer.Option("--speech/--no-speech", help="RAVDESS: the speech clips (1440).")] = True,
    song: Annotated[bool, typer.Option("--song/--no-song", help="RAVDESS: the song clips (1012).")] = True,
    landmarks: Annotated[bool, typer.Option("--landmarks", help="RAVDESS: the OpenFace landmarks too (into "
                                                               "DIR/FacialTracking).")] = False,
    zenodo_url: Annotated[Optional[str], typer.Option(help="A Zenodo mirror: the root of its records API (plain http "
                                                           "only when named here or in AVEMO_ZENODO_URL).",
                                                      show_default="AVEMO_ZENODO_URL, else https://zenodo.org")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be fetched, its size and the disk "
                                                            "space needed; fetch nothing.")] = False,
    keep_archives: Annotated[bool, typer.Option("--keep-archives", help="Keep each zip after unpacking it (in "
                                                                       "DIR/.avemo-fetch).")] = False,
) -> None:
    """Download a dataset's archives, check each against the checksum its source publishes, and unpack them.

    A download stopped by Ctrl-C, a killed process or a dropped connection goes on where it stopped when the
    same command runs again; a file that fails its checksum is fetched once more, then named; server errors and
    timeouts are retried with back-off. Archives are unpacked without writing outside DIR. Running the command
    again fetches nothing that is done. Exit code 0 when all is there, 3 when some files failed (each named), 1
    when none of those left could be fetched.
    """
    from avemo.fetch import plan, run_fetch
    from avemo.fetch.datasets import ravdess, zenodo_base

    base, _ = zenodo_base(zenodo_url)
    dataset = ravdess(base, speech=speech, song=song, landmarks=landmarks)
    todo = plan(dataset, folder, keep_archives)
    left = [p for p in todo.parts if not p.done]
    note(f"{dataset.name} from {dataset.source}: {len(todo.parts)} files, {len(left)} to fetch "
         f"({_size(todo.to_download)} to download); {_size(todo.needs)} of disk needed, {_size(todo.free)} free "
         f"at {folder}")
    if dry_run:
        for p in todo.parts:
            state = "done" if p.done else f"{_size(p.to_download)} to download" + (
                f" ({_size(p.have)} already here)" if p.have else "")
            typer.echo(f"{p.part.remote.name}\t{_size(p.part.remote.size or 0)}\t{state}")  # tab-separated
        return
    if not left:
        note(f"nothing to do: every file is in {folder}")
        return
    err.print(f"[bold]licence:[/] {escape(dataset.licence)}", highlight=False, soft_wrap=True)
    with Reporter("fetch", max(1, round(todo.to_download / 1e6)), "MB") as progress:
        received = [0, 0.0]  # bytes, the last MB reported

        def on_file(name: str, size: int) -> None:
            progress.line(f"{escape(name)}: {_size(size)}")

        def on_bytes(n: int) -> None:
            received[0] += n
            progress.advance(done=min(progress.total or 0, round(received[0] / 1e6)))

        def on_done(name: str, why: str) -> None:
            if why:
                progress.line(f"[red]{escape(name)}[/]: {escape(why)}")

        summary = run_fetch(todo, on_file=on_file, on_bytes=on_bytes, on_done=on_done)
    note(f"{len(summary.fetched)} files fetched and unpacked into {folder} ({_size(summary.received)} downloaded)"
         + (f"; {len(summary.failed)} failed: run the same command again to retry them" if summary.failed else "")
         + f". Next: avemo extract {folder} --cache CACHE")
    if summary.failed:
        raise typer.Exit(1 if not summary.fetched and len(summary.failed) == len(left) else 3)
