"""Tidier ``--help`` for the ``modelfleet`` command line.

typer (0.29) prints every parameter's Python type in the help: ``<bool>`` beside each flag
(``--check``, ``--help``), ``<list[Path]>`` beside repeatable options and variadic
arguments. ``TidyGroup`` (the app's group class) drops the type of flags and shows a
parameter's ``metavar`` instead of its type wherever the command declares one; nothing
else about parsing or help changes.

The app sets ``rich_markup_mode=None``: typer's rich panels cut long option names at 80
columns (``--first-byte-tim…``); click's plain layout wraps the description column
instead, and ``TidyGroup.format_commands`` keeps each command's first sentence whole
(click would cut it with "..." at the terminal's width).
"""

from __future__ import annotations

from typing import Any

import typer.core

_WHOLE_SENTENCE = 10_000  # characters: a command's short help is never cut


def _tidy(params: list[Any]) -> list[Any]:
    for param in params:
        if getattr(param, "_modelfleet_tidy", False):
            continue
        param._modelfleet_tidy = True
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""  # a flag takes no value: no type to show
        elif isinstance(param, typer.core.TyperArgument) and param.metavar is not None:
            # Arguments show their type beside their name; the metavar already says it.
            # (An instance attribute: typer offers no option for this.)
            param.display_type_rich = lambda ctx: None  # type: ignore[method-assign]
    return params


class TidyGroup(typer.core.TyperGroup):
    """The app's group: its own and its commands' help without Python type names."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _tidy(super().get_params(ctx))

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """The command list with each command's whole first sentence, wrapped by the
        formatter (click would cut it at the terminal's width with "...")."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=_WHOLE_SENTENCE)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _tidy(command.params)
            help_option = command.get_help_option(ctx)
            if help_option is not None:
                _tidy([help_option])
        return command
