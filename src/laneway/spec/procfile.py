"""Reads a Heroku Procfile: process types and their commands. Pure: no I/O.

Called by `spec/starter.py` when `laneway init` finds a Procfile. The format is Heroku's:
one `name: command` per line, `#` comments and blank lines ignored. The `release` line is
Heroku's release phase and becomes laneway's release hook, not a service; `web` is the
process that gets `$PORT` (in laneway, the service named `web` has a port by default).
Names are kept as written; turning them into service names is the caller's business.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from laneway.errors import SpecError

# Heroku's own rule for a process type name.
_NAME = re.compile(r"[A-Za-z0-9_-]+")
RELEASE = "release"


@dataclass(frozen=True)
class Procfile:
    """Process types in file order (name -> command), and the release command if any."""

    services: dict[str, str] = field(default_factory=dict)
    release: str | None = None


def parse_procfile(text: str, *, filename: str = "Procfile") -> Procfile:
    """Parse `text`; raise SpecError naming every malformed line (`Procfile:3: ...`)."""
    services: dict[str, str] = {}
    release: str | None = None
    first_line: dict[str, int] = {}
    problems: list[str] = []
    for number, raw in enumerate(text.removeprefix("\ufeff").split("\n"), start=1):
        line = raw.strip()  # also drops the \r of CRLF files
        if not line or line.startswith("#"):
            continue
        name, colon, command = line.partition(":")
        name, command = name.strip(), command.strip()
        where = f"{filename}:{number}"
        if not colon:
            problems.append(f"{where}: expected `name: command`, got {_short(line)}")
            continue
        if not _NAME.fullmatch(name):
            problems.append(
                f"{where}: invalid process name {_short(name)}; use letters, digits, '_' and '-'"
            )
            continue
        if not command:
            problems.append(f"{where}: {name}: the command is empty")
            continue
        if name in first_line:
            problems.append(f"{where}: {name}: defined twice (first at line {first_line[name]})")
            continue
        first_line[name] = number
        if name == RELEASE:
            release = command
        else:
            services[name] = command
    if problems:
        raise SpecError(problems, hint="A Procfile line reads `name: command`.")
    return Procfile(services=services, release=release)


def _short(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")
