"""How the CLI prints: results on standard output, progress and errors on standard error.

The consoles are made on first use, so that a command that prints nothing of its own (and
`laneway --help`) does not import rich's console and tables.
"""

from __future__ import annotations

import functools
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

PHASE_STYLE = {
    "running": "green",
    "degraded": "yellow",
    "failed": "red",
    "deleting": "magenta",
}


@functools.cache
def out() -> Console:
    """Results: standard output, wide when piped so that tables keep whole URLs and ids."""
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)


@functools.cache
def err() -> Console:
    """Progress, build output and errors: standard error."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    out().print_json(json.dumps(data))


def table(*headers: str, **options: Any) -> Table:
    from rich.table import Table

    return Table(*headers, **options)


def escape(text: str) -> str:
    """`text` with rich's markup characters escaped, to be printed as it is."""
    from rich.markup import escape as escape_markup

    return escape_markup(text)


def without_echo(message: str, printed: list[str]) -> str:
    """`message` less the lines after its first where they repeat the last lines printed:
    a failed build's message carries its output's tail, which was printed as it came."""
    first, *rest = message.splitlines() or [""]
    if rest and printed[-len(rest) :] == rest:
        return first
    return message


def phase(name: str) -> str:
    """An environment's phase or a release's state, coloured."""
    return f"[{PHASE_STYLE.get(name, 'cyan')}]{name}[/]"
