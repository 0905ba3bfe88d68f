"""`laneway logs --grep` patterns: Python's regular expression syntax, compiled with `regex`,
whose matching takes a time limit (api/logs.py), so a pattern that backtracks without end
cannot hold the server. Pure."""

from __future__ import annotations

import regex

from laneway.errors import InvalidInput

MAX_PATTERN = 200
"""Characters of a pattern."""


def compile_pattern(pattern: str) -> regex.Pattern[str]:
    """A pattern, or a clear error naming what is wrong with it."""
    if len(pattern) > MAX_PATTERN:
        raise InvalidInput(f"grep: pattern of {len(pattern)} characters; at most {MAX_PATTERN}")
    try:
        return regex.compile(pattern)
    except regex.error as exc:  # its text says what and at which position
        raise InvalidInput(f"grep: {pattern!r} is not a valid regular expression: {exc}") from None
