"""Talking to a running HAProxy: its runtime API (the stats socket) and its request log.

Used by `router.haproxy`. `command` sends one runtime API command and returns the answer;
the parsers read `show info`, `show map`, `show servers state` and `show stat` into plain
values. `LatencyLog` binds the unix datagram socket that HAProxy logs each request to (one
line per request: backend, status, microseconds from the request's head to the response's)
and keeps a latency histogram per backend in a thread. OSError is the only error raised.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import socket
import threading
from pathlib import Path

from laneway.core.measurements import LATENCY_BOUNDS, Measurement, latency_bucket
from laneway.router import haproxy_config
from laneway.router.base import CounterKey

TIMEOUT = 2.0


def command(path: Path, line: str, *, timeout: float = TIMEOUT, master: bool = False) -> str:
    """One runtime API command on the socket at `path`; its whole answer. The master's
    socket answers once the command's end is signalled by closing our side."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(line.encode() + b"\n")
        if master:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", errors="replace")


def parse_info(text: str) -> dict[str, str]:
    """`show info`: `Name: value` lines."""
    info = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep:
            info[name.strip().lower()] = value.strip()
    return info


def parse_map(text: str) -> dict[str, str]:
    """`show map <file>`: `<entry id> <key> <value>` lines."""
    entries = {}
    for line in text.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0].startswith("0x"):
            entries[parts[1]] = parts[2]
    return entries


def parse_servers(text: str) -> set[tuple[str, str, int]]:
    """`show servers state`: (backend, address, port) of each server."""
    servers = set()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) > 18 and fields[0].isdigit() and fields[18].isdigit():
            servers.add((fields[1], fields[4], int(fields[18])))
    return servers


def _number(row: dict[str, str], name: str) -> int:
    value = row.get(name) or "0"
    return int(value) if value.isdigit() else 0


def parse_stat(text: str) -> dict[CounterKey, Measurement]:
    """`show stat`: a `Measurement` (without latency) per laneway backend.

    HAProxy counts the 503 or 504 it answers itself after a connect failure (`econ`) or a
    failed or late response (`eresp`) in `hrsp_5xx` too; those are laneway's `errors`, the
    rest of the 5xx came from the replicas."""
    rows = csv.DictReader(io.StringIO(text.lstrip("# ")))
    counts = {}
    for row in rows:
        if row.get("svname") != "BACKEND":
            continue
        key = haproxy_config.parse_backend_name(row.get("pxname") or "")
        if key is None:
            continue
        errors = _number(row, "econ") + _number(row, "eresp")
        statuses = [_number(row, f"hrsp_{n}xx") for n in range(1, 6)]
        statuses[4] = max(statuses[4] - errors, 0)
        counts[key] = Measurement(
            requests=_number(row, "req_tot"),
            statuses=(statuses[0], statuses[1], statuses[2], statuses[3], statuses[4]),
            errors=errors,
        )
    return counts


class LatencyLog:
    """The request log HAProxy sends to a unix datagram socket, read in a thread into a
    latency histogram per (hostname, release). A datagram HAProxy could not send (the
    socket's buffer full, or no reader bound) is lost: the histogram is a sample then."""

    BUFFER = 4 << 20

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._counts: dict[CounterKey, list[int]] = {}
        self._sums: dict[CounterKey, float] = {}
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        with contextlib.suppress(OSError):
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.BUFFER)
        self._sock.bind(str(path))
        os.chmod(path, 0o600)
        self._inode = os.stat(path).st_ino
        self._thread = threading.Thread(target=self._read, name="haproxy-log", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while True:
            try:
                datagram = self._sock.recv(2048)
            except OSError:
                return
            if not datagram:
                return
            self._count(datagram.decode("utf-8", errors="replace"))

    def _count(self, line: str) -> None:
        parts = line.split()
        if len(parts) != 3 or not parts[2].isdigit():
            return
        key = haproxy_config.parse_backend_name(parts[0])
        if key is None:
            return
        seconds = int(parts[2]) / 1e6
        with self._lock:
            counts = self._counts.setdefault(key, [0] * (len(LATENCY_BOUNDS) + 1))
            counts[latency_bucket(seconds)] += 1
            self._sums[key] = self._sums.get(key, 0.0) + seconds

    def histograms(self) -> dict[CounterKey, tuple[tuple[int, ...], float]]:
        with self._lock:
            return {key: (tuple(counts), self._sums[key]) for key, counts in self._counts.items()}

    def reset(self) -> None:
        """Forget what was counted: HAProxy started anew and counts from zero."""
        with self._lock:
            self._counts.clear()
            self._sums.clear()

    def close(self) -> None:
        """Stop the reader (a shut socket wakes it) and remove the socket if still ours."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)
        self._sock.close()
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self._inode:
                os.unlink(self.path)
