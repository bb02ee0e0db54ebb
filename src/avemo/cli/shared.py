"""What every command shares: the app, the two consoles, one-line errors, progress, and the torchrun ranks.

Results (tables, predictions, summaries) go to ``out`` (stdout); progress, notes, warnings and errors to ``err``
(stderr). Under torchrun, rank 0 reports for every process: the others stay silent but for a one-line error
that names their rank. All of that is decided here, in ``command``, and not in the commands.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import time
import warnings
from typing import Callable, ContextManager, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from avemo.cli.help import PlainHelpCommand
from avemo.distributed import launched_rank
from avemo.errors import AvemoError

app = typer.Typer(help="avemo: audio-visual emotion recognition (Mocanu, Tapu & Zaharia 2023).",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  rich_markup_mode=None)
err = Console(stderr=True)  # progress, notes, warnings, errors
out = Console()  # results
_loud = Console(stderr=True)  # errors and warnings where err is silenced (ranks other than 0)
SHOW_PER_REASON = 10
DEBUG = "AVEMO_DEBUG"


class _Settings:
    quiet = False


settings = _Settings()


def _heard() -> Console:
    # err while it speaks: it keeps a live progress bar intact when a line is printed above it
    return _loud if err.quiet else err


def fail(message: str, code: int = 2) -> NoReturn:
    rank = launched_rank()
    # Escaped: messages name files and extras ("avemo[gpu]") that Rich would read as markup.
    _heard().print(f"[bold red]error:[/] {escape((f'rank {rank}: ' if rank else '') + message)}", highlight=False,
                soft_wrap=True)
    raise typer.Exit(code)


def echo_json(data: object) -> None:
    """Results as JSON on stdout, printed by the process that reports (rank 0 under torchrun)."""
    if not out.quiet:
        typer.echo(json.dumps(data, indent=1))


def note(message: str) -> None:
    """A line of information on stderr (silenced by --quiet)."""
    if not settings.quiet:
        err.print(message, highlight=False, soft_wrap=True)


def one_line(error: BaseException) -> str:
    """An error as one line that names the file (OSError keeps the file name apart from its message)."""
    if isinstance(error, OSError) and error.filename:
        return f"{error.filename}: {error.strerror or error}"
    return " ".join(str(error).split())


def _loud_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: object = None, line: str | None = None) -> None:
    _heard().print(f"[bold red]warning:[/] {escape(str(message))}", highlight=False, soft_wrap=True)


def command(fn: Callable) -> Callable:
    """Register ``fn`` as a command whose errors never reach the user as a traceback."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        warnings.showwarning = _loud_warning
        rank = launched_rank()
        out.quiet = err.quiet = bool(rank)  # another torchrun process: rank 0 reports for all of them
        settings.quiet = settings.quiet or bool(rank)
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except KeyboardInterrupt:
            fail("interrupted; finished work is kept (run the same command to resume where it resumes)", code=130)
        except (AvemoError, OSError) as error:
            if os.environ.get(DEBUG):
                raise
            fail(one_line(error))
        except Exception as error:  # noqa: BLE001 - the last line of defence: one line, not a traceback
            if os.environ.get(DEBUG):
                raise
            if rank:  # mostly the echo of rank 0 stopping first (a collective that lost its peer)
                fail(one_line(error))
            fail(f"{type(error).__name__}: {one_line(error)} (an avemo bug or an unforeseen input; run with "
                 f"{DEBUG}=1 for the traceback, and please report it)")
    return app.command(cls=PlainHelpCommand)(run)


def busy(message: str) -> ContextManager:
    """A spinner on a terminal for work without steps to count; nothing in a log or with --quiet."""
    return err.status(message) if err.is_terminal and not settings.quiet else contextlib.nullcontext()


def use_threads(threads: int | None) -> None:
    """Size torch's CPU threads to the free cores (or ``--threads``) before the command's work starts."""
    from avemo.machine import configure_threads

    configure_threads(threads)


class Reporter:
    """Progress of long work: a bar on a terminal; a plain line every ~10 % when stderr is a log; nothing with
    --quiet. ``line`` prints a note above the bar."""

    def __init__(self, description: str, total: int | None = None, unit: str = "") -> None:
        self.description, self.total, self.unit = description, total, unit
        self.done, self.status, self.start = 0, "", time.perf_counter()
        self.live = err.is_terminal and not settings.quiet
        self._next = 0.1
        self.bar: Progress | None = None
        if self.live:
            self.bar = Progress(TextColumn("{task.description}"), BarColumn(bar_width=20), MofNCompleteColumn(),
                                TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                                console=err, transient=False)
            self.task = self.bar.add_task(description, total=total, status="")

    def __enter__(self) -> Reporter:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def restart(self, description: str, total: int | None) -> None:
        self.description, self.total, self.done, self._next, self.status = description, total, 0, 0.1, ""
        self.start = time.perf_counter()
        if self.bar is not None:
            self.bar.reset(self.task, total=total, description=description, status="")

    def set_total(self, total: int) -> None:
        self.total = total
        if self.bar is not None:
            self.bar.update(self.task, total=total)

    def advance(self, done: int | None = None, status: str = "") -> None:
        self.done = self.done + 1 if done is None else done
        self.status = status
        if self.bar is not None:
            self.bar.update(self.task, completed=self.done, status=status)
        elif not settings.quiet and self.total and self.done / self.total >= self._next - 1e-9:
            while self._next <= self.done / self.total + 1e-9:
                self._next += 0.1
            elapsed = time.perf_counter() - self.start
            err.print(f"{self.description}: {self.done}/{self.total} {self.unit} ({100 * self.done // self.total}%), "
                      f"{elapsed:.0f} s" + (f"; {status}" if status else ""), highlight=False, soft_wrap=True)

    def line(self, message: str) -> None:
        if not settings.quiet:
            (self.bar.console if self.bar is not None else err).print(message, highlight=False, soft_wrap=True)
