"""``avemo evaluate``: a run's scores on its held-out actors, per fold and mean ± std."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from avemo.cli.shared import command, note, out


@command
def evaluate(
    run: Annotated[Path, typer.Argument(metavar="RUN", help="Run folder written by avemo train.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
) -> None:
    """Score a run on its test actors: per fold and mean ± std; writes report.json/.md and two PNGs."""
    from avemo import api

    report = api.evaluate(run)
    if as_json:
        typer.echo(json.dumps(report, indent=1))
        return
    show_evaluation(run, report)


def show_evaluation(run: Path, report: dict) -> None:
    primary = report["heads"][report["primary_head"]]
    table = Table(title=f"avemo evaluate {escape(str(run))} ({report['primary_head']} predictions)")
    for column in ("fold", "test actors", "accuracy", "UAR", "macro-F1"):
        table.add_column(column)
    for f in primary["per_fold"]:
        table.add_row(f["fold"], ", ".join(map(str, f["test_actors"])), f"{f['accuracy']:.3f}", f"{f['uar']:.3f}",
                      f"{f['macro_f1']:.3f}")
    ms = primary["mean_std"]
    table.add_row("mean ± std", "", *(f"{ms[k]['mean']:.3f} ± {ms[k]['std']:.3f}" for k in ("accuracy", "uar", "macro_f1")))
    out.print(table)
    note(f"report: {run / 'report.md'}, {run / 'report.json'}; plots: {run / 'confusion.png'}, {run / 'embedding.png'}")
