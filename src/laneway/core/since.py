"""`--since` of `laneway logs`: a duration back from now (`30s`, `10m`, `2h`, `1d`, `1h30m`) or
an ISO 8601 timestamp. Pure: the caller passes the time it calls now."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from laneway.errors import InvalidInput

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DURATION = re.compile(r"^(?:\d{1,9}[smhd])+$")
PART = re.compile(r"(\d+)([smhd])")
MAX_SECONDS = 3650 * 86400
MAX_TEXT = 64


def duration(text: str) -> float | None:
    """Seconds of a duration such as `1h30m`, or None if `text` is not one."""
    if not DURATION.match(text):
        return None
    return float(sum(int(n) * UNITS[unit] for n, unit in PART.findall(text)))


def parse(text: str, *, now: float) -> float:
    """The epoch time `text` names: `now` less a duration, or a timestamp (UTC unless it
    says its offset)."""
    text = text.strip()
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"since: {len(text)} characters; expected a duration or a timestamp")
    seconds = duration(text)
    if seconds is not None:
        if seconds > MAX_SECONDS:
            raise InvalidInput(f"since {text}: at most {MAX_SECONDS // 86400}d back")
        return now - seconds
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"since {text!r}: expected a duration such as 30s, 10m, 2h, 1d, "
            "or a timestamp such as 2026-12-07T14:30:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
