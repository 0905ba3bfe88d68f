"""The built-in router's data plane: one asyncio protocol per client connection.

`router.server` makes a `ProxyProtocol` for each accepted connection, all sharing one
`RouterState`. httptools parses requests and calls back; the Host is looked up once per
request, in `on_headers_complete`, in the current `RouteMap` (swapped whole on reload, so no
lock). The request head is rewritten (`router.headers`: hop-by-hop headers dropped,
X-Forwarded-* set) and sent over a pooled keep-alive backend connection (`router.upstream`);
bodies stream both ways a chunk at a time under `router.flow` backpressure, never held whole.
Requests on a connection are answered in order (a pipelined one waits its turn), each an
`Exchange` (`router.exchange`). After a 101 the bytes are spliced both ways. Failures become
short pages (`router.pages`): 404 no such host, 503 no healthy replica, 502 no replica
reachable or a broken response, 504 the replica took too long; never a hang.
Must not block: no file or DNS I/O here, and nothing per request that a table swap can do.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import cast

import httptools

from laneway.core.routing import RoutingTable
from laneway.router import flow
from laneway.router.exchange import Exchange
from laneway.router.headers import rewrite_request, rewrite_response
from laneway.router.pages import error_page
from laneway.router.types import CounterKey, PoolCounters, ProxyOptions, RouteMap
from laneway.router.upstream import UpstreamConnection, UpstreamPools

log = logging.getLogger("laneway.router")

# Sent again on a fresh connection when a pooled one turns out to have been closed meanwhile.
_RETRYABLE_METHODS = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})
_LAST_CHUNK = b"0\r\n\r\n"


class _Stop(Exception):
    """Raised from a parser callback: the connection reads no further requests."""


class _BadResponse(Exception):
    pass


class RouterState:
    """What every connection shares: the current table, backend pools, counters, the clock."""

    def __init__(
        self, table: RoutingTable | None = None, *, options: ProxyOptions | None = None
    ) -> None:
        self.options = options or ProxyOptions()
        self.counters: dict[CounterKey, PoolCounters] = {}
        self.routes = RouteMap(table or RoutingTable(), self.counters)
        self.upstreams = UpstreamPools(
            max_idle=self.options.max_idle_per_backend,
            idle_ttl=self.options.idle_ttl,
            connect_timeout=self.options.connect_timeout,
            down_for=self.options.down_for,
        )
        self.connections: set[ProxyProtocol] = set()
        self.draining = False
        self.now = time.monotonic()  # coarse: advanced by `tick`

    @property
    def table(self) -> RoutingTable:
        return self.routes.table

    def set_table(self, table: RoutingTable) -> None:
        """Swap the table whole; counters of (hostname, release) pairs it no longer has go."""
        routes = RouteMap(table, self.counters)
        live = {
            (target.route.hostname, pool.release)
            for target in routes.targets.values()
            for pool in target.pools
        }
        for key in [key for key in self.counters if key not in live]:
            del self.counters[key]
        self.routes = routes

    def tick(self, now: float | None = None) -> None:
        """Advance the clock, expire idle backend connections, enforce the timeouts."""
        now = time.monotonic() if now is None else now
        self.now = now
        self.upstreams.sweep(now)
        for connection in list(self.connections):
            connection.tick(now)


class ProxyProtocol(asyncio.Protocol):
    """One client connection: parses its requests and proxies each to a backend."""

    def __init__(self, state: RouterState) -> None:
        # shared
        self.state = state
        self.options = state.options
        # per connection
        self.transport: asyncio.Transport | None = None
        self.gate: flow.ReadGate | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.client_ip = b""
        self.pipeline: deque[Exchange] = deque()  # [0] is the one being answered
        self.current: Exchange | None = None  # the request being read
        self.spliced: UpstreamConnection | None = None  # after a 101
        self.raw = False  # the client's bytes are no longer HTTP (Upgrade)
        self.reading_done = False  # no further request will be read
        self.write_paused = False
        self.closed = False
        self.idle_since = state.now
        self._out: list[bytes] = []  # to the client, written at the end of each event
        # per request being read
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._in_head = False
        self._head_bytes = 0  # of reads that ended inside the head

    # -- asyncio.Protocol, client side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.gate = flow.ReadGate(self.transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.client_ip = str(peer[0]).encode()
        self.state.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.state.connections.discard(self)
        if self.spliced is not None:
            self.spliced.close()
        for ex in self.pipeline:
            if ex.upstream is not None:
                ex.upstream.close()
                ex.upstream = None
        self.pipeline.clear()
        self._out.clear()

    def data_received(self, data: bytes) -> None:
        if self.raw:
            self._forward_raw(data)
            return
        if self.reading_done:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self.raw = True
            rest = data[upgrade.args[0] :]
            if rest:
                self._forward_raw(rest)
        except httptools.HttpParserError as exc:
            self._bad_request(exc)
        else:
            if self._in_head:  # a head still incomplete after this read: bounded, like any buffer
                self._head_bytes += len(data)
                if self._head_bytes > self.options.max_head_bytes:
                    self._bad_request(None, (431, "The request head is too large."))
        self.flush()

    def eof_received(self) -> bool | None:
        if self.spliced is not None:
            transport = self.spliced.transport
            if transport is not None and transport.can_write_eof():
                transport.write_eof()
                return True
            return None
        # Taken as the client going away (as nginx does, unlike HAProxy's default): requests
        # under way are abandoned and their backend connections closed.
        return None

    def pause_writing(self) -> None:
        self.write_paused = True
        conn = self._upstream()
        if conn is not None and conn.gate is not None:
            conn.gate.pause(flow.PEER_FULL)

    def resume_writing(self) -> None:
        self.write_paused = False
        conn = self._upstream()
        if conn is not None and conn.gate is not None:
            conn.gate.resume(flow.PEER_FULL)

    def _upstream(self) -> UpstreamConnection | None:
        if self.spliced is not None:
            return self.spliced
        return self.pipeline[0].upstream if self.pipeline else None

    # -- httptools callbacks, requests

    def on_message_begin(self) -> None:
        if self.reading_done:
            raise _Stop
        self._url = b""
        self._headers = []
        self._in_head = True
        self._head_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        parser = self.parser
        ex = Exchange(
            parser.get_method(),
            parser.should_keep_alive() and not self.state.draining,
            parser.get_http_version() == "1.0",
            parser.should_upgrade(),
        )
        if ex.upgrade:
            ex.keep_alive = False  # whatever the answer, the client's bytes are raw from here
        self.current = ex
        headers, self._headers = self._headers, []  # trailers, if any, land in the new list
        host = rewrite_request(ex, self._url, self.client_ip, headers)
        if ex.error is not None:
            pass
        elif ex.method == b"CONNECT":
            ex.error = (405, "CONNECT is not supported by the laneway router.")
        else:
            target = self.state.routes.lookup(host) if host is not None else None
            if target is None:
                where = repr(host.decode("latin-1")) if host is not None else "this address"
                ex.error = (404, f"No environment is served at {where}.")
            else:
                ex.target = target
                ex.pool = target.pick()
                if ex.pool is None:
                    ex.error = (503, target.unavailable_message)
        ex.retryable = not ex.has_body and ex.method in _RETRYABLE_METHODS
        self.pipeline.append(ex)
        if len(self.pipeline) == 1:
            self._start(ex)
        else:
            assert self.gate is not None
            self.gate.pause(flow.WAITING)

    def on_body(self, body: bytes) -> None:
        ex = self.current
        assert ex is not None
        if ex.chunked:
            body = b"%x\r\n%b\r\n" % (len(body), body)
        self._to_upstream(ex, body)

    def on_message_complete(self) -> None:
        ex = self.current
        assert ex is not None
        ex.request_done = True
        if ex.chunked:
            self._to_upstream(ex, _LAST_CHUNK)
        if ex.upstream is not None:
            ex.upstream.last_read = self.state.now  # the read timeout runs from here
        if not ex.keep_alive:
            self.reading_done = True
        if ex.response_done:
            self._finish(ex)

    # -- the exchange

    def _start(self, ex: Exchange) -> None:
        if ex.error is not None:
            self._respond(ex, *ex.error)
            return
        pool = ex.pool
        assert pool is not None
        pool.counters.requests += 1
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
                        pool.counters.upstream_errors += 1
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
                # each refusal is counted above as an upstream error
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

    def _forward_raw(self, data: bytes) -> None:
        if self.spliced is not None:
            self.spliced.send(data)
        elif self.current is not None:
            self._to_upstream(self.current, data)

    def _respond(self, ex: Exchange, status: int, message: str) -> None:
        """Answer with the router's own page instead of a backend's response."""
        if ex.pool is not None and status >= 500:
            ex.pool.counters.responses_5xx += 1
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
        if ex.pool is not None:
            ex.pool.counters.upstream_errors += 1
        self._drop_upstream(ex)
        if ex.response_started:
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
                if upgrade is not None:
                    out += (b"connection: upgrade\r\nupgrade: ", upgrade, b"\r\n")
            out.append(b"\r\n")
            self._out.append(b"".join(out))
            return
        ex.status = status
        if status >= 500:
            assert ex.pool is not None
            ex.pool.counters.responses_5xx += 1
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

    def response_body(self, data: bytes) -> None:
        if self.pipeline[0].rechunk:
            self._out.append(b"%x\r\n%b\r\n" % (len(data), data))
        else:
            self._out.append(data)

    def response_complete(self, conn: UpstreamConnection, keep_alive: bool) -> None:
        ex = self.pipeline[0]
        if ex.rechunk:
            self._out.append(_LAST_CHUNK)
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

    # -- timeouts and closing

    def tick(self, now: float) -> None:
        if self.pipeline:
            ex = self.pipeline[0]
            conn = ex.upstream
            if (
                conn is not None
                and self.spliced is None
                and ex.request_done
                and not self.write_paused
                and now - conn.last_read > self.options.read_timeout
            ):
                self._fail(ex, 504, "The replica did not answer in time" + ex.describe() + ".")
        elif self.state.draining or now - self.idle_since > self.options.keep_alive_timeout:
            self._close()
        self.flush()

    def _bad_request(
        self, exc: httptools.HttpParserError | None, answer: tuple[int, str] | None = None
    ) -> None:
        cause = exc.__context__ if exc is not None else None
        if isinstance(cause, _Stop):
            return
        if answer is not None:
            status, message = answer
        elif cause is not None:
            log.error("router: request handling failed", exc_info=cause)
            status, message = 500, "The router failed to handle this request."
        else:
            status, message = 400, f"Malformed request: {exc}."
        self.reading_done = True
        ex = self.current
        if ex is None or ex.request_done:
            ex = Exchange(b"GET", False, False, False)
            ex.request_done = True
            ex.error = (status, message)
            self.pipeline.append(ex)
            if len(self.pipeline) == 1:
                self._start(ex)
            return
        # The request being read is broken: it gets the error instead of a backend's answer.
        ex.request_done = True
        ex.keep_alive = False
        if ex is not self.pipeline[0]:
            ex.error = (status, message)
        elif ex.response_started:
            self._abort()
        else:
            self._drop_upstream(ex)
            self._respond(ex, status, message)

    def _close(self) -> None:
        self.reading_done = True
        self.flush()
        if self.transport is not None:
            self.transport.close()

    def _abort(self) -> None:
        self.reading_done = True
        self._out.clear()
        if self.transport is not None:
            self.transport.abort()
