"""Connections from the built-in router to backends, kept alive and pooled per backend.

`router.relay` borrows a connection for one request (`UpstreamPools.acquire`, or `connect`
when none is idle), binds itself as the connection's `sink`, and gives it back with
`release` when the response is complete and both sides allow reuse; anything else closes
it. A connection parses responses with `httptools.HttpResponseParser` and hands each piece
to its sink; after a `101 Switching Protocols` it passes bytes through unparsed. The pools
also remember backends that refused a connection (passive health), so that the relay tries
them last for a short while. Nothing here knows about routes or the client side.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, cast

import httptools

from laneway.core.routing import Backend
from laneway.router import flow


class ResponseSink(Protocol):
    """The client side of a proxied exchange, as an upstream connection sees it."""

    gate: flow.ReadGate | None

    def response_head(
        self,
        conn: UpstreamConnection,
        status: int,
        reason: bytes,
        headers: list[tuple[bytes, bytes]],
    ) -> None: ...

    def response_body(self, data: bytes) -> None: ...

    def response_complete(self, conn: UpstreamConnection, keep_alive: bool) -> None: ...

    def response_upgraded(self, conn: UpstreamConnection, rest: bytes) -> None: ...

    def spliced_data(self, data: bytes) -> None: ...

    def upstream_lost(self, conn: UpstreamConnection, error: str | None) -> None:
        """The connection ended: `error` says why, None if the replica just closed it."""

    def flush(self) -> None: ...


class _SkipBody(Exception):
    """Raised from a parser callback to stop parsing after the head of a response to HEAD."""


class _Unexpected(Exception):
    """Raised from a parser callback when a response arrives that nobody asked for."""


class UpstreamConnection(asyncio.Protocol):
    """One keep-alive connection to one backend, serving one request at a time."""

    def __init__(self, pools: UpstreamPools, backend: Backend) -> None:
        self.pools = pools
        self.backend = backend
        self.key = (backend.host, backend.port)  # hashed in C, unlike the dataclass
        self.transport: asyncio.Transport | None = None
        self.gate: flow.ReadGate | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.sink: ResponseSink | None = None
        self.closed = False
        self.reused = False  # served a request before the current one
        self.spliced = False  # after 101: raw bytes both ways
        self.idle_since = 0.0
        self.write_paused = False  # the backend takes no more for now
        self.stall_since = 0.0  # and since when, from what size, its send buffer has not shrunk
        self.stall_size = 0
        # per request
        self.no_body = False  # the request was HEAD: a response has no body whatever it says
        self.received = False  # a byte of the response has arrived
        self.last_read = 0.0
        # per response
        self._status = 0
        self._reason = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_keep_alive: bool | None = None

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.gate = flow.ReadGate(self.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pools.forget(self)
        sink, self.sink = self.sink, None
        if sink is not None:
            sink.upstream_lost(self, None)
            sink.flush()

    def data_received(self, data: bytes) -> None:
        sink = self.sink
        if sink is None:  # an idle connection has nothing to say; whatever it is, drop it
            self.close()
            return
        self.last_read = self.pools.now
        if self.spliced:
            sink.spliced_data(data)
            sink.flush()
            return
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self.spliced = True
            sink.response_upgraded(self, data[upgrade.args[0] :])
        except httptools.HttpParserError as exc:
            keep_alive = self._head_keep_alive
            if self.sink is not sink:  # bytes after a complete response: nobody asked for them
                self.close()
            elif keep_alive is None:
                self._fail(sink, f"invalid response from the replica ({_cause(exc)})")
            else:
                # A response to HEAD ends with its head. Reuse the connection only if the head
                # ended this read, which it does unless the replica sent more than it should.
                self._head_keep_alive = None
                self.parser = httptools.HttpResponseParser(self)
                sink.response_complete(self, keep_alive and data.endswith(b"\r\n\r\n"))
        sink.flush()

    def eof_received(self) -> bool | None:
        return None  # close; connection_lost tells the sink

    def pause_writing(self) -> None:
        self.write_paused = True
        self.stall_since = self.pools.now
        assert self.transport is not None
        self.stall_size = self.transport.get_write_buffer_size()
        if self.sink is not None and self.sink.gate is not None:
            self.sink.gate.pause(flow.PEER_FULL)

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.sink is not None and self.sink.gate is not None:
            self.sink.gate.resume(flow.PEER_FULL)

    def stalled(self, now: float) -> float:
        """How long the paused send buffer to the backend has not shrunk (the send timeout)."""
        assert self.transport is not None
        size = self.transport.get_write_buffer_size()
        if size < self.stall_size:
            self.stall_since, self.stall_size = now, size
        return now - self.stall_since

    # -- httptools callbacks

    def on_message_begin(self) -> None:
        self._reason = b""
        self._headers = []

    def on_status(self, reason: bytes) -> None:
        self._reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        sink = self.sink
        if sink is None:
            raise _Unexpected
        status = self._status = self.parser.get_status_code()
        sink.response_head(self, status, self._reason, self._headers)
        if self.no_body and status >= 200:
            self._head_keep_alive = self.parser.should_keep_alive()
            raise _SkipBody

    def on_body(self, body: bytes) -> None:
        if self.sink is None:
            raise _Unexpected
        self.sink.response_body(body)

    def on_message_complete(self) -> None:
        sink = self.sink
        if sink is None:
            raise _Unexpected
        if self._status >= 200 and self._status != 101:
            sink.response_complete(self, self.parser.should_keep_alive())

    # -- used by the proxy

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def release(self) -> None:
        """Give the connection back to its pool (it closes if it cannot be reused)."""
        self.sink = None
        self.pools.release(self)

    def close(self) -> None:
        self.sink = None
        if not self.closed:
            self.closed = True
            self.pools.forget(self)
            if self.transport is not None:
                self.transport.close()

    def _fail(self, sink: ResponseSink, error: str) -> None:
        self.sink = None
        self.close()
        sink.upstream_lost(self, error)


def _cause(exc: BaseException) -> str:
    return str(exc.__context__ or exc) or type(exc).__name__


class UpstreamPools:
    """Idle connections per backend (most recent first), and backends recently refused."""

    def __init__(
        self, *, max_idle: int, idle_ttl: float, connect_timeout: float, down_for: float
    ) -> None:
        self.max_idle = max_idle
        self.idle_ttl = idle_ttl
        self.connect_timeout = connect_timeout
        self.down_for = down_for
        self.idle: dict[tuple[str, int], list[UpstreamConnection]] = {}  # by (host, port)
        self.down: dict[Backend, float] = {}  # backend -> monotonic time it may be tried again
        self.now = time.monotonic()  # coarse clock, advanced by the router's tick

    def acquire(self, backend: Backend) -> UpstreamConnection | None:
        idle = self.idle.get((backend.host, backend.port))
        while idle:
            conn = idle.pop()
            if not conn.closed and self.now - conn.idle_since < self.idle_ttl:
                conn.reused = True
                return conn
            conn.close()
        return None

    async def connect(self, backend: Backend) -> UpstreamConnection:
        """A new connection; raises OSError (or TimeoutError) if the backend cannot be reached."""
        loop = asyncio.get_running_loop()
        _, conn = await asyncio.wait_for(
            loop.create_connection(
                lambda: UpstreamConnection(self, backend), backend.host, backend.port
            ),
            self.connect_timeout,
        )
        self.down.pop(backend, None)
        return conn

    def release(self, conn: UpstreamConnection) -> None:
        transport = conn.transport
        idle = self.idle.get(conn.key)
        if idle is None:
            idle = self.idle[conn.key] = []
        if (
            conn.closed
            or transport is None
            or transport.is_closing()
            or transport.get_write_buffer_size()
            or len(idle) >= self.max_idle
        ):
            conn.close()
            return
        assert conn.gate is not None
        if conn.gate.reasons:
            conn.gate.resume(flow.PEER_FULL)  # idle, it must notice the backend closing
        conn.idle_since = self.now
        idle.append(conn)

    def idle_connections(self, backend: Backend) -> list[UpstreamConnection]:
        return list(self.idle.get((backend.host, backend.port), ()))

    def forget(self, conn: UpstreamConnection) -> None:
        idle = self.idle.get(conn.key)
        if idle and conn in idle:
            idle.remove(conn)

    def mark_down(self, backend: Backend) -> None:
        self.down[backend] = time.monotonic() + self.down_for

    def is_down(self, backend: Backend) -> bool:
        until = self.down.get(backend)
        if until is None:
            return False
        if until <= time.monotonic():
            del self.down[backend]
            return False
        return True

    def sweep(self, now: float) -> None:
        """Advance the clock; close idle connections past their time, forget old down marks."""
        self.now = now
        for key, idle in list(self.idle.items()):
            for conn in [c for c in idle if now - c.idle_since >= self.idle_ttl]:
                conn.close()
            if not idle:
                del self.idle[key]
        for backend in [b for b, until in self.down.items() if until <= now]:
            del self.down[backend]

    def close_all(self) -> None:
        for idle in list(self.idle.values()):
            for conn in list(idle):
                conn.close()
        self.idle.clear()
