"""The sticky split of a route of several pools: which pool a request goes to, and when the
router sets its bucket cookie. `Split.choose` alone, then through the protocol over fake
transports (the helpers of test_proxy)."""

from __future__ import annotations

import pytest
from tests.unit.router.test_proxy import HOST, client, get, head_lines, idle_upstream

from laneway.core.routing import (
    CANARY,
    STABLE,
    Backend,
    Pool,
    Route,
    RoutingTable,
    Stickiness,
    bucket_of,
    pool_for_bucket,
)
from laneway.router.state import RouterState
from laneway.router.table import Split, Target, cookie_value

A = Backend("127.0.0.1", 9001)
B = Backend("127.0.0.1", 9002)
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"


def route(
    canary: int = 100,
    *,
    canary_backends: tuple[Backend, ...] = (B,),
    offset: int = 0,
    hash_header: str | None = None,
    hash_cookie: str | None = None,
) -> Route:
    """A canary listed first at `canary` basis points, stable on the rest."""
    return Route(
        HOST,
        "shop",
        "production",
        (
            Pool("v2", canary, canary_backends, CANARY),
            Pool("v1", 10000 - canary, (A,), STABLE),
        ),
        Stickiness(offset=offset, hash_header=hash_header, hash_cookie=hash_cookie),
    )


def splitter(r: Route) -> Split:
    split = Target(r, {}).split
    assert split is not None
    return split


def choose(
    split: Split, *headers: tuple[str, str], draw: int = 5000
) -> tuple[str | None, int | None]:
    pool, fresh = split.choose(
        [(name.encode(), value.encode()) for name, value in headers], lambda: draw
    )
    return (pool.release if pool is not None else None), fresh


def test_a_route_of_one_pool_has_no_split() -> None:
    one = Route(HOST, "shop", "production", (Pool("v1", 10000, (A,)), Pool("v2", 0, (B,))))
    assert Target(one, {}).split is None


@pytest.mark.parametrize(("draw", "release"), [(0, "v2"), (99, "v2"), (100, "v1"), (9999, "v1")])
def test_a_fresh_client_is_drawn_and_given_its_bucket(draw: int, release: str) -> None:
    assert choose(splitter(route(100)), draw=draw) == (release, draw)


def test_the_offset_turns_the_buckets() -> None:
    split = splitter(route(100, offset=9950))
    assert choose(split, draw=50) == ("v2", 50)  # (50 + 9950) % 10000 = 0
    assert choose(split, draw=0) == ("v1", 0)  # 9950


def test_the_bucket_cookie_keeps_a_client_on_its_side() -> None:
    split = splitter(route(100))
    assert choose(split, ("Cookie", "laneway_bucket=42"), draw=9000) == ("v2", None)
    assert choose(split, ("cookie", "a=1; laneway_bucket=4200"), draw=0) == ("v1", None)
    # raising the weight moves clients from stable to canary, never back
    assert choose(splitter(route(500)), ("Cookie", "laneway_bucket=42")) == ("v2", None)
    assert choose(splitter(route(500)), ("Cookie", "laneway_bucket=420")) == ("v2", None)


@pytest.mark.parametrize(
    "cookie",
    [
        "laneway_bucket=",
        "laneway_bucket=10000",
        "laneway_bucket=-1",
        "laneway_bucket=+42",
        "laneway_bucket=4_2",
        "laneway_bucket=42x",
        "laneway_bucket=٤٢",
        "laneway_bucket",
        "xlaneway_bucket=42",
        "a=laneway_bucket=42",
        "laneway_bucket_old=42",
    ],
)
def test_a_malformed_or_foreign_cookie_is_ignored_and_redrawn(cookie: str) -> None:
    assert choose(splitter(route(100)), ("Cookie", cookie), draw=7000) == ("v1", 7000)


@pytest.mark.parametrize(
    ("header", "found"),
    [
        ("a=1; laneway_bucket=42; b=2", b"42"),
        ("a=1;laneway_bucket=42 ;b=2", b"42"),
        ("a=1;\tlaneway_bucket=42", b"42"),
        ('laneway_bucket="42"', b"42"),
        ("x=laneway_bucket=1; laneway_bucket=43", b"43"),
        ("xlaneway_bucket=1; laneway_bucket=44", b"44"),
        ("laneway_bucket=45; laneway_bucket=46", b"45"),
        ("other=1; " * 2000 + "laneway_bucket=47", b"47"),
        ("laneway_bucket=", b""),
        ("laneway_bucket = 48", None),  # not a cookie-pair (RFC 6265): no spaces around =
        ("laneway_bucket_old=49", None),
        ("", None),
    ],
)
def test_a_cookie_is_found_by_its_name_alone(header: str, found: bytes | None) -> None:
    assert cookie_value(header.encode(), b"laneway_bucket=") == found


def test_cookies_of_several_cookie_headers_are_found() -> None:
    split = splitter(route(100))
    assert choose(split, ("Cookie", "a=1"), ("cookie", "laneway_bucket=42")) == ("v2", None)


def test_a_hash_header_or_cookie_gives_the_bucket_and_no_cookie_is_set() -> None:
    split = splitter(route(5000, hash_header="x-user", hash_cookie="uid"))
    for user in ("alice", "bob", "carol", "dave"):
        expected = "v2" if bucket_of(user.encode()) < 5000 else "v1"
        assert choose(split, ("x-user", user), draw=0) == (expected, None)
        assert choose(split, ("Cookie", f"uid={user}"), draw=0) == (expected, None)
        # the hash wins over laneway's own cookie
        bucket = "9999" if expected == "v2" else "0"
        assert choose(split, ("Cookie", f"laneway_bucket={bucket}; uid={user}")) == (
            expected,
            None,
        )
    # an empty user id is no user id
    assert choose(split, ("x-user", ""), draw=0) == ("v2", 0)


@pytest.mark.parametrize(
    ("headers", "release"),
    [
        ((("X-Laneway-Canary", "always"),), "v2"),
        ((("x-laneway-canary", " Always "),), "v2"),
        ((("x-laneway-canary", "never"), ("Cookie", "laneway_bucket=0")), "v1"),
        ((("Cookie", "laneway_canary=always; laneway_bucket=9999"),), "v2"),
        ((("Cookie", "laneway_canary=never"),), "v1"),
        # the header wins over the cookie
        ((("x-laneway-canary", "never"), ("Cookie", "laneway_canary=always")), "v1"),
    ],
)
def test_a_tester_forces_a_side(headers: tuple[tuple[str, str], ...], release: str) -> None:
    assert choose(splitter(route(100)), *headers, draw=9999 if release == "v2" else 0) == (
        release,
        None,
    )


def test_an_unknown_force_value_is_no_force() -> None:
    assert choose(splitter(route(100)), ("x-laneway-canary", "maybe"), draw=0) == ("v2", 0)


def test_a_pool_without_backends_falls_back_to_one_with() -> None:
    split = splitter(route(100, canary_backends=()))
    assert choose(split, draw=0) == ("v1", 0)
    assert choose(split, ("x-laneway-canary", "always")) == ("v1", None)
    nothing = Route(
        HOST, "shop", "production", (Pool("v2", 100, (), CANARY), Pool("v1", 9900, (), STABLE))
    )
    assert choose(splitter(nothing), draw=0) == (None, 0)


def test_forced_and_drawn_requests_count_on_the_pool_they_went_to() -> None:
    state = RouterState(RoutingTable(1, {HOST: route(100)}))
    protocol, transport = client(state)
    conn, upstream = idle_upstream(state, B)
    protocol.data_received(get(extra="X-Laneway-Canary: always\r\n"))
    conn.data_received(OK)
    assert b"set-cookie" not in transport.take().lower()
    assert state.counters[(HOST, "v2")].requests == 1
    assert state.counters[(HOST, "v1")].requests == 0


def test_set_cookie_only_for_a_client_without_a_bucket() -> None:
    state = RouterState(RoutingTable(1, {HOST: route(5000)}))
    protocol, transport = client(state)
    for _ in range(20):
        conn_a, _ = idle_upstream(state, A)
        conn_b, _ = idle_upstream(state, B)
        protocol.data_received(get())
        conn = conn_a if conn_a.sink is not None else conn_b
        conn.data_received(OK)
        lines = head_lines(transport.take())
        cookies = [line for line in lines if line.lower().startswith(b"set-cookie:")]
        assert len(cookies) == 1
        name, _, rest = cookies[0].partition(b": ")[2].partition(b"=")
        bucket, _, attributes = rest.partition(b"; ")
        assert name == b"laneway_bucket" and 0 <= int(bucket) < 10000
        assert attributes == b"Path=/; Max-Age=2592000; HttpOnly; SameSite=Lax"
        assert (conn is conn_b) == (int(bucket) < 5000)
    for bucket, backend in ((5, B), (5000, A)):
        conn, _ = idle_upstream(state, backend)
        protocol.data_received(get(extra=f"Cookie: laneway_bucket={bucket}\r\n"))
        assert conn.sink is not None
        conn.data_received(OK)
        assert transport.take() == OK


def test_one_pool_routes_read_no_cookie_and_set_none() -> None:
    one = Route(HOST, "shop", "production", (Pool("v1", 10000, (A,)),))
    state = RouterState(RoutingTable(1, {HOST: one}))
    protocol, transport = client(state)
    conn, _ = idle_upstream(state, A)
    protocol.data_received(get(extra="Cookie: laneway_bucket=nonsense\r\n"))
    conn.data_received(OK)
    assert transport.take() == OK


@pytest.mark.parametrize("offset", [0, 1, 4321, 9999])
@pytest.mark.parametrize(
    "weights", [(100, 9900), (1, 9999), (2500, 2500, 5000), (100, 100), (9999, 1)]
)
def test_the_split_agrees_with_pool_for_bucket(offset: int, weights: tuple[int, ...]) -> None:
    pools = tuple(
        Pool(f"v{i}", weight, (Backend("127.0.0.1", 9000 + i),)) for i, weight in enumerate(weights)
    )
    split = splitter(Route(HOST, "shop", "production", pools, Stickiness(offset=offset)))
    for bucket in range(10_000):
        expected = pools[pool_for_bucket(pools, bucket, offset)].release
        assert choose(split, ("Cookie", f"laneway_bucket={bucket}")) == (expected, None)
