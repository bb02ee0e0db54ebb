"""``avemo fetch``: a dataset's public archives, checked and unpacked into the layout ``avemo extract`` reads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from avemo.choices import AudioRelease, Source, VideoRelease
from avemo.cli.shared import Reporter, command, err, note


def _size(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


@command
def fetch(
    source: Annotated[Source, typer.Argument(metavar="WHAT", help="ravdess, cremad, or the backbones' weights.")],
    folder: Annotated[Path, typer.Argument(metavar="DIR", help="Folder for it (made if needed); give a dataset's "
                                                             "to avemo extract.")],
    speech: Annotated[bool, typer.Option("--speech/--no-speech", help="RAVDESS: the speech clips (1440).")] = True,
    song: Annotated[bool, typer.Option("--song/--no-song", help="RAVDESS: the song clips (1012).")] = True,
    landmarks: Annotated[bool, typer.Option("--landmarks", help="RAVDESS: the OpenFace landmarks too (into "
                                                               "DIR/FacialTracking).")] = False,
    wav: Annotated[bool, typer.Option("--wav/--no-wav", help="CREMA-D: the soundtracks as WAV (AudioWAV/).")] = True,
    mp3: Annotated[bool, typer.Option("--mp3", help="CREMA-D: the soundtracks as MP3 too (AudioMP3/).")] = False,
    video: Annotated[VideoRelease, typer.Option(help="weights: Hara et al.'s 3D ResNet-101 checkpoint.")] =
    VideoRelease.hara2017,
    audio: Annotated[AudioRelease, typer.Option(help="weights: the audio ResNet-18.")] = AudioRelease.imagenet,
    zenodo_url: Annotated[Optional[str], typer.Option(help="A Zenodo mirror: the root of its records API (plain http "
                                                           "only when named here or in AVEMO_ZENODO_URL).",
                                                      show_default="AVEMO_ZENODO_URL, else https://zenodo.org")] = None,
    github_url: Annotated[Optional[str], typer.Option(help="A GitHub mirror serving URL/api, URL/raw and URL/media.",
                                                      show_default="AVEMO_GITHUB_URL, else GitHub's hosts")] = None,
    gdrive_url: Annotated[Optional[str], typer.Option(help="A Google Drive mirror.", show_default="AVEMO_GDRIVE_URL, "
                                                      "else https://drive.google.com")] = None,
    torchvision_url: Annotated[Optional[str], typer.Option(help="A mirror of torchvision's weights.",
                                                           show_default="AVEMO_TORCHVISION_URL, else "
                                                           "https://download.pytorch.org/models")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be fetched, its size and the disk "
                                                            "space needed; fetch nothing.")] = False,
    keep_archives: Annotated[bool, typer.Option("--keep-archives", help="RAVDESS: keep each zip after unpacking it "
                                                                       "(in DIR/.avemo-fetch).")] = False,
) -> None:
    """Download a dataset or the backbones' weights, check each file against the checksum its source publishes,
    and put it where avemo reads it.

    RAVDESS comes from Zenodo (MD5s from its records API), CREMA-D from its Git LFS repository on GitHub
    (SHA-256s from the LFS pointers), the weights from Hara et al.'s Google Drive folder (no published checksum:
    the SHA-256 is printed) and download.pytorch.org (the file name carries its hash). A download stopped by
    Ctrl-C, a killed process or a dropped connection goes on where it stopped when the same command runs again;
    a file that fails its checksum is fetched once more, then named; server errors and timeouts are retried with
    back-off. Archives are unpacked without writing outside DIR. Running the command again fetches nothing that
    is done. Exit code 0 when all is there, 3 when some files failed (each named), 1 when none of those left
    could be fetched.
    """
    from avemo.fetch import fetch_all, sha256_lines

    with FetchShow() as show:
        summary = fetch_all(source, folder, speech=speech, song=song, landmarks=landmarks, wav=wav, mp3=mp3,
                            video=str(video), audio=str(audio), zenodo_url=zenodo_url, github_url=github_url,
                            gdrive_url=gdrive_url, torchvision_url=torchvision_url, dry_run=dry_run,
                            keep_archives=keep_archives, show=show)
    if summary is None or dry_run:
        return
    if source == Source.weights:
        for line in sha256_lines(summary.plan):
            typer.echo(line)
    if summary.failed:
        left = [p for p in summary.plan.parts if not p.done]
        raise typer.Exit(1 if not summary.fetched and len(summary.failed) == len(left) else 3)


class FetchShow:
    """How a fetch talks to the terminal: the plan on stderr, a progress bar in MB, failures above it."""

    def __init__(self) -> None:
        self.progress: Reporter | None = None

    def __enter__(self) -> FetchShow:
        return self

    def __exit__(self, *exc: object) -> None:
        self._close()

    def _close(self) -> None:
        if self.progress is not None:
            self.progress.__exit__(None, None, None)
            self.progress = None

    def listing(self, what: str, done: int, total: int) -> None:
        if self.progress is None:
            self.progress = Reporter(what, total).__enter__()
        self.progress.advance(done=done)
        if done == total:
            self._close()

    def plan(self, todo, dry_run: bool) -> None:
        left = [p for p in todo.parts if not p.done]
        dataset = todo.dataset
        unknown = sum(p.part.remote.size is None for p in left)  # Drive publishes no sizes
        note(f"{dataset.name} from {dataset.source}: {len(todo.parts)} files, {len(left)} to fetch "
             f"({_size(todo.to_download)} to download" + (f" besides {unknown} of unpublished size" if unknown else "")
             + f"); {_size(todo.needs)} of disk needed, {_size(todo.free)} free at {todo.folder}")
        if dry_run:
            for p in todo.parts:
                size = p.part.remote.size
                state = "done" if p.done else (f"{_size(p.to_download)} to download" if size is not None else
                                               "to download") + (f" ({_size(p.have)} already here)" if p.have else "")
                typer.echo(f"{p.part.remote.name}\t{_size(size) if size is not None else '?'}\t{state}")  # tabs
        elif not left:
            note(f"nothing to do: every file is in {todo.folder}")
        else:
            err.print(f"[bold]licence:[/] {escape(dataset.licence)}", highlight=False, soft_wrap=True)

    def fetching(self, todo):
        return _FetchBar(todo)

    def summary(self, summary, next_step: str) -> None:
        note(f"{len(summary.fetched)} files fetched into {summary.plan.folder} ({_size(summary.received)} "
             "downloaded)" + (f"; {len(summary.failed)} failed: run the same command again to retry them"
                              if summary.failed else "") + (f". Next: {next_step}" if next_step else ""))


class _FetchBar:
    def __init__(self, todo) -> None:
        self.one_by_one = todo.dataset.workers <= 1  # a line per file, unless there are thousands at once
        left = [p for p in todo.parts if not p.done]
        # in MB where the sizes are published; in files where they are not (Google Drive's)
        self.by_files = any(p.part.remote.size is None for p in left)
        self.reporter = Reporter("fetch", len(left), "files") if self.by_files else \
            Reporter("fetch", max(1, round(todo.to_download / 1e6)), "MB")
        self.received, self.files = 0, 0

    def __enter__(self):
        self.reporter.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.reporter.__exit__(*exc)

    def on_file(self, name: str, size: int) -> None:
        if self.one_by_one:
            self.reporter.line(f"{escape(name)}: {_size(size)}")

    def on_bytes(self, n: int) -> None:
        self.received += n
        if not self.by_files:
            total = self.reporter.total or 0
            self.reporter.advance(done=min(total, round(self.received / 1e6)), status=f"{self.received / 1e6:.0f} MB")

    def on_done(self, name: str, why: str) -> None:
        self.files += 1
        if self.by_files:
            self.reporter.advance(done=self.files, status=f"{self.received / 1e6:.0f} MB")
        if why:
            self.reporter.line(f"[red]{escape(name)}[/]: {escape(why)}")
