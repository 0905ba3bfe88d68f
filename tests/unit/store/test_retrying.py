"""store/retrying.py: a lost race is run again, so many times, and nothing else is."""

from __future__ import annotations

import pytest

from laneway.errors import Conflict
from laneway.store import retrying


def test_a_lost_race_is_run_again_until_it_wins():
    calls = []

    def attempt() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise retrying.LostRace("store: a concurrent change won")
        return "won"

    assert retrying.run(attempt, attempts=5) == "won"
    assert len(calls) == 3


def test_it_gives_up_with_the_last_lost_race_a_conflict():
    calls = []

    def attempt() -> None:
        calls.append(1)
        raise retrying.LostRace(f"lost {len(calls)}")

    with pytest.raises(Conflict, match="lost 4"):
        retrying.run(attempt, attempts=4)
    assert len(calls) == 4


def test_other_errors_are_not_run_again():
    calls = []

    def attempt() -> None:
        calls.append(1)
        raise Conflict("version 3, expected 2")

    with pytest.raises(Conflict, match="expected 2"):
        retrying.run(attempt, attempts=5)
    assert len(calls) == 1
