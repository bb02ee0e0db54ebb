"""``avemo synth``: write a synthetic RAVDESS-format dataset, or one long clip whose emotion changes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from avemo.choices import Codec, Faces
from avemo.cli.shared import Reporter, busy, command, fail, out


@command
def synth(
    out_dir: Annotated[Path, typer.Argument(metavar="OUT", help="Folder to write Actor_XX/*.mp4 into.")],
    actors: Annotated[int, typer.Option(min=1, max=24, help="Number of actors (RAVDESS has 24).")] = 8,
    clips_per_actor: Annotated[int, typer.Option(min=1, max=60, help="Clips per actor; 8 covers every emotion once.")] = 16,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed writes the same dataset.")] = 0,
    width: Annotated[int, typer.Option(min=16, help="Frame width in pixels.")] = 160,
    height: Annotated[int, typer.Option(min=16, help="Frame height in pixels.")] = 120,
    fps: Annotated[float, typer.Option(min=1.0, help="Frames per second.")] = 30.0,
    split_cues: Annotated[bool, typer.Option("--split-cues", help="Face shows the emotion's pair, voice the member: "
                                                                   "only fusion tells all 8.")] = False,
    codec: Annotated[Codec, typer.Option(help="h264 (as RAVDESS), or vp9 (what DALI's CPU decoder reads).")] = Codec.h264,
    faces: Annotated[Faces, typer.Option(help="drawn, or real: a photographed face placed and scaled per actor "
                                              "(true boxes in OUT/faces.json, OpenFace-style landmark CSVs in "
                                              "OUT/landmarks/), which --crop face and --crop landmarks find.")] = Faces.drawn,
    long: Annotated[Optional[float], typer.Option("--long", min=1.0, help="Instead of a dataset: one clip of this "
                                                  "many seconds, OUT/long-actor<NN>.mp4, of the actor speaking clip-"
                                                  "like utterances whose emotion changes every two (5-7 s), with the "
                                                  "truth in the .json beside it (for avemo timeline).",
                                                  show_default="none")] = None,
    actor: Annotated[int, typer.Option(min=1, max=24, help="With --long: the actor (as the dataset with this "
                                                           "--seed draws them).")] = 1,
) -> None:
    """Write a synthetic RAVDESS-format dataset whose emotions show in face and voice."""
    from avemo.synth import SynthConfig, synthesize, synthesize_long

    try:
        config = SynthConfig(width=width, height=height, fps=fps, split_cues=split_cues, codec=codec.value,
                             faces=faces.value)
    except ValueError as error:
        fail(str(error))
    if long is not None:
        path = out_dir / f"long-actor{actor:02d}.mp4"
        with busy(f"writing {path}"):
            truth = synthesize_long(path, long, seed, actor, config)
        changes = ", ".join(f"{s['start']:.1f} s {s['emotion']}" for s in truth["segments"])
        out.print(f"wrote {path} ({long:g} s: {changes}); truth in {path.with_suffix('.json')}", highlight=False,
                  soft_wrap=True)
        return
    with Reporter("synthesising", actors * clips_per_actor, "clips") as progress:
        paths = synthesize(out_dir, actors, clips_per_actor, seed, config, on_clip=lambda _: progress.advance())
    out.print(f"wrote {len(paths)} clips of {actors} actors to {out_dir}", highlight=False, soft_wrap=True)
