"""One request on a client connection of the built-in router, and the response to it.

`router.proxy` makes an `Exchange` in `on_headers_complete` and keeps it in its connection's
pipeline until `router.relay` has written the response; `router.headers` fills in the head
the backend gets.
A plain record with slots: no behaviour beyond describing itself, no I/O.
"""

from __future__ import annotations

import asyncio

from laneway.router.table import PoolTarget, Target
from laneway.router.upstream import UpstreamConnection


class Exchange:
    """One request on a client connection and the response to it."""

    __slots__ = (
        "method",
        "keep_alive",
        "http10",
        "upgrade",
        "target",
        "pool",
        "error",
        "head",
        "chunked",
        "has_body",
        "retryable",
        "retried",
        "start",
        "upstream",
        "body",
        "buffered",
        "request_done",
        "response_started",
        "response_done",
        "rechunk",
        "until_eof",
        "status",
        "task",
        "bucket",
        "sent",
    )

    def __init__(self, method: bytes, keep_alive: bool, http10: bool, upgrade: bool) -> None:
        self.method = method
        self.keep_alive = keep_alive
        self.http10 = http10
        self.upgrade = upgrade
        self.target: Target | None = None
        self.pool: PoolTarget | None = None
        self.error: tuple[int, str] | None = None  # answered by the router itself
        self.head = b""  # the request head as the backend gets it
        self.chunked = False
        self.has_body = False
        self.retryable = False
        self.retried = False
        self.start = 0  # index of the first backend tried in the pool
        self.upstream: UpstreamConnection | None = None
        self.body: list[bytes] = []  # request bytes waiting for a backend connection
        self.buffered = 0
        self.request_done = False
        self.response_started = False
        self.response_done = False
        self.rechunk = False  # the client gets the body chunked
        self.until_eof = False  # the backend ends the body by closing
        self.status = 0
        self.task: asyncio.Task[None] | None = None
        self.bucket: int | None = None  # drawn for a client of a split route: set in its cookie
        self.sent = 0.0  # time.monotonic() when the request's end went to the backend

    def describe(self) -> str:
        if self.target is None:
            return ""
        route = self.target.route
        return f' (environment "{route.environment}" of app "{route.app}")'
