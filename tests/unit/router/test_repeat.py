"""A keep-alive client that repeats its request head: the rewrite and the split decision are
reused, and nothing a repeat must not reuse is (`router.repeat`)."""

from __future__ import annotations

import pytest
from tests.unit.router.test_proxy import (
    HOST,
    OK,
    A,
    B,
    client,
    get,
    head_lines,
    idle_upstream,
    make_state,
)

from laneway.core.routing import CANARY, STABLE, Pool, Route, RoutingTable
from laneway.router import dispatch
from laneway.router.state import RouterState


def split_table(canary_weight: int) -> RoutingTable:
    pools = (
        Pool("v2", canary_weight, (B,), CANARY),
        Pool("v1", 10000 - canary_weight, (A,), STABLE),
    )
    return RoutingTable(1, {HOST: Route(HOST, "shop", "feature-x", pools)})


def served_by(state: RouterState, request: bytes, times: int = 1) -> list[tuple[str, bytes]]:
    """Which backend got each of `times` sends of `request` on one connection, and the
    head the client got back."""
    protocol, transport = client(state)
    seen = []
    for _ in range(times):
        pooled = {backend: idle_upstream(state, backend) for backend in (A, B)}
        protocol.data_received(request)
        for backend, (conn, upstream) in pooled.items():
            sent = upstream.take()
            if sent:
                conn.data_received(OK)
                seen.append((str(backend.port), sent))
        assert transport.take().startswith(b"HTTP/1.1 200 OK")
    return seen


def test_a_repeated_head_reaches_the_backend_as_the_first_did() -> None:
    state = make_state(Pool("v1", 10000, (A,)))
    request = get("/a", extra="Accept: text/html\r\nX-Forwarded-For: 10.0.0.9\r\n")
    first, second = served_by(state, request, times=2)
    assert first == second
    assert b"x-forwarded-for: 10.0.0.9, 10.1.2.3" in first[1]


def test_a_new_request_line_with_repeated_headers_keeps_its_own_path() -> None:
    state = make_state(Pool("v1", 10000, (A,)))
    protocol, _ = client(state)
    paths = []
    for path in ("/a", "/b?q=1", "/a"):
        conn, upstream = idle_upstream(state)
        protocol.data_received(get(path))
        paths.append(head_lines(upstream.take())[0])
        conn.data_received(OK)
    assert paths == [b"GET /a HTTP/1.1", b"GET /b?q=1 HTTP/1.1", b"GET /a HTTP/1.1"]


def test_a_header_that_changes_is_rewritten_afresh() -> None:
    state = make_state(Pool("v1", 10000, (A,)))
    protocol, _ = client(state)
    sent = []
    for agent in ("one", "two"):
        conn, upstream = idle_upstream(state)
        protocol.data_received(get(extra=f"User-Agent: {agent}\r\n"))
        sent.append(upstream.take())
        conn.data_received(OK)
    assert b"User-Agent: one" in sent[0] and b"User-Agent: two" in sent[1]


def test_a_returning_client_stays_on_its_side_until_the_table_changes() -> None:
    state = RouterState(split_table(100))
    request = get(extra="Cookie: laneway_bucket=150\r\n")  # 150: stable at 1%, canary at 2%
    assert [port for port, _ in served_by(state, request, times=3)] == ["9001"] * 3
    protocol, _ = client(state)
    for expected in ("9001", "9002"):
        pooled = {backend: idle_upstream(state, backend) for backend in (A, B)}
        protocol.data_received(request)
        got = [str(b.port) for b, (conn, up) in pooled.items() if up.take()]
        assert got == [expected]
        conn, _ = pooled[A if expected == "9001" else B]
        conn.data_received(OK)
        state.set_table(split_table(200))  # the repeat after this is decided in the new table


def test_a_client_without_a_bucket_draws_on_every_repeat(monkeypatch: pytest.MonkeyPatch) -> None:
    draws = iter([50, 5000, 60])
    monkeypatch.setattr(dispatch, "draw", lambda: next(draws))
    state = RouterState(split_table(100))
    protocol, transport = client(state)
    got = []
    for _ in range(3):
        pooled = {backend: idle_upstream(state, backend) for backend in (A, B)}
        protocol.data_received(get())
        for backend, (conn, upstream) in pooled.items():
            if upstream.take():
                conn.data_received(OK)
                got.append(str(backend.port))
        cookie = [line for line in head_lines(transport.take()) if line.startswith(b"set-cookie")]
        got.append(cookie[0].split(b";")[0].decode())
    assert got == [
        "9002",
        "set-cookie: laneway_bucket=50",
        "9001",
        "set-cookie: laneway_bucket=5000",
        "9002",
        "set-cookie: laneway_bucket=60",
    ]


def test_an_absolute_target_is_not_repeated_as_the_host_header_says() -> None:
    state = make_state(Pool("v1", 10000, (A,)))
    protocol, transport = client(state)
    conn, upstream = idle_upstream(state)
    protocol.data_received(get(host="other.localhost"))
    assert transport.take().startswith(b"HTTP/1.1 404 ")
    request = f"GET http://{HOST}/x HTTP/1.1\r\nHost: other.localhost\r\n\r\n".encode()
    protocol.data_received(request)
    assert head_lines(upstream.take())[:2] == [b"GET /x HTTP/1.1", f"host: {HOST}".encode()]
    conn.data_received(OK)
    assert transport.take().startswith(b"HTTP/1.1 200 ")
    protocol.data_received(get(host="other.localhost"))  # same headers, origin form again
    assert transport.take().startswith(b"HTTP/1.1 404 ")


def test_a_head_without_headers_repeated_is_refused_each_time() -> None:
    state = make_state(Pool("v1", 10000, (A,)))
    protocol, transport = client(state)
    for _ in range(2):
        protocol.data_received(b"GET / HTTP/1.1\r\n\r\n")
        assert transport.take().startswith(b"HTTP/1.1 404 ")


def test_a_refused_head_is_refused_again_when_repeated() -> None:
    state = make_state(Pool("v1", 10000, (A,)))
    protocol, transport = client(state)
    twice = f"GET / HTTP/1.1\r\nHost: {HOST}\r\nHost: {HOST}\r\n\r\n".encode()
    for _ in range(2):
        protocol.data_received(twice)
        assert transport.take().startswith(b"HTTP/1.1 400 ")


def test_a_connection_whose_heads_keep_changing_is_still_served_right() -> None:
    state = RouterState(split_table(100))
    protocol, _ = client(state)
    for i in range(20):
        if i == 18:
            state.set_table(split_table(200))
        pooled = {backend: idle_upstream(state, backend) for backend in (A, B)}
        agent = i if i < 17 else 17  # 17 differing heads, then the last one three times
        protocol.data_received(get(extra=f"User-Agent: {agent}\r\nCookie: laneway_bucket=150\r\n"))
        got = [backend for backend, (conn, up) in pooled.items() if up.take()]
        assert got == [A if i < 18 else B], i
        pooled[got[0]][0].data_received(OK)
