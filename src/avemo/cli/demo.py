"""``avemo demo``: synth -> extract -> train -> evaluate (:mod:`avemo.demo`), each step shown as it finishes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from avemo.cli.evaluate import show_evaluation
from avemo.cli.extract import extract_and_show
from avemo.cli.shared import Reporter, command, fail, note, out, use_threads
from avemo.cli.train import train_and_show


@command
def demo(
    workdir: Annotated[Path, typer.Option(help="Folder for the synthetic dataset, its cache and the run.")] = Path("avemo-demo"),
    actors: Annotated[int, typer.Option(min=4, max=24, help="Synthetic actors (4 folds need at least 4).")] = 8,
    clips_per_actor: Annotated[int, typer.Option(min=8, max=60, help="Clips per actor.")] = 8,
    threads: Annotated[Optional[int], typer.Option(min=1, help="CPU threads for torch (default: the cores free to this process).")] = None,
) -> None:
    """synth -> extract -> train -> evaluate on the embedded synthetic dataset (random backbone weights)."""
    use_threads(threads)
    from avemo.demo import Demo

    steps = Demo(workdir, actors, clips_per_actor)
    with Reporter("synthesising", steps.clips, "clips") as progress:
        steps.synthesize(on_clip=lambda _: progress.advance())
    note("the demo uses random backbone weights: see the README for the pretrained ones")
    if extract_and_show(steps.cache, steps.extract).entries == 0:
        fail(f"no clip of {steps.data} could be extracted", code=1)
    train_and_show(steps.run, steps.config.epochs, steps.train)
    report = steps.evaluate()
    show_evaluation(steps.run, report)
    ms = report["heads"][report["primary_head"]]["mean_std"]
    out.print(f"[bold green]done[/]: held-out actors, {len(report['folds'])} folds: accuracy "
              f"{ms['accuracy']['mean']:.3f} ± {ms['accuracy']['std']:.3f}, UAR {ms['uar']['mean']:.3f} ± "
              f"{ms['uar']['std']:.3f} (chance {1 / len(report['classes']):.3f})", highlight=False)
