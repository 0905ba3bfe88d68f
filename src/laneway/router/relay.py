"""The forwarding half of a client connection of the built-in router: routed request to response.

`router.proxy.ProxyProtocol`, the client half (it reads and routes requests, and enforces the
timeouts), is a `Relay`: one object per connection, split over two classes so each can be
read and changed alone, with no extra indirection per request. From the moment a request
is routed (`Exchange.pool` chosen, or `Exchange.error` set) the relay starts it when its
turn comes (`_start`): on a pooled keep-alive backend connection or a new one
(`router.upstream`), trying the pool's backends in turn and once more afresh when a pooled
connection turns out to have been closed. It is that connection's `ResponseSink`: it passes
the response head on (`router.headers`), reframes the body when the client needs it
chunked, splices the bytes after a 101, and answers with the router's own page
(`router.pages`) when nothing could be forwarded. It bumps the pool's counters (requests,
responses by status class, the router's own failures, latency from the request's end to the
response head) and sets laneway's bucket cookie on the response of a split route's fresh
client. Output to the client is collected in `_out` and written
once per event (`flush`). Must not block.
"""

from __future__ import annotations

import asyncio
import logging
from bisect import bisect_left
from collections import deque
from time import monotonic

from laneway.core.measurements import LATENCY_BOUNDS
from laneway.router import flow
from laneway.router.exchange import Exchange
from laneway.router.headers import rewrite_response
from laneway.router.pages import error_page
from laneway.router.state import RouterState
from laneway.router.upstream import UpstreamConnection

log = logging.getLogger("laneway.router")

LAST_CHUNK = b"0\r\n\r\n"

LINGER = 2.0
"""Seconds a connection answered before its request was read whole (431, 408, 504) is still
read, and what arrives thrown away, after the answer and a FIN: closing it at once, with
the client's bytes unread, would send a reset that can destroy the answer on its way."""


COOKIE_AGE = 30 * 24 * 3600
"""Seconds laneway's bucket cookie lasts: a client keeps its side of a split this long."""

_SET_COOKIE = b"set-cookie: %%s=%%d; Path=/; Max-Age=%d; HttpOnly; SameSite=Lax\r\n" % COOKIE_AGE


class _BadResponse(Exception):
    pass


class Relay:
    """A client connection's requests from routing to response, and what goes back to it."""

    def __init__(self, state: RouterState) -> None:
        # shared
        self.state = state
        self.options = state.options
        # per connection
        self.transport: asyncio.Transport | None = None
        self.gate: flow.ReadGate | None = None
        self.pipeline: deque[Exchange] = deque()  # [0] is the one being answered
        self.spliced: UpstreamConnection | None = None  # after a 101
        self.reading_done = False  # no further request will be read
        self.write_paused = False
        self.closed = False
        self.linger = False  # on closing, answer with a FIN and read on for a while: see LINGER
        self.lingering_since: float | None = None
        self.idle_since = state.now
        self._out: list[bytes] = []  # to the client, written at the end of each event

    # -- the exchange

    def _start(self, ex: Exchange) -> None:
        pool = ex.pool
        if pool is not None:
            pool.counters.requests += 1
        if ex.error is not None:
            self._respond(ex, *ex.error)
            return
        assert pool is not None
        ex.start = pool.take()
        backend = pool.backends[ex.start]
        upstreams = self.state.upstreams
        if not (upstreams.down and upstreams.is_down(backend)):
            conn = upstreams.acquire(backend)
            if conn is not None:
                self._attach(ex, conn)
                return
        ex.task = asyncio.get_running_loop().create_task(self._connect(ex))

    async def _connect(self, ex: Exchange, *, fresh: bool = False) -> None:
        """Connect to the pool's backends in turn; one that refuses is marked down for a while."""
        pool = ex.pool
        assert pool is not None
        upstreams = self.state.upstreams
        try:
            for backend in pool.failover_order(ex.start, upstreams.is_down):
                conn = None if fresh else upstreams.acquire(backend)
                if conn is None:
                    try:
                        conn = await upstreams.connect(backend)
                    except (OSError, TimeoutError) as exc:
                        upstreams.mark_down(backend)
                        log.info(
                            "replica %s:%d of %s: cannot connect (%s)",
                            backend.host,
                            backend.port,
                            ex.target.route.hostname if ex.target else "?",
                            exc or type(exc).__name__,
                        )
                        continue
                if self.closed or not self.pipeline or self.pipeline[0] is not ex:
                    conn.release()
                    return
                self._attach(ex, conn)
                return
            if not self.closed and self.pipeline and self.pipeline[0] is ex:
                self._respond(ex, 502, "No replica could be reached" + ex.describe() + ".")
        except Exception:  # a bug here must not leave the client hanging
            log.exception("router: connecting a request to a replica failed")
            if not self.closed:
                self._abort()
        finally:
            ex.task = None
            self.flush()

    def _attach(self, ex: Exchange, conn: UpstreamConnection) -> None:
        ex.upstream = conn
        conn.sink = self
        conn.no_body = ex.method == b"HEAD"
        conn.received = False
        conn.last_read = self.state.now
        if ex.request_done:
            ex.sent = monotonic()
        if self.write_paused and conn.gate is not None:
            conn.gate.pause(flow.PEER_FULL)
        if ex.body:
            conn.send(ex.head + b"".join(ex.body))
            ex.body = []
            ex.buffered = 0
            assert self.gate is not None
            self.gate.resume(flow.WAITING)
        else:
            conn.send(ex.head)

    def _to_upstream(self, ex: Exchange, data: bytes) -> None:
        conn = ex.upstream
        if conn is not None:
            conn.send(data)
        elif not ex.response_done and ex.error is None:
            ex.body.append(data)
            ex.buffered += len(data)
            if ex.buffered > flow.BUFFER_LIMIT:
                assert self.gate is not None
                self.gate.pause(flow.WAITING)

    def _respond(self, ex: Exchange, status: int, message: str) -> None:
        """Answer with the router's own page instead of a backend's response."""
        if ex.pool is not None:
            if status >= 500:
                ex.pool.counters.errors += 1
            else:
                ex.pool.counters.status(status)
        if self.state.draining:
            ex.keep_alive = False
        ex.status = status
        self._out.append(
            error_page(
                status,
                message,
                keep_alive=ex.keep_alive,
                http10=ex.http10,
                head_only=ex.method == b"HEAD",
            )
        )
        ex.response_started = ex.response_done = True
        if ex.request_done:
            self._finish(ex)

    def _fail(self, ex: Exchange, status: int, message: str) -> None:
        """The backend side of `ex` failed: a page if nothing was sent yet, else cut the client."""
        self._drop_upstream(ex)
        if ex.response_started:
            if ex.pool is not None and ex.status < 500:
                ex.pool.counters.errors += 1  # the client got a head, then a broken body
            log.info("response cut short%s: %s", ex.describe(), message)
            self._abort()
        else:
            self._respond(ex, status, message)

    def _drop_upstream(self, ex: Exchange) -> None:
        conn = ex.upstream
        if conn is not None:
            ex.upstream = None
            conn.close()
        assert self.gate is not None
        self.gate.resume(flow.PEER_FULL)

    def _finish(self, ex: Exchange) -> None:
        self.pipeline.popleft()
        if not ex.keep_alive:
            self._close()
            return
        self.idle_since = self.state.now
        gate = self.gate
        assert gate is not None
        if gate.reasons:
            gate.resume(flow.WAITING)
        if self.pipeline:
            self._start(self.pipeline[0])
        elif self.state.draining:
            self._close()

    # -- ResponseSink: what the backend connection reports

    def response_head(
        self,
        conn: UpstreamConnection,
        status: int,
        reason: bytes,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        ex = self.pipeline[0]
        if status == 101 and not ex.upgrade:
            raise _BadResponse("101 Switching Protocols to a request without Upgrade")
        if status < 200 and status != 101 and ex.http10:
            return  # HTTP/1.0 clients do not expect interim responses
        out, length, chunked, upgrade = rewrite_response(status, reason, headers)
        if status < 200:
            if status == 101:
                ex.response_started = True
                ex.status = 101
                self._count(ex, status)
                if upgrade is not None:
                    out += (b"connection: upgrade\r\nupgrade: ", upgrade, b"\r\n")
            out.append(b"\r\n")
            self._out.append(b"".join(out))
            return
        ex.status = status
        self._count(ex, status)
        if ex.bucket is not None:
            split = ex.target.split if ex.target is not None else None
            if split is not None:
                out.append(_SET_COOKIE % (split.cookie, ex.bucket))
        if not (length or ex.method == b"HEAD" or status == 204 or status == 304):
            ex.until_eof = not chunked
            if ex.http10:
                ex.keep_alive = False  # the body ends when the connection does
            else:
                ex.rechunk = True
                out.append(b"transfer-encoding: chunked\r\n")
        if self.state.draining:
            ex.keep_alive = False
        if not ex.keep_alive:
            out.append(b"connection: close\r\n\r\n")
        elif ex.http10:
            out.append(b"connection: keep-alive\r\n\r\n")
        else:
            out.append(b"\r\n")
        ex.response_started = True
        self._out.append(b"".join(out))

    def _count(self, ex: Exchange, status: int) -> None:
        """A replica's response head: its status class, and the time since the request's end."""
        pool = ex.pool
        assert pool is not None
        counters = pool.counters
        index = status // 100 - 1
        counters.statuses[index if index < 5 else 4] += 1
        if ex.sent:
            seconds = monotonic() - ex.sent
            counters.latency[bisect_left(LATENCY_BOUNDS, seconds)] += 1
            counters.latency_sum += seconds

    def response_body(self, data: bytes) -> None:
        if self.pipeline[0].rechunk:
            self._out.append(b"%x\r\n%b\r\n" % (len(data), data))
        else:
            self._out.append(data)

    def response_complete(self, conn: UpstreamConnection, keep_alive: bool) -> None:
        ex = self.pipeline[0]
        if ex.rechunk:
            self._out.append(LAST_CHUNK)
        ex.response_done = True
        ex.upstream = None
        gate = self.gate
        assert gate is not None
        if gate.reasons:
            gate.resume(flow.PEER_FULL)
        if keep_alive and ex.request_done and not ex.upgrade:
            conn.release()
        else:
            conn.close()
        if ex.request_done:
            self._finish(ex)

    def response_upgraded(self, conn: UpstreamConnection, rest: bytes) -> None:
        self.spliced = conn
        if rest:
            self._out.append(rest)

    def spliced_data(self, data: bytes) -> None:
        self._out.append(data)

    def upstream_lost(self, conn: UpstreamConnection, error: str | None) -> None:
        if self.spliced is conn:
            self._close()
            return
        if not self.pipeline or self.pipeline[0].upstream is not conn:
            return
        ex = self.pipeline[0]
        if error is None and ex.response_started and ex.until_eof:
            ex.upstream = None  # a body delimited by the connection's end: complete
            self.response_complete(conn, False)
            return
        if error is None and not (conn.received or ex.response_started):
            if conn.reused and ex.retryable and not ex.retried:
                # A pooled connection the replica had closed meanwhile: once more, afresh.
                ex.retried = True
                self._drop_upstream(ex)
                ex.task = asyncio.get_running_loop().create_task(self._connect(ex, fresh=True))
                return
            error = "the replica closed the connection without answering"
        self._fail(ex, 502, (error or "the replica closed the connection") + ex.describe())

    def flush(self) -> None:
        out = self._out
        if out:
            if not self.closed and self.transport is not None:
                self.transport.write(b"".join(out))
            out.clear()

    # -- closing

    def _close(self) -> None:
        self.reading_done = True
        self.flush()
        transport = self.transport
        if transport is None:
            return
        if self.linger and self.lingering_since is None and transport.can_write_eof():
            self.lingering_since = self.state.now
            transport.write_eof()  # after what is buffered; reading goes on, into nothing
            if self.gate is not None:
                self.gate.resume(flow.PEER_FULL)
                self.gate.resume(flow.WAITING)
        else:
            transport.close()

    def _abort(self) -> None:
        self.reading_done = True
        self._out.clear()
        if self.transport is not None:
            self.transport.abort()
