"""The ``avemo`` command line: one module per command, each of which parses its options, calls the Python API
(:mod:`avemo.api`, :class:`avemo.Run`) and shows what comes back; the work lives below it.

Results (tables, predictions, summaries) go to stdout; progress, notes, warnings and errors to stderr.
Progress is a bar on a terminal and a plain line every ~10 % (and per fold) in a log; ``--quiet`` keeps
only results and errors. avemo's own errors print as one line (exit 2); anything else that escapes a command
prints one line and a pointer to ``AVEMO_DEBUG=1`` for its traceback. No module here imports torch at import
time: ``avemo --help`` stays fast, and each command imports what it needs when it runs.
"""

from __future__ import annotations

from typing import Annotated

import typer

from avemo import __version__
from avemo.cli.shared import app, settings

__all__ = ["app"]


@app.callback(invoke_without_command=True)
def main(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Results and errors only: no progress bars or notes "
                                                              "(for scripts).")] = False,
) -> None:
    settings.quiet = quiet
    if version:
        typer.echo(__version__)
        raise typer.Exit()
    from avemo.machine import prepare_environment

    prepare_environment()  # before any command imports torch: OpenMP reads its waiting policy once


# Each module registers its command on ``app`` when imported; this order is the order of ``avemo --help``.
from avemo.cli import (fetch, reproduce, synth, extract, export, inspect, train, evaluate, predict, timeline,  # noqa: E402,F401,I001
                       serve, bench, demo, doctor)
