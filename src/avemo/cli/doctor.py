"""``avemo doctor``: this machine's versions, CPU features, and every runtime path checked against CPU torch."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from avemo.choices import DeviceName
from avemo.cli.shared import command, err, out, settings, use_threads


@command
def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object on stdout.")] = False,
    device: Annotated[DeviceName, typer.Option(help="Where the GPU rows run: auto, cpu (GPU rows skipped) or cuda.")] = DeviceName.auto,
    threads: Annotated[Optional[int], typer.Option(min=1, help="CPU threads for torch.",
                                                   show_default="the cores free to this process")] = None,
) -> None:
    """Check this machine: versions, CPU features, and every runtime/precision/decoder path against CPU fp32 torch."""
    use_threads(threads)
    from avemo.doctor import Status, run_doctor

    marks = {Status.ok: "[green]ok[/]", Status.failed: "[bold red]FAILED[/]", Status.unavailable: "[dim]not available[/]"}

    def progress(row) -> None:
        if not settings.quiet:
            err.print(f"  {escape(row.path)}: {marks[row.status]}", highlight=False)

    report = run_doctor(device.value, on_row=progress)
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=1))
        raise typer.Exit(report.exit_code)
    env = Table(title="avemo doctor: environment", show_header=False)
    for key, value in report.environment.items():
        env.add_row(key, escape(value))
    out.print(env)
    paths = Table(title=f"avemo doctor: paths (device {report.device})", caption=escape(report.about))
    for column in ("path", "status", "clips/s", "detail"):
        paths.add_column(column)
    for row in report.paths:
        speed = f"{row.clips_per_second:.2f}" if row.clips_per_second else ""
        paths.add_row(escape(row.path), marks[row.status], speed, escape(row.detail))
    out.print(paths)
    failed = [r.path for r in report.paths if r.status is Status.failed]
    out.print(f"[bold red]{len(failed)} path(s) FAILED[/]: {escape(', '.join(failed))}" if failed
              else "[bold green]every available path passed[/]", highlight=False)
    raise typer.Exit(report.exit_code)
