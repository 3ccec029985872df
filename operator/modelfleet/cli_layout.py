"""Fit the command line's tables and sentences to the output's width, never cutting a name.

rich shrinks a table that is wider than the console by cutting its cells (``Standard_…``,
``us-centr…``, ``ExcludedByRegi…``): a cut identifier cannot be copied into a manifest or
a ``kubectl`` command, and reads as another name. Here nothing is cut. A table is laid out
like ``kubectl get`` (plain columns, two spaces apart); when its rows do not fit, columns
move out of the row onto indented lines beneath it, prose first, then the widest
identifier, until the rest fits (``  instance type: Standard_NC24ads_A100_v4``); prose is
wrapped at spaces only. Sentences are wrapped at spaces with a hanging indent.

The width: the terminal's when the output is one; otherwise ``$COLUMNS`` when set, else
80 (a file or a pipe gets 80 columns even from a wide terminal, whose size rich would
otherwise take from stdin or stderr). Only a single word longer than the width (a path, a
63-character cluster name beneath an indent) can exceed it.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console, RenderableType
from rich.text import Text

DEFAULT_WIDTH = 80
"""Columns of an output that is not a terminal, when ``$COLUMNS`` is not set."""

_GAP = "  "
_INDENT = "  "


def output_width(console: Console) -> int:
    """The columns to lay ``console``'s output out in: its terminal's width when it writes
    to a terminal; otherwise ``$COLUMNS`` (a positive whole number) when set, else 80."""
    if console.is_terminal:
        return console.width
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else DEFAULT_WIDTH


def wrap(text: str, width: int, *, first: str = "", indent: str = _INDENT) -> list[str]:
    """``text`` as lines of at most ``width`` columns, broken at spaces only (a name, a
    path or a figure is never split; one longer than ``width`` stays whole on its own
    line), the first line indented by ``first``, the others by ``indent``. A no-break
    space (U+00A0) joins words that must stay on one line; it is printed as a plain
    space."""
    lines = textwrap.wrap(
        text,
        width=max(width, 1),
        initial_indent=first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return [line.replace("\u00a0", " ") for line in lines] or [""]


@dataclass(frozen=True)
class Column:
    """One column of a ``table_lines`` table."""

    header: str
    prose: bool = False
    """Sentences (wrapped at spaces when the column moves beneath the row); otherwise an
    identifier or a figure, printed whole."""
    right: bool = False
    """Right-justified (figures)."""


def _fits(widths: Sequence[int], width: int) -> bool:
    return sum(widths) + len(_GAP) * (len(widths) - 1) <= width


def table_lines(
    title: str, columns: Sequence[Column], rows: Sequence[Sequence[str]], *, width: int
) -> list[Text]:
    """``rows`` under ``columns`` as lines of at most ``width`` columns (see the module
    docstring), the title and the header bold. The first column always stays in the row.
    Raises ValueError when a row has not one cell per column."""
    if any(len(row) != len(columns) for row in rows):
        raise ValueError("every row needs one cell per column")
    if not rows:
        return [Text(f"{title}: none", style="bold")]
    natural = [max(len(c.header), *(len(row[i]) for row in rows)) for i, c in enumerate(columns)]
    inline = list(range(len(columns)))
    while len(inline) > 1 and not _fits([natural[i] for i in inline], width):
        movable = inline[1:]
        prose = [i for i in movable if columns[i].prose]
        inline.remove(prose[0] if prose else max(movable, key=lambda i: natural[i]))
    below = [i for i in range(len(columns)) if i not in inline]
    below.sort(key=lambda i: columns[i].prose)  # identifiers first, prose last

    def line(cells: Sequence[str]) -> str:
        parts = []
        for n, i in enumerate(inline):
            last = n == len(inline) - 1
            cell = cells[i]
            if columns[i].right:
                parts.append(cell.rjust(natural[i]))
            else:
                parts.append(cell if last else cell.ljust(natural[i]))
        return _GAP.join(parts).rstrip()

    lines = [Text(title, style="bold"), Text(line([c.header for c in columns]), style="bold")]
    for row in rows:
        lines.append(Text(line(row)))
        for i in (i for i in below if row[i]):  # an empty cell adds no line
            label = "" if columns[i].prose else columns[i].header.replace(" ", "\u00a0") + ": "
            text = wrap(label + row[i], width, first=_INDENT, indent=_INDENT * 2)
            lines += [Text(part) for part in text]
    return lines


def print_lines(console: Console, lines: Sequence[Text | str]) -> None:
    """Print ``lines`` as they are: no markup, no highlighting, no wrapping or cropping."""
    for item in lines:
        console.print(item, markup=False, highlight=False, crop=False, soft_wrap=True)


def natural_width(console: Console, renderable: RenderableType) -> int:
    """The columns ``renderable`` (a rich Table) takes when nothing constrains it. Set a
    Table's ``width`` to at least this before printing it on a narrower console: given
    less, rich drops whole columns (their header and every figure) rather than wrap."""
    return console.measure(renderable, options=console.options.update_width(1_000_000)).maximum
