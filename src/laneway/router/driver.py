"""The built-in router's driver: how the control plane hands it a routing table.

Called by the routing controller (`controllers/routes.py`). Its face is two verbs that the
HAProxy and Gateway API drivers will share: `apply(table)` makes the table the one to serve,
`verify(table)` says whether the data plane serves it yet. For the built-in router, `apply`
writes the table file atomically and sends the router process SIGHUP (the router also
notices the file on its own within half a second); the router answers by writing the
version it loaded to `<table file>.applied`, which `verify` reads. `read_counters` asks the
router for its counts on the Unix socket `<table file>.sock` (JSON: its start time and a
`Measurement` per hostname and release). This module owns these file contracts for
`router.server`. Never raises because the router is down.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from laneway import errors
from laneway.core.measurements import Measurement
from laneway.core.routing import RoutingTable
from laneway.router.base import CounterKey, CounterSnapshot


def applied_path(table_file: Path) -> Path:
    """Where the router writes the version of the table it serves."""
    return table_file.with_name(table_file.name + ".applied")


def counters_path(table_file: Path) -> Path:
    """The Unix socket on which the router serves its counters (`read_snapshot`)."""
    return table_file.with_name(table_file.name + ".sock")


MAX_UNIX_PATH = 100
"""Unix socket paths longer than this (the kernel takes 107 bytes) are reached through the
directory's file descriptor (`unix_address`)."""


@contextlib.contextmanager
def unix_address(path: Path) -> Iterator[str]:
    """An address for binding or connecting to the Unix socket `path`: the path itself, or
    for a long one the same file through `/proc/self/fd` and its open directory."""
    if len(os.fsencode(path)) <= MAX_UNIX_PATH:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def snapshot_from_json(text: bytes) -> CounterSnapshot:
    """What the router's counters socket answers, read."""
    data = json.loads(text)
    return CounterSnapshot(
        started=float(data["started"]),
        counters={
            (str(item["hostname"]), str(item["release"])): Measurement.from_json(item)
            for item in data["counters"]
        },
    )


COUNTERS_TIMEOUT = 0.5
"""Seconds `read_snapshot` waits for the router, connecting and reading."""
MAX_SNAPSHOT = 16 << 20


def read_snapshot(table_file: Path, *, timeout: float = COUNTERS_TIMEOUT) -> CounterSnapshot | None:
    """Ask the router serving `table_file` for its counters; None if it cannot be asked
    (not running, not answering in time) or answers something unreadable. Blocking: call
    it from a thread when on an event loop."""
    chunks: list[bytes] = []
    size = 0
    try:
        with (
            unix_address(counters_path(table_file)) as address,
            socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock,
        ):
            sock.settimeout(timeout)
            sock.connect(address)
            while chunk := sock.recv(1 << 16):
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_SNAPSHOT:
                    return None
        return snapshot_from_json(b"".join(chunks))
    except (OSError, ValueError, KeyError, TypeError):
        return None


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
        """The router's counts per (hostname, release) since it started; None if it cannot
        be asked. Blocking (at most `COUNTERS_TIMEOUT`)."""
        snapshot = read_snapshot(self.table_file)
        return snapshot.counters if snapshot is not None else None

    def read_snapshot(self) -> CounterSnapshot | None:
        """The counts with the router's start time, to tell a restart. Blocking."""
        return read_snapshot(self.table_file)
