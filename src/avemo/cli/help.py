"""How ``--help`` shows an option: its type as for any other, its bounds in words, a described default as it is.

Typer prints a bounded number as ``<int range>`` with ``[default: (40); x>=1]``: the bounds in a notation, and
a default given as text in parentheses that make a value read as a remark. Here the same option shows
``<int>`` and ``[default: 40; at least 1]``; a variadic argument shows ``<path>``, not ``<list[Path]>``.
"""

from __future__ import annotations

import re

from typer import Context
from typer.core import TyperArgument, TyperCommand, TyperOption


def _number(value: int | float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def describe_bounds(low: int | float | None, high: int | float | None) -> str | None:
    """Bounds in words: "at least 1", "at most 5", "1 to 24"."""
    if low is None and high is None:
        return None
    if high is None:
        return f"at least {_number(low)}"
    if low is None:
        return f"at most {_number(high)}"
    return f"{_number(low)} to {_number(high)}"


def _plain(base: type) -> type:
    """``base`` (Typer's option or argument) showing its help as this module says. A direct subclass, adding
    nothing but methods: Python lets an object built as ``base`` take it as its class."""

    def display_type(self, ctx: Context) -> str:
        label = re.sub(r"<(\w+) range>", r"<\1>", base.display_type(self, ctx))
        return re.sub(r"<list\[(\w+)\]>", lambda m: f"<{m.group(1).lower()}>", label)

    def _get_number_range_help_str(self) -> str | None:
        return describe_bounds(self.min, self.max)

    def _get_default_string(self, *, ctx: Context, show_default_is_str: bool, default_value: object) -> str:
        if show_default_is_str:
            return str(self.show_default)
        return base._get_default_string(self, ctx=ctx, show_default_is_str=False, default_value=default_value)

    return type(f"Plain{base.__name__}", (base,), {
        "display_type": display_type, "_get_number_range_help_str": _get_number_range_help_str,
        "_get_default_string": _get_default_string})


_PLAIN = {base: _plain(base) for base in (TyperOption, TyperArgument)}


class PlainHelpCommand(TyperCommand):
    """A command whose parameters show their help as this module describes."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            # Typer builds its own parameter objects and takes no class for them: give each the subclass
            # that differs only in how help shows it (parsing is untouched).
            if type(param) in _PLAIN:
                param.__class__ = _PLAIN[type(param)]
