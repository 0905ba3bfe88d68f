"""The proxy protocol fed bytes over fake transports: no sockets, no clock, no event loop
except where a backend connection is made (and then `connect` is a fake too)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from laneway.core.routing import Backend, Pool, Route, RoutingTable
from laneway.router import flow
from laneway.router.proxy import ProxyProtocol
from laneway.router.state import RouterState
from laneway.router.table import Target
from laneway.router.types import ProxyOptions
from laneway.router.upstream import UpstreamConnection

HOST = "feature-x.shop.localhost"
A = Backend("127.0.0.1", 9001)
B = Backend("127.0.0.1", 9002)


class FakeTransport(asyncio.Transport):
    def __init__(self, peer: tuple[str, int] = ("10.1.2.3", 40000)) -> None:
        super().__init__()
        self.out = bytearray()
        self.closed = self.aborted = self.eof = False
        self.reading = True
        self.peer = peer

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed, "write after close"
        self.out += data

    def take(self) -> bytes:
        data = bytes(self.out)
        self.out.clear()
        return data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = self.aborted = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": self.peer}.get(name, default)

    def get_write_buffer_size(self) -> int:
        return 0

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof = True


def make_state(*pools: Pool, **options: Any) -> RouterState:
    route = Route(HOST, "shop", "feature-x", pools)
    return RouterState(RoutingTable(1, {HOST: route}), options=ProxyOptions(**options))


def client(state: RouterState) -> tuple[ProxyProtocol, FakeTransport]:
    protocol = ProxyProtocol(state)
    transport = FakeTransport()
    protocol.connection_made(transport)
    return protocol, transport


def idle_upstream(
    state: RouterState, backend: Backend = A
) -> tuple[UpstreamConnection, FakeTransport]:
    """A pooled keep-alive connection to `backend`, as if made earlier."""
    conn = UpstreamConnection(state.upstreams, backend)
    transport = FakeTransport()
    conn.connection_made(transport)
    state.upstreams.release(conn)
    return conn, transport


def get(path: str = "/", host: str = HOST, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode()


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"


def head_lines(data: bytes) -> list[bytes]:
    return data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


# -- answers the router gives itself


def test_unknown_host_is_404_and_the_connection_goes_on() -> None:
    state = make_state(Pool("v1", 100, (A,)))
    protocol, transport = client(state)
    protocol.data_received(get(host="nope.shop.localhost:8080"))
    out = transport.take()
    assert out.startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert b"No environment is served at 'nope.shop.localhost:8080'." in out
    assert not transport.closed
    protocol.data_received(get(host=""))
    assert transport.take().startswith(b"HTTP/1.1 404 ")


@pytest.mark.parametrize(
    "pools",
    [(), (Pool("v1", 100, ()),), (Pool("v1", 0, (A,)), Pool("v2", 0, (B,)))],
    ids=["no pool", "no backend", "all weights 0"],
)
def test_no_healthy_replica_is_503_naming_the_environment(pools: tuple[Pool, ...]) -> None:
    protocol, transport = client(make_state(*pools))
    protocol.data_received(get())
    out = transport.take()
    assert out.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b'environment "feature-x" of app "shop" has no healthy replica' in out
    protocol.data_received(b"HEAD / HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\n\r\n")
    assert transport.take().endswith(b"\r\n\r\n")  # the head only


def test_malformed_request_is_400_and_an_oversized_head_431() -> None:
    state = make_state(Pool("v1", 100, (A,)), max_head_bytes=200)
    protocol, transport = client(state)
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
    assert transport.take().startswith(b"HTTP/1.1 400 ")
    assert transport.eof  # a FIN after the answer; see relay.LINGER
    protocol, transport = client(state)
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: x\r\nx-big: " + b"y" * 150)
    assert transport.take() == b""
    protocol.data_received(b"y" * 150)  # a header still growing, read after read
    protocol.data_received(b"y" * 150)
    assert transport.take().startswith(b"HTTP/1.1 431 ")
    assert transport.eof


def test_two_host_headers_are_400_and_connect_405() -> None:
    protocol, transport = client(make_state(Pool("v1", 100, (A,))))
    protocol.data_received(get(extra="Host: other.shop.localhost\r\n"))
    assert b"more than one Host header" in transport.take()
    protocol.data_received(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
    assert transport.take().startswith(b"HTTP/1.1 405 ")
    assert transport.closed


# -- rewriting


def test_request_head_is_rewritten_and_the_connection_reused() -> None:
    state = make_state(Pool("v1", 100, (A,)))
    conn, upstream = idle_upstream(state)
    protocol, transport = client(state)
    protocol.data_received(
        b"GET /p?q=1 HTTP/1.1\r\nHost: Feature-X.shop.localhost:8080\r\n"
        b"X-Forwarded-For: 192.0.2.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\n"
        b"Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 300\r\nTE: trailers\r\n"
        b"Proxy-Connection: keep-alive\r\nAccept: */*\r\n\r\n"
    )
    assert head_lines(upstream.take()) == [
        b"GET /p?q=1 HTTP/1.1",
        b"Host: Feature-X.shop.localhost:8080",
        b"Accept: */*",
        b"x-forwarded-for: 192.0.2.1, 10.1.2.3",
        b"x-forwarded-proto: http",
        b"x-forwarded-host: Feature-X.shop.localhost:8080",
    ]
    conn.data_received(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive, X-Private\r\n"
        b"X-Private: 1\r\nKeep-Alive: timeout=5\r\nServer: app\r\n\r\nhi"
    )
    assert transport.take() == b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nServer: app\r\n\r\nhi"
    assert state.upstreams.idle_connections(A) == [conn]
    counters = state.counters[(HOST, "v1")]
    assert (counters.requests, counters.statuses, counters.errors) == (1, [0, 1, 0, 0, 0], 0)
    assert sum(counters.latency) == 1


def test_chunked_both_ways_and_http10_gets_the_body_until_close() -> None:
    state = make_state(Pool("v1", 100, (A,)))
    conn, upstream = idle_upstream(state)
    protocol, transport = client(state)
    protocol.data_received(get("/up", extra="Transfer-Encoding: chunked\r\n") + b"3\r\nabc\r\n")
    protocol.data_received(b"2\r\nde\r\n0\r\n\r\n")
    sent = upstream.take()
    assert b"Transfer-Encoding: chunked\r\n" in sent
    assert sent.endswith(b"\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
    # a response of unknown length goes to an HTTP/1.1 client chunked
    conn.data_received(b"HTTP/1.1 200 OK\r\n\r\nstream")
    assert (
        transport.take() == b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n6\r\nstream\r\n"
    )
    conn.connection_lost(None)  # the body ended with the connection
    assert transport.take() == b"0\r\n\r\n"
    assert not transport.closed

    conn, upstream = idle_upstream(state)
    protocol, transport = client(state)
    protocol.data_received(b"GET / HTTP/1.0\r\nHost: " + HOST.encode() + b"\r\n\r\n")
    conn.data_received(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n")
    assert transport.take() == b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nhi"
    assert transport.closed
    assert state.upstreams.idle_connections(A) == [conn]


def test_head_and_bodiless_statuses_end_with_their_head() -> None:
    state = make_state(Pool("v1", 100, (A,)))
    conn, upstream = idle_upstream(state)
    protocol, transport = client(state)
    protocol.data_received(b"HEAD / HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\n\r\n")
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
    assert transport.take() == b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
    for status in (b"204 No Content", b"304 Not Modified"):
        protocol.data_received(get())
        assert state.upstreams.idle_connections(A) == []  # the same connection, borrowed again
        conn.data_received(b"HTTP/1.1 " + status + b"\r\n\r\n")
        assert transport.take() == b"HTTP/1.1 " + status + b"\r\n\r\n"
    protocol.data_received(get())
    conn.data_received(OK)
    assert transport.take().endswith(b"\r\n\r\nhi")
    assert state.upstreams.idle_connections(A) == [conn]


def test_pipelined_requests_are_answered_in_order() -> None:
    state = make_state(Pool("v1", 100, (A,)))
    conn, upstream = idle_upstream(state)
    protocol, transport = client(state)
    protocol.data_received(get("/1") + get("/2", host="other") + get("/3"))
    assert upstream.take().startswith(b"GET /1 ")
    assert transport.take() == b""  # the 404 for /2 waits for /1
    assert not transport.reading
    conn.data_received(OK)
    out = transport.take()
    assert out.startswith(b"HTTP/1.1 200 OK") and b"HTTP/1.1 404 " in out
    assert upstream.take().startswith(b"GET /3 ")
    conn.data_received(OK)
    assert transport.take().startswith(b"HTTP/1.1 200 OK")
    assert transport.reading


def test_interim_responses_pass_to_http11_clients() -> None:
    state = make_state(Pool("v1", 100, (A,)))
    conn, upstream = idle_upstream(state)
    protocol, transport = client(state)
    protocol.data_received(
        b"POST / HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\nContent-Length: 2\r\n"
        b"Expect: 100-continue\r\n\r\n"
    )
    conn.data_received(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert transport.take() == b"HTTP/1.1 100 Continue\r\n\r\n"
    protocol.data_received(b"ok")
    assert upstream.take().endswith(b"\r\n\r\nok")
    conn.data_received(OK)
    assert transport.take() == OK
    assert state.upstreams.idle_connections(A) == [conn]


# -- failures


def test_read_timeout_is_504_and_a_broken_response_502_or_a_cut() -> None:
    state = make_state(Pool("v1", 100, (A,)), read_timeout=5)
    conn, upstream = idle_upstream(state)
    protocol, transport = client(state)
    protocol.data_received(get())
    state.tick(state.now + 1)
    assert transport.take() == b""
    state.tick(state.now + 10)
    out = transport.take()
    assert out.startswith(b"HTTP/1.1 504 Gateway Timeout\r\n")
    assert b'did not answer in time (environment "feature-x" of app "shop")' in out
    assert upstream.closed and not transport.closed

    conn, upstream = idle_upstream(state)
    protocol.data_received(get())
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n")
    assert transport.take().startswith(b"HTTP/1.1 502 Bad Gateway\r\n")

    conn, upstream = idle_upstream(state)
    protocol.data_received(get())
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")
    conn.connection_lost(ConnectionResetError())
    assert transport.aborted  # too late for a page: the client sees the response cut
    counters = state.counters[(HOST, "v1")]
    # the 504 and the 502 are the router's own; the cut one had its 200 head, then failed
    assert (counters.requests, counters.statuses, counters.errors) == (3, [0, 1, 0, 0, 0], 3)


def test_101_to_a_request_without_upgrade_is_502() -> None:
    state = make_state(Pool("v1", 100, (A,)))
    conn, _ = idle_upstream(state)
    protocol, transport = client(state)
    protocol.data_received(get())
    conn.data_received(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n")
    assert transport.take().startswith(b"HTTP/1.1 502 ")


def test_client_going_away_closes_the_upstream_connection() -> None:
    state = make_state(Pool("v1", 100, (A,)))
    conn, upstream = idle_upstream(state)
    protocol, transport = client(state)
    protocol.data_received(get())
    protocol.connection_lost(None)
    assert upstream.closed and conn.closed
    assert state.upstreams.idle_connections(A) == []


# -- upgrade and backpressure


def test_upgrade_splices_bytes_both_ways() -> None:
    state = make_state(Pool("v1", 100, (A,)))
    conn, upstream = idle_upstream(state)
    protocol, transport = client(state)
    protocol.data_received(
        get("/ws", extra="Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n")
        + b"early"
    )
    sent = upstream.take()
    assert b"connection: upgrade\r\nupgrade: websocket\r\n" in sent
    assert sent.endswith(b"\r\n\r\nearly")
    conn.data_received(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: a\r\n\r\n\x81\x02hi"
    )
    assert transport.take() == (
        b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: a\r\n"
        b"connection: upgrade\r\nupgrade: websocket\r\n\r\n\x81\x02hi"
    )
    protocol.data_received(b"GET / HTTP/1.1\r\n")  # not HTTP any more: passed through
    assert upstream.take() == b"GET / HTTP/1.1\r\n"
    conn.data_received(b"\x88\x00")
    assert transport.take() == b"\x88\x00"
    conn.connection_lost(None)
    assert transport.closed


def test_backpressure_pauses_the_reading_side() -> None:
    state = make_state(Pool("v1", 100, (A,)))
    conn, upstream = idle_upstream(state)
    protocol, transport = client(state)
    protocol.data_received(get("/", extra="Content-Length: 100\r\n"))
    conn.pause_writing()  # the backend reads the upload slower than the client sends it
    assert not transport.reading
    conn.resume_writing()
    assert transport.reading
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab")
    protocol.pause_writing()  # the client reads the download slower than the backend sends
    assert not upstream.reading
    protocol.resume_writing()
    assert upstream.reading


def test_gate_holds_while_any_reason_does() -> None:
    transport = FakeTransport()
    gate = flow.ReadGate(transport)
    gate.pause(flow.PEER_FULL)
    gate.pause(flow.WAITING)
    gate.resume(flow.PEER_FULL)
    assert not transport.reading
    gate.resume(flow.WAITING)
    assert transport.reading


# -- choosing a backend


def test_backends_are_taken_in_turn() -> None:
    route = Route(HOST, "shop", "feature-x", (Pool("v1", 10000, (A, B)),))
    target = Target(route, {})
    assert target.split is None
    v1 = target.pick()
    assert v1 is not None
    assert [v1.take() for _ in range(4)] == [0, 1, 0, 1]


def test_refused_backend_fails_over_and_is_tried_last_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = make_state(Pool("v1", 100, (A, B)))
    attempts: list[Backend] = []
    made: list[tuple[UpstreamConnection, FakeTransport]] = []

    async def connect(backend: Backend) -> UpstreamConnection:
        attempts.append(backend)
        if backend == A:
            raise ConnectionRefusedError(111, "Connection refused")
        conn = UpstreamConnection(state.upstreams, backend)
        made.append((conn, FakeTransport()))
        conn.connection_made(made[-1][1])
        return conn

    monkeypatch.setattr(state.upstreams, "connect", connect)

    async def main() -> None:
        protocol, transport = client(state)
        for _ in range(3):
            protocol.data_received(get())
            while not made or made[-1][0].sink is None:
                await asyncio.sleep(0)
            made[-1][0].data_received(OK)
            assert transport.take() == OK
        assert attempts == [A, B]  # A is down: later requests go to the pooled B
        assert state.counters[(HOST, "v1")].errors == 0  # A's refusal was failed over

        state.upstreams.close_all()
        monkeypatch.setattr(state.upstreams, "down_for", 0.0)
        state.upstreams.down.clear()
        made.clear()

        async def refuse(backend: Backend) -> UpstreamConnection:
            raise ConnectionRefusedError(111, "Connection refused")

        monkeypatch.setattr(state.upstreams, "connect", refuse)
        protocol.data_received(get())
        while not transport.out:
            await asyncio.sleep(0)
        assert transport.take().startswith(b"HTTP/1.1 502 Bad Gateway\r\n")

    asyncio.run(main())


def test_a_stale_pooled_connection_is_retried_once_afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    state = make_state(Pool("v1", 100, (A,)))
    fresh: list[UpstreamConnection] = []

    async def connect(backend: Backend) -> UpstreamConnection:
        conn = UpstreamConnection(state.upstreams, backend)
        conn.connection_made(FakeTransport())
        fresh.append(conn)
        return conn

    monkeypatch.setattr(state.upstreams, "connect", connect)

    async def main() -> None:
        stale, _ = idle_upstream(state)
        protocol, transport = client(state)
        protocol.data_received(get())
        stale.connection_lost(None)  # the backend had closed it while it sat in the pool
        while not fresh or fresh[0].sink is None:
            await asyncio.sleep(0)
        fresh[0].data_received(OK)
        assert transport.take() == OK

    asyncio.run(main())
