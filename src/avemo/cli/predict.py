"""``avemo predict``: the emotions of new videos, ranked, with a trained run (every fold votes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from avemo.choices import DeviceName
from avemo.cli.shared import command, err, note, out


@command
def predict(
    videos: Annotated[list[Path], typer.Argument(metavar="VIDEO", help="Video files (with their soundtrack).")],
    run: Annotated[Path, typer.Option(help="Run folder written by avemo train.")],
    video_weights: Annotated[Optional[str], typer.Option(help="Only if the file the run's cache was extracted with has "
                                                              "moved: where it is now (verified by SHA-256).",
                                                         show_default="the run's")] = None,
    audio_weights: Annotated[Optional[str], typer.Option(help="Likewise for the audio weights.",
                                                         show_default="the run's")] = None,
    device: Annotated[DeviceName, typer.Option(help="auto: CUDA when PyTorch sees a GPU.")] = DeviceName.auto,
    top: Annotated[int, typer.Option(min=1, help="Classes to show per video (best first).")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Rank the emotions of new videos with a trained run (decode, backbones, fusion; all folds vote).

    Exit code 0 when every file was predicted, 3 when some failed, 1 when none could be.
    """
    import avemo

    rec = avemo.Run(run).recognizer(device=device.value, video_weights=video_weights, audio_weights=audio_weights)
    results = rec.predict(videos)
    if as_json:
        typer.echo(json.dumps([{"path": str(r.path), "error": r.error or None,
                                "emotions": [{"emotion": e, "probability": round(p, 4)} for e, p in r.ranked[:top]],
                                "crop": r.box.to_json() if r.box is not None else None}
                               for r in results], indent=1))
    finds_faces = rec.spec.video.crop_mode.uses_detector
    for r in results:
        if r.error:
            err.print(f"[red]{escape(str(r.path))}[/]: {escape(r.error)}", highlight=False, soft_wrap=True)
            continue
        if not as_json:
            ranked = ", ".join(f"{e} {p:.2f}" for e, p in r.ranked[:top])
            out.print(f"[bold]{escape(str(r.path))}[/]: {ranked}", highlight=False, soft_wrap=True)
        if finds_faces and r.box is not None:  # where the model looked: a user must know when it found no face
            colour = "yellow" if r.box.source == "center" else "dim"
            note(f"[{colour}]{escape(str(r.path))}: {escape(r.box.describe())}[/]")
    failed = sum(bool(r.error) for r in results)
    if failed == len(results):
        raise typer.Exit(1)
    if failed:
        raise typer.Exit(3)
