"""``avemo bench``: decoding, backbones, extraction and a fusion step timed side by side with the seed's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from avemo.choices import DeviceName
from avemo.cli.shared import busy, command, note, out, use_threads


@command
def bench(
    quick: Annotated[bool, typer.Option("--quick", help="Fewer, smaller clips and repeats (its time on two cores is in "
                                                        "benchmarks/RESULTS.md).")] = False,
    train_scale: Annotated[bool, typer.Option("--train-scale", help="Only time a full 6-fold avemo train on a "
                                                                    "RAVDESS-sized cache of random features (minutes).")] = False,
    timeline: Annotated[Optional[Path], typer.Option("--timeline", metavar="RUN", help="Only time avemo timeline "
                                                     "with this trained run (e.g. avemo-demo/run) on a synthetic "
                                                     "640x360 clip: seconds of compute per second of video, with and "
                                                     "without decoding alongside the backbones, and peak memory.",
                                                     show_default="none")] = None,
    timeline_seconds: Annotated[Optional[float], typer.Option(min=10.0, help="With --timeline: the clip's length "
                                                              "(over 300: the default way only, once; 3600 for the "
                                                              "one-hour memory figure).",
                                                              show_default="120; 30 with --quick")] = None,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write every figure as JSON to this file.",
                                                      show_default="none")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the Markdown table (bench.md) and chart (bench.png).")] = Path("avemo-bench"),
    device: Annotated[DeviceName, typer.Option(help="auto: CUDA when PyTorch sees a GPU.")] = DeviceName.auto,
    threads: Annotated[Optional[int], typer.Option(min=1, help="CPU threads for torch.",
                                                   show_default="the cores free to this process")] = None,
) -> None:
    """Measure decoding, backbones, extraction and a fusion step side by side, as multiples of the seed."""
    use_threads(threads)
    from avemo.bench.suite import BenchConfig, plot, run_bench

    def show(section) -> None:
        table = Table(title=section.title, caption=f"baseline: {section.baseline}")
        for column in ("row", "s per unit", "x baseline", "note"):
            table.add_column(column)
        for row in section.rows:
            table.add_row(escape(row.name), f"{row.seconds:.4f} / {row.unit}", f"{row.ratio:.2f}x", escape(row.note))
        out.print(table)
        for limit in section.limits:
            out.print(f"  {escape(limit)}", highlight=False, soft_wrap=True)

    with busy("benchmarking (sections print as they finish)"):
        if timeline is not None:
            from avemo.fusion.run import Run

            Run(timeline).recognizer(device=device.value)  # a folder that is no run fails now, not after the clip
        report = run_bench(BenchConfig(quick=quick, device=device.value, workdir=None, train_scale=train_scale,
                                       timeline_run=timeline, timeline_seconds=timeline_seconds),
                           on_section=show, on_progress=note)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bench.md").write_text(report.markdown())
    plot(report, out_dir / "bench.png")
    if json_path is not None:
        json_path.write_text(json.dumps(report.to_json(), indent=1))
    note(f"done: {out_dir / 'bench.md'}, {out_dir / 'bench.png'}" + (f", {json_path}" if json_path else ""))
