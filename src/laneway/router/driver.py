"""The built-in router's driver: how the control plane hands it a routing table.

Called by the routing controller (`controllers/routes.py`). Its face is two verbs that the
HAProxy and Gateway API drivers will share: `apply(table)` makes the table the one to serve,
`verify(table)` says whether the data plane serves it yet. For the built-in router, `apply`
writes the table file atomically and sends the router process SIGHUP (the router also
notices the file on its own within half a second); the router answers by writing the
version it loaded to `<table file>.applied`, which `verify` reads. This module also owns
that file contract for `router.server`. Never raises because the router is down.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path

from laneway import errors
from laneway.core.measurements import Measurement
from laneway.core.routing import RoutingTable
from laneway.router.base import CounterKey


def applied_path(table_file: Path) -> Path:
    """Where the router writes the version of the table it serves."""
    return table_file.with_name(table_file.name + ".applied")


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` so that a reader sees the old file or the new, never half.

    Not fsynced: the table is derived state that the controller rewrites after a crash.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_applied(table_file: Path) -> int | None:
    """The table version the router last loaded, or None if it never said (or unreadable)."""
    try:
        return int(applied_path(table_file).read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None


class BuiltinRouterDriver:
    """Realizes a routing table on the built-in router (`python -m laneway.router`)."""

    def __init__(self, table_file: Path, *, pid: Callable[[], int | None]) -> None:
        self.table_file = Path(table_file)
        self._pid = pid

    def apply(self, table: RoutingTable) -> None:
        """Write the table for the router and tell it to load it now, if it runs."""
        try:
            self.table_file.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(self.table_file, table.to_json() + "\n")
        except OSError as exc:
            raise errors.Unavailable(
                f"cannot write the routing table {self.table_file}: {exc.strerror or exc}"
            ) from exc
        try:
            pid = self._pid()
        except Exception:  # the router's liveness is not this call's business to fail on
            pid = None
        if pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGHUP)

    def verify(self, table: RoutingTable) -> bool | None:
        """True if the router serves `table` (or a later one), False if an older one, None if
        it has not said."""
        applied = read_applied(self.table_file)
        if applied is None:
            return None
        return applied >= table.version

    def read_counters(self) -> dict[CounterKey, Measurement] | None:
        """Not served by the router yet: no counts (the canary work adds its socket)."""
        return None
