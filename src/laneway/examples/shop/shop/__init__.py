"""shop: a small web service and worker sharing one PostgreSQL database.

It is the example app laneway runs; it knows nothing about laneway beyond the
environment variables it is given (PORT, DATABASE_URL, LANEWAY_*).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from psycopg import Connection
    from psycopg.rows import TupleRow

CONNECT_TIMEOUT = 3  # seconds to wait for the database server to answer a connect
STATEMENT_TIMEOUT_MS = 5000  # no query may hold a connection longer than this


def log(component: str, message: str) -> None:
    """One line on stdout, flushed at once so that a supervisor sees it as it happens."""
    print(f"{component}: {message}", flush=True)


def fail(component: str, message: str, code: int = 1) -> SystemExit:
    """A one-line error on stderr and the exit code to leave with: `raise fail(...)`."""
    print(f"{component}: {message}", file=sys.stderr, flush=True)
    return SystemExit(code)


def require_env(component: str, name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise fail(component, f"environment variable {name} is not set", code=2)
    return value


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (libpq's messages span several)."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def connect(url: str, component: str) -> Connection[TupleRow]:
    """An autocommit connection; callers open transactions where they need them."""
    import psycopg

    return psycopg.connect(
        url,
        autocommit=True,
        connect_timeout=CONNECT_TIMEOUT,
        application_name=f"shop-{component}",
        options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
    )
