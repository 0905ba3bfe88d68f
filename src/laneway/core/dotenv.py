r"""Config as a dotenv file that both python-dotenv and a POSIX shell (`set -a; . ./.env`)
read back exactly. Pure.

The two agree on little. In single quotes a shell takes everything literally and cannot hold
a `'`, while python-dotenv reads `\\` and `\'` as escapes. In double quotes a shell expands
`$` and backquotes, whose escapes python-dotenv keeps as they are. python-dotenv expands
`${NAME}` in either quoting, and pairs a backslash before a closing quote with it. So a value
is single-quoted where it has no `'` and no two backslashes in a row, else double-quoted
(escaping `\` and `"`) where it has no `$` and no backquote. Values with no form that both
read alike (those, a `${`, a trailing backslash, a carriage return, which python-dotenv's
universal newlines turn into a line feed) are left out, and said so.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def quote(value: str) -> str | None:
    """`value` quoted for both readers, or None where no quoting reads back the same."""
    if "\r" in value or "${" in value or value.endswith("\\"):
        return None
    if "'" not in value and "\\\\" not in value:
        return f"'{value}'"
    if "$" not in value and "`" not in value:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return None


@dataclass(frozen=True)
class Dotenv:
    text: str
    unquotable: list[str] = field(default_factory=list)
    """Keys left out because their values have no form both readers take alike."""


def render(values: dict[str, str], *, left_out: list[str] | None = None) -> Dotenv:
    """`KEY='value'` lines in key order; a comment names the secrets `left_out` (not asked
    for) and the values that could not be written."""
    lines: list[str] = []
    unquotable: list[str] = []
    if left_out:
        lines.append(
            f"# secrets left out: {', '.join(sorted(left_out))} "
            "(`laneway config pull --secrets` includes them)"
        )
    for key in sorted(values):
        quoted = quote(values[key])
        if quoted is None:
            unquotable.append(key)
        else:
            lines.append(f"{key}={quoted}")
    if unquotable:
        lines.append(
            f"# left out, no quoting reads back the same in sh and python-dotenv: "
            f"{', '.join(unquotable)}"
        )
    return Dotenv("".join(line + "\n" for line in lines), unquotable)
