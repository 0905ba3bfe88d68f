"""The built-in router's client side: one asyncio protocol per client connection.

`router.server` makes a `ProxyProtocol` for each accepted connection, all sharing one
`RouterState` (`router.state`). httptools parses requests and calls back; the Host is matched
once per request, in `on_headers_complete`, in the current `RouteMap` (`router.table`,
swapped whole on reload, so no lock), which also picks the pool, and the request head is
rewritten (`router.headers`: hop-by-hop headers dropped, X-Forwarded-* set), both by
`router.dispatch`, into an `Exchange` (`router.exchange`) and handed to the forwarding half of the connection
(`router.relay`, which this class extends), which sends it over a pooled keep-alive backend
connection (`router.upstream`) and relays the response. Bodies stream both ways a chunk at
a time under `router.flow` backpressure, never held whole. Requests on a connection are
answered in order (a pipelined one waits its turn). After a 101 the bytes are spliced both
ways. Failures become short pages (`router.pages`): 400/431 a malformed request, 408 a
request that did not arrive in time, 404 no such host, 503 no healthy replica (or too many
connections), 502 no replica reachable or a broken response, 504 the replica took too long;
never a hang. The limits and timeouts (`ProxyOptions`) are enforced here, on the state's
twice-a-second tick; docs/router.md lists them. Must not block: no file or DNS I/O here,
and nothing per request that a table swap can do.
"""

from __future__ import annotations

import asyncio
import logging
from time import monotonic
from typing import cast

import httptools

from laneway.router import flow
from laneway.router.dispatch import dispatch
from laneway.router.exchange import Exchange
from laneway.router.headers import absolute_form
from laneway.router.pages import error_page
from laneway.router.relay import LAST_CHUNK, LINGER, Relay
from laneway.router.repeat import LastHead
from laneway.router.state import RouterState
from laneway.router.upstream import UpstreamConnection

log = logging.getLogger("laneway.router")

# Sent again on a fresh connection when a pooled one turns out to have been closed meanwhile.
_RETRYABLE_METHODS = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})


class _Stop(Exception):
    """Raised from a parser callback: the connection reads no further requests."""


class _Refuse(Exception):
    """Raised from a parser callback: the request gets this answer and the connection ends."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.answer = (status, message)


_HEAD_TOO_LARGE = (431, "The request head is too large.")


class ProxyProtocol(Relay, asyncio.Protocol):
    """One client connection: parses its requests and proxies each to a backend."""

    def __init__(self, state: RouterState) -> None:
        super().__init__(state)  # shared and per-connection state the relay uses too
        # per connection
        self.parser = httptools.HttpRequestParser(self)
        self.client_ip = b""
        self.current: Exchange | None = None  # the request being read
        self.raw = False  # the client's bytes are no longer HTTP (Upgrade)
        self.last_read = self.idle_since  # when the client's bytes last arrived (or were paused)
        self.head_since: float | None = self.idle_since  # a head being waited for, since then
        self.stall_since = 0.0  # the send timeout: since when, and from what size, the
        self.stall_size = 0  # paused send buffer to the client has not shrunk
        # per request being read
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._in_head = False
        self._read_len = 0  # of the read being parsed
        self._head_reads = 0  # bytes of the reads that ended inside the head being read,
        self._head_first = 0  # the first of which may hold the end of an earlier request
        self.last = LastHead()  # what the last head came to, for a client that repeats it

    # -- asyncio.Protocol, client side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.gate = flow.ReadGate(self.transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.client_ip = str(peer[0]).encode()
        state = self.state
        if len(state.connections) >= self.options.max_connections:
            state.refused += 1
            self.reading_done = True
            self.transport.write(_OVER_LIMIT)
            self.transport.close()
            return
        state.connections.add(self)

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
        self.last_read = self.state.now
        if self.raw:
            self._forward_raw(data)
            return
        if self.reading_done:
            return
        self._read_len = len(data)
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
            if self._in_head:  # a head still incomplete after this read
                if not self._head_reads:
                    self._head_first = len(data)
                self._head_reads += len(data)
                if self._head_reads > self.options.max_head_bytes and self._head_too_large(
                    complete=False
                ):
                    self._bad_request(None, _HEAD_TOO_LARGE)
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
        self.stall_since = self.state.now
        assert self.transport is not None
        self.stall_size = self.transport.get_write_buffer_size()
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
        self._head_reads = 0
        if self.head_since is None:
            self.head_since = self.state.now

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        self.head_since = None
        if self._head_reads + self._read_len > self.options.max_head_bytes and (
            self._head_too_large(complete=True)
        ):
            raise _Refuse(*_HEAD_TOO_LARGE)
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
        url, authority = self._url, None
        if url[:1] != b"/" and url != b"*" and ex.method != b"CONNECT":
            try:
                url, authority = absolute_form(url)
            except ValueError as exc:
                ex.error = (400, f"Malformed request: {exc}.")
        dispatch(ex, url, authority, headers, self.client_ip, self.state.routes, self.last)
        ex.retryable = not ex.has_body and ex.method in _RETRYABLE_METHODS
        self.pipeline.append(ex)
        if len(self.pipeline) == 1:
            self._start(ex)
        else:
            assert self.gate is not None
            self.gate.pause(flow.WAITING)

    def _head_too_large(self, *, complete: bool) -> bool:
        """Whether the head being read is over max_head_bytes. Asked only when the reads
        that carried it, counted whole, are: a head that fits in them needs no counting.
        Its parsed parts are counted exactly; of a head still incomplete, so are the reads
        that began and ended inside it, which hold what the parser keeps of a header not
        yet complete."""
        limit = self.options.max_head_bytes
        if not complete and self._head_reads - self._head_first > limit:
            return True
        size = len(self._url)
        for name, value in self._headers:
            size += len(name) + len(value) + 4
        return size > limit

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
            self._to_upstream(ex, LAST_CHUNK)
        if ex.upstream is not None:
            ex.upstream.last_read = self.state.now  # the read timeout runs from here
            ex.sent = monotonic()
        if not ex.keep_alive:
            self.reading_done = True
        if ex.response_done:
            self._finish(ex)

    def _forward_raw(self, data: bytes) -> None:
        if self.spliced is not None:
            self.spliced.send(data)
        elif self.current is not None:
            self._to_upstream(self.current, data)

    # -- timeouts and broken requests

    def tick(self, now: float) -> None:
        """Enforce the timeouts, each against the side that is late (docs/router.md)."""
        options = self.options
        if self.transport is None or self.transport.is_closing():
            return
        if self.lingering_since is not None:
            if now - self.lingering_since > LINGER:
                self.transport.close()
        elif self.write_paused:
            if self._stalled(now) > options.send_timeout:
                self._abort()  # the client takes no more of the response (or tunnel)
            else:
                self.last_read = now  # nor is it late with a body the router cannot answer
        elif self.spliced is not None:
            conn = self.spliced
            if now - max(self.last_read, conn.last_read) > options.tunnel_timeout or (
                conn.write_paused and conn.stalled(now) > options.send_timeout
            ):
                self._close()
        elif self.pipeline:
            if self.head_since is not None:  # the next head's time starts with its turn
                self.head_since = now
            self._tick_exchange(now)
        elif self._in_head:
            since = self.head_since
            if since is not None and now - since > options.head_timeout:
                self._bad_request(None, (408, "The request head did not arrive in time."))
        elif self.state.draining or now - self.idle_since > (
            # not a byte yet: the first head's time runs from the accept, with nothing to answer
            options.head_timeout if self.head_since is not None else options.keep_alive_timeout
        ):
            self._close()
        self.flush()

    def _tick_exchange(self, now: float) -> None:
        options = self.options
        ex = self.pipeline[0]
        conn = ex.upstream
        if conn is not None:
            if conn.write_paused and conn.stalled(now) > options.send_timeout:
                if not ex.request_done:  # the rest of the request has nowhere to go
                    ex.request_done = self.reading_done = self.linger = True
                    ex.keep_alive = False
                message = "The replica did not take the request in time"
                self._fail(ex, 504, message + ex.describe() + ".")
                return
            if (
                ex.request_done
                and not self.write_paused
                and now - conn.last_read > options.read_timeout
            ):
                self._fail(ex, 504, "The replica did not answer in time" + ex.describe() + ".")
                return
        reading = self.current
        if reading is None or reading.request_done or self.raw:
            return
        assert self.gate is not None
        if self.gate.reasons:  # not reading it: the wait is the router's, not the client's
            self.last_read = now
        elif now - self.last_read > options.body_timeout:
            self._bad_request(None, (408, "The request body did not arrive in time."))

    def _stalled(self, now: float) -> float:
        """How long the paused send buffer to the client has not shrunk."""
        assert self.transport is not None
        size = self.transport.get_write_buffer_size()
        if size < self.stall_size:
            self.stall_since, self.stall_size = now, size
        return now - self.stall_since

    def _bad_request(
        self, exc: httptools.HttpParserError | None, answer: tuple[int, str] | None = None
    ) -> None:
        cause = exc.__context__ if exc is not None else None
        if isinstance(cause, _Stop):
            return
        if isinstance(cause, _Refuse):
            answer = cause.answer
        if answer is not None:
            status, message = answer
        elif cause is not None:
            log.error("router: request handling failed", exc_info=cause)
            status, message = 500, "The router failed to handle this request."
        else:
            status, message = 400, f"Malformed request: {exc}."
        self.reading_done = self.linger = True
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


_OVER_LIMIT = error_page(
    503, "The router is serving as many connections as it may; try again shortly.", keep_alive=False
)
