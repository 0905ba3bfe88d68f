"""Ports for replicas: leased in the store per (environment, generation, service, index),
chosen among those nothing on this machine listens on."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator

from laneway.controllers.context import Context


def lease(ctx: Context, environment_id: str, generation: int, service: str, index: int) -> int:
    """The replica's port: the one it holds, else a free one; a held port that something
    outside laneway took meanwhile is given up for another."""
    low, high = ctx.settings.port_range

    def take() -> int:
        candidates = free_ports(low, high, owner=ctx.settings.owner)
        return ctx.store.lease_port(
            environment_id, service, index, candidates, generation=generation
        ).port

    port = take()
    if not is_free(port):
        ctx.store.release_port(port)
        port = take()
    return port


def is_free(port: int) -> bool:
    """Whether a server could listen on the port now (TIME_WAIT leftovers do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(low: int, high: int, *, owner: str = "") -> Iterator[int]:
    """Candidate ports in the range that nothing on this machine is listening on.

    The scan starts at a place derived from the owner (the instance) and wraps around: two
    laneway instances with the same range each lease from their own store, and would
    otherwise race for the same first free port before either app has bound it."""
    size = high - low + 1
    start = int(hashlib.sha256(owner.encode()).hexdigest(), 16) % size if owner else 0
    for offset in range(size):
        port = low + (start + offset) % size
        if is_free(port):
            yield port
