"""The store's transactions and its one retry policy, used by `Store` and `FlagStore`.

A transaction can lose a race to a concurrent writer: a unique key inserted first
(IntegrityError), PostgreSQL's serialization failure or deadlock (SQLSTATE 40001, 40P01),
SQLite's "database is locked" or "busy". That is a `LostRace`, a `Conflict` that running the
whole transaction again may resolve; `run` does so (tenacity) after a short random wait.
Any other database error is `Unavailable`. SQLAlchemy's exceptions are translated here and
never leave `store/`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import tenacity
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from laneway.errors import Conflict, Unavailable

T = TypeVar("T")

LOST_RACE_SQLSTATES = {"40001", "40P01"}  # PostgreSQL: serialization failure, deadlock


class LostRace(Conflict):
    """A concurrent writer changed the same rows first; the whole transaction may be run
    again (`run`). Left unretried, it is a Conflict for the caller."""


@contextmanager
def transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction, committed at the end of the block, or rolled back with its error
    translated: `LostRace` or `Unavailable`."""
    try:
        with sessions.begin() as session:
            yield session
    except IntegrityError as exc:
        raise LostRace(f"store: a concurrent change won: {exc.orig}") from None
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) in LOST_RACE_SQLSTATES or _locked(exc):
            raise LostRace(f"store: a concurrent change won: {exc.orig}") from None
        raise Unavailable(f"store: {exc.orig}") from None


def _locked(exc: OperationalError) -> bool:
    text = str(exc.orig).lower()
    return "database is locked" in text or "database is busy" in text


def run(attempt: Callable[[], T], *, attempts: int) -> T:
    """`attempt()`, one whole transaction, run again while it loses races, at most
    `attempts` times in all, each time after a random wait of up to 1, 2, 4… ms (at most
    50 ms: racers spread out instead of meeting again); the last LostRace is raised."""
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(LostRace),
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_random_exponential(multiplier=0.001, max=0.05),
        reraise=True,
    )
    return retrying(attempt)
