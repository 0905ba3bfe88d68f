"""The router's limits and timeouts, fed bytes over fake transports and ticked with a clock
ahead of time: the head size on every read, the head, body, send and tunnel timeouts, the
connection limit and the absolute-form request target."""

from __future__ import annotations

from tests.unit.router.test_proxy import (
    HOST,
    OK,
    A,
    FakeTransport,
    client,
    get,
    head_lines,
    idle_upstream,
    make_state,
)

from laneway.core.routing import Pool
from laneway.router.proxy import ProxyProtocol
from laneway.router.state import RouterState


class Buffered(FakeTransport):
    """A transport whose send buffer holds `buffered` bytes."""

    buffered = 0

    def get_write_buffer_size(self) -> int:
        return self.buffered


def buffered_client(state: RouterState) -> tuple[ProxyProtocol, Buffered]:
    protocol = ProxyProtocol(state)
    transport = Buffered()
    protocol.connection_made(transport)
    return protocol, transport


# -- the head


def test_a_head_over_the_limit_in_one_read_is_431_and_reaches_no_backend() -> None:
    state = make_state(Pool("v1", 100, (A,)), max_head_bytes=200)
    _, upstream = idle_upstream(state)
    protocol, transport = client(state)
    protocol.data_received(get(extra="x-big: " + "y" * 300 + "\r\n"))
    assert transport.take().startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert transport.eof
    assert upstream.take() == b""


def test_a_long_request_target_is_431_too() -> None:
    protocol, transport = client(make_state(Pool("v1", 100, (A,)), max_head_bytes=200))
    protocol.data_received(get("/" + "p" * 300))
    assert transport.take().startswith(b"HTTP/1.1 431 ")


def test_pipelined_heads_in_one_read_are_each_counted_alone() -> None:
    protocol, transport = client(make_state(Pool("v1", 100, (A,)), max_head_bytes=200))
    requests = get(host="nope.shop.localhost") * 8
    assert len(requests) > 200
    protocol.data_received(requests + b"GET / HTTP/1.1\r\nHost: nope")
    out = transport.take()
    assert out.count(b"HTTP/1.1 404 ") == 8 and b" 431 " not in out
    assert not transport.closed


def test_a_head_growing_read_by_read_is_431_once_past_the_limit() -> None:
    protocol, transport = client(make_state(Pool("v1", 100, (A,)), max_head_bytes=200))
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: x\r\nx-big: ")
    for _ in range(4):
        protocol.data_received(b"y" * 60)
    assert transport.take().startswith(b"HTTP/1.1 431 ")
    assert transport.eof


# -- the absolute form (RFC 9112 section 3.2.2)


def test_an_absolute_form_target_is_routed_by_its_authority_and_sent_in_origin_form() -> None:
    state = make_state(Pool("v1", 100, (A,)))
    conn, upstream = idle_upstream(state)
    protocol, transport = client(state)
    protocol.data_received(
        f"GET http://{HOST}:8080/p?q=1 HTTP/1.1\r\nHost: other.shop.localhost\r\n\r\n".encode()
    )
    assert head_lines(upstream.take()) == [
        b"GET /p?q=1 HTTP/1.1",
        f"host: {HOST}:8080".encode(),
        b"x-forwarded-for: 10.1.2.3",
        b"x-forwarded-proto: http",
        f"x-forwarded-host: {HOST}:8080".encode(),
    ]
    conn.data_received(OK)
    assert transport.take() == OK
    protocol.data_received(f"GET HTTP://{HOST}?x HTTP/1.1\r\n\r\n".encode())
    assert upstream.take().startswith(f"GET /?x HTTP/1.1\r\nhost: {HOST}\r\n".encode())


def test_an_absolute_form_target_for_another_host_is_not_sent_by_the_host_header() -> None:
    state = make_state(Pool("v1", 100, (A,)))
    _, upstream = idle_upstream(state)
    protocol, transport = client(state)
    protocol.data_received(f"GET http://other.host/ HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    assert b"No environment is served at 'other.host'." in transport.take()
    protocol.data_received(f"GET http://user@{HOST}/ HTTP/1.1\r\n\r\n".encode())
    assert transport.take().startswith(b"HTTP/1.1 400 ")
    assert upstream.take() == b""


# -- timeouts


def test_a_head_not_complete_in_time_is_408_and_a_silent_connection_closed() -> None:
    state = make_state(Pool("v1", 100, (A,)), head_timeout=5)
    protocol, transport = client(state)
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: x")
    state.tick(state.now + 4)
    assert transport.take() == b"" and not transport.closed
    protocol.data_received(b"\r\nx-more: 1")  # bytes keep coming, the head does not end
    state.tick(state.now + 2)
    assert transport.take().startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert transport.eof and not transport.closed  # the answer, a FIN, and reading goes on
    protocol.data_received(b"\r\nx-more: 2")
    state.tick(state.now + 1)
    assert transport.take() == b"" and not transport.closed
    state.tick(state.now + 2)  # past relay.LINGER
    assert transport.closed
    protocol.connection_lost(None)

    silent, transport = client(state)
    state.tick(state.now + 6)
    assert transport.closed and transport.take() == b""


def test_between_requests_the_keep_alive_timeout_applies_not_the_head_timeout() -> None:
    state = make_state(Pool("v1", 100, (A,)), head_timeout=5, keep_alive_timeout=20)
    conn, _ = idle_upstream(state)
    protocol, transport = client(state)
    protocol.data_received(get())
    conn.data_received(OK)
    assert transport.take() == OK
    state.tick(state.now + 10)
    assert not transport.closed
    protocol.data_received(b"GET / HTTP/1.1\r\n")  # the next head: its own time from here
    state.tick(state.now + 4)
    assert not transport.closed
    state.tick(state.now + 2)
    assert transport.take().startswith(b"HTTP/1.1 408 ")


def test_a_stalled_request_body_is_408_and_its_backend_connection_closed() -> None:
    state = make_state(Pool("v1", 100, (A,)), body_timeout=5, read_timeout=100)
    conn, upstream = idle_upstream(state)
    protocol, transport = client(state)
    protocol.data_received(get("/up", extra="Content-Length: 100\r\n") + b"x" * 10)
    state.tick(state.now + 4)
    protocol.data_received(b"x" * 10)
    state.tick(state.now + 4)
    assert transport.take() == b""
    state.tick(state.now + 2)
    assert transport.take().startswith(b"HTTP/1.1 408 ")
    assert transport.eof and upstream.closed and conn.closed
    assert state.upstreams.idle_connections(A) == []


def test_a_body_the_router_does_not_read_is_not_the_clients_delay() -> None:
    state = make_state(Pool("v1", 100, (A,)), body_timeout=5, send_timeout=50)
    conn, upstream = idle_upstream(state)
    protocol, transport = client(state)
    protocol.data_received(get("/up", extra="Content-Length: 100\r\n") + b"x" * 10)
    conn.pause_writing()  # the backend is slow to take it: the client is paused
    state.tick(state.now + 10)
    conn.resume_writing()
    state.tick(state.now + 4)
    assert transport.take() == b"" and not transport.closed


def test_a_client_slow_to_read_is_not_late_with_its_body_meanwhile() -> None:
    state = make_state(Pool("v1", 100, (A,)), body_timeout=5, send_timeout=50)
    conn, _ = idle_upstream(state)
    protocol, transport = buffered_client(state)
    protocol.data_received(get("/echo", extra="Content-Length: 100\r\n") + b"x" * 10)
    conn.data_received(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nxxxxx\r\n")
    transport.buffered = 1000
    protocol.pause_writing()  # so the backend is not read, nor (in turn) the client
    for left in (800, 600, 400):  # it reads, slowly, for longer than the body timeout
        transport.buffered = left
        state.tick(state.now + 4)
    protocol.resume_writing()
    state.tick(state.now + 4)
    assert not (transport.closed or transport.eof)  # not cut, nor answered 408


def test_a_client_that_stops_reading_is_cut_and_its_backend_connection_closed() -> None:
    state = make_state(Pool("v1", 100, (A,)), send_timeout=5, read_timeout=100)
    conn, upstream = idle_upstream(state)
    protocol, transport = buffered_client(state)
    protocol.data_received(get("/big"))
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + b"z" * 1000)
    transport.buffered = 900
    protocol.pause_writing()
    state.tick(state.now + 4)
    transport.buffered = 500  # it reads, slowly: progress
    state.tick(state.now + 4)
    assert not transport.closed
    state.tick(state.now + 6)
    assert transport.aborted
    protocol.connection_lost(None)
    assert upstream.closed and state.upstreams.idle_connections(A) == []


def test_a_backend_that_stops_reading_the_request_is_504() -> None:
    state = make_state(Pool("v1", 100, (A,)), send_timeout=5, body_timeout=100)
    conn, upstream = idle_upstream(state)
    protocol, transport = client(state)
    protocol.data_received(get("/up", extra="Content-Length: 100000\r\n") + b"x" * 1000)
    conn.pause_writing()
    state.tick(state.now + 6)
    assert b"did not take the request in time" in transport.take()
    assert upstream.closed and transport.eof


def test_a_spliced_connection_idle_past_the_tunnel_timeout_is_closed() -> None:
    state = make_state(Pool("v1", 100, (A,)), tunnel_timeout=30, read_timeout=5)
    conn, upstream = idle_upstream(state)
    protocol, transport = client(state)
    protocol.data_received(get("/ws", extra="Connection: Upgrade\r\nUpgrade: websocket\r\n"))
    conn.data_received(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    )
    assert transport.take().startswith(b"HTTP/1.1 101 ")
    state.tick(state.now + 20)
    conn.data_received(b"\x81\x00")  # the backend speaks: not idle
    state.tick(state.now + 20)
    protocol.data_received(b"\x81\x80mask")  # nor when the client does
    state.tick(state.now + 20)
    assert not transport.closed and not upstream.closed
    state.tick(state.now + 31)
    assert transport.closed


# -- the connection limit


def test_connections_over_the_limit_get_503_and_the_others_go_on() -> None:
    state = make_state(Pool("v1", 100, (A,)), max_connections=2)
    conn, _ = idle_upstream(state)
    first, first_transport = client(state)
    client(state)
    refused, transport = client(state)
    assert transport.take().startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert transport.closed and len(state.connections) == 2 and state.refused == 1
    refused.connection_lost(None)
    first.data_received(get())
    conn.data_received(OK)
    assert first_transport.take() == OK
    first.connection_lost(None)
    _, transport = client(state)
    assert transport.take() == b"" and not transport.closed
