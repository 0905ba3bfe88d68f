"""`laneway logs --since`: durations back from now and timestamps."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from laneway.core.since import parse
from laneway.errors import InvalidInput

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("10m", 600), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("0s", 0)],
)
def test_durations_count_back_from_now(text: str, seconds: int) -> None:
    assert parse(text, now=NOW) == NOW - seconds


def test_timestamps_are_utc_unless_they_say_otherwise() -> None:
    utc = datetime(2026, 12, 7, 14, 30, tzinfo=UTC).timestamp()
    assert parse("2026-12-07T14:30:00Z", now=NOW) == utc
    assert parse("2026-12-07T14:30:00", now=NOW) == utc
    assert parse("2026-12-07 16:30:00+02:00", now=NOW) == utc


@pytest.mark.parametrize("text", ["10", "10min", "-5m", "m", "yesterday", "2026-13-01", "x" * 65])
def test_anything_else_is_refused_with_the_forms_it_takes(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse(text, now=NOW)
    assert "since" in caught.value.message


def test_a_duration_is_bounded() -> None:
    with pytest.raises(InvalidInput, match="at most 3650d"):
        parse("999999999d", now=NOW)
