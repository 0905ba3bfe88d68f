from __future__ import annotations

import pytest

from laneway.core import routing


@pytest.mark.parametrize(
    ("header", "host"),
    [
        ("feature-x.shop.localhost", "feature-x.shop.localhost"),
        ("Feature-X.Shop.LOCALHOST:8080", "feature-x.shop.localhost"),
        ("feature-x.shop.localhost.", "feature-x.shop.localhost"),
        ("[::1]:8080", "[::1]"),
        (" a.b.localhost ", "a.b.localhost"),
    ],
)
def test_normalize_host(header, host):
    assert routing.normalize_host(header) == host


def table() -> routing.RoutingTable:
    pool = routing.Pool("v1", 100, (routing.Backend("127.0.0.1", 20001),))
    empty = routing.Pool("v1", 100, ())
    return routing.compute_routing_table(
        [
            routing.RouteInput("shop", "staging", (pool,)),
            routing.RouteInput("shop", "down", (empty,)),
        ],
        version=7,
    )


def test_match_and_backends():
    t = table()
    assert t.match("staging.shop.localhost:8080").environment == "staging"
    assert t.match("staging.shop.localhost").has_backends
    assert not t.match("down.shop.localhost").has_backends
    assert t.match("nope.shop.localhost") is None
    assert t.match(None) is None


def test_json_roundtrip():
    t = table()
    again = routing.RoutingTable.from_json(t.to_json())
    assert again == t and again.version == 7
    assert again.same_routes(t)
