"""The HAProxy config and split map rendered from routing tables (pure text; HAProxy itself
runs in tests/integration/test_haproxy.py)."""

from __future__ import annotations

import pytest

from laneway.core.routing import (
    CANARY,
    WEIGHT_SCALE,
    Backend,
    Pool,
    Route,
    RoutingTable,
    Stickiness,
    pool_for_bucket,
)
from laneway.router import haproxy_config
from laneway.router.haproxy_api import parse_map, parse_servers, parse_stat

HOST = "production.shop.localhost"
PATHS = haproxy_config.Paths("/run/s.sock", "/run/splits.map", "/run/log.sock")
UP = (Backend("127.0.0.1", 9001),)


def route(*pools: Pool, offset: int = 0) -> RoutingTable:
    return RoutingTable(1, {HOST: Route(HOST, "shop", "production", pools, Stickiness(offset))})


@pytest.mark.parametrize(
    ("pools", "value"),
    [
        # one pool: no split; its requests go to v1
        ((Pool("v1", WEIGHT_SCALE, UP),), "0:0:-1:-1:v1"),
        # a 1% canary listed first: the first 100 turned buckets are its
        (
            (Pool("v2", 100, UP, CANARY), Pool("v1", 9_900, UP)),
            "1:0:0:1:100:v2:v1",
        ),
        # a canary at weight 0 takes no bucket, and forcing needs two weighted pools
        ((Pool("v2", 0, UP, CANARY), Pool("v1", WEIGHT_SCALE, UP)), "0:0:-1:-1:0:-:v1"),
        # the canary's replicas are not up yet: its clients are served by stable meanwhile
        ((Pool("v2", 500, (), CANARY), Pool("v1", 9_500, UP)), "1:0:0:1:500:v1:v1"),
        # no weight anywhere: nothing serves (503)
        ((Pool("v1", 0, UP),), "0:0:-1:-1:-"),
    ],
)
def test_the_split_map_holds_what_a_weight_step_changes(
    pools: tuple[Pool, ...], value: str
) -> None:
    assert haproxy_config.render_map(route(*pools)) == {HOST: value}


def test_edges_give_the_pool_that_pool_for_bucket_gives() -> None:
    pools = (Pool("a", 0, UP), Pool("b", 3_000, UP), Pool("c", 0, UP), Pool("d", 2_000, UP))
    table = RoutingTable(
        1,
        {
            HOST: Route(HOST, "shop", "production", pools),
            "other.localhost": Route("other.localhost", "shop", "o", (Pool("x", 10_000, UP),)),
        },
    )
    fields = haproxy_config.render_map(table)[HOST].split(":")
    edges = [int(edge) for edge in fields[4:7]]
    for turned in range(0, WEIGHT_SCALE, 7):
        pick = sum(turned >= edge for edge in edges)  # what the config's rules compute
        assert pick == pool_for_bucket(tuple(p for p in pools if p.weight), turned, 0) * 2 + 1
    # the other route is padded to the same fields
    assert (
        haproxy_config.render_map(table)["other.localhost"] == "0:0:-1:-1:10000:10000:10000:x:-:-:-"
    )


def test_weights_and_offset_live_in_the_map_not_the_config() -> None:
    a = route(Pool("v2", 100, UP, CANARY), Pool("v1", 9_900, UP))
    b = route(Pool("v2", 2_500, UP, CANARY), Pool("v1", 7_500, UP), offset=1234)
    config_a, digest_a = haproxy_config.render(a, listen=("127.0.0.1", 8080), paths=PATHS)
    config_b, digest_b = haproxy_config.render(b, listen=("127.0.0.1", 8080), paths=PATHS)
    assert (config_a, digest_a) == (config_b, digest_b)
    assert f"description {digest_a}" in config_a
    assert haproxy_config.render_map(a) != haproxy_config.render_map(b)
    assert "backend production.shop.localhost:v2" in config_a
    assert "  server s0 127.0.0.1:9001" in config_a
    moved = route(Pool("v2", 100, (Backend("127.0.0.1", 9002),), CANARY), Pool("v1", 9_900, UP))
    assert haproxy_config.render(moved, listen=("127.0.0.1", 8080), paths=PATHS)[1] != digest_a


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        (route(Pool("v 1", WEIGHT_SCALE, UP)), "release 'v 1'"),
        (route(Pool("v1", 5_000, UP), Pool("v1", 5_000, UP)), "two pools of one release"),
        (
            RoutingTable(
                1,
                {
                    HOST: Route(
                        HOST, "shop", "p", (Pool("v1", 1, UP),), Stickiness(hash_header="x user")
                    )
                },
            ),
            "split.hash_header 'x user'",
        ),
    ],
)
def test_names_haproxy_cannot_take_are_refused_naming_them(
    table: RoutingTable, problem: str
) -> None:
    with pytest.raises(haproxy_config.ConfigError, match=problem):
        haproxy_config.render(table, listen=("127.0.0.1", 8080), paths=PATHS)


def test_runtime_api_answers_are_read() -> None:
    assert parse_map("0x55d1 a.localhost 1:0:0:1:100:v2:v1\n0x55d2 b.localhost 0:0\n\n") == {
        "a.localhost": "1:0:0:1:100:v2:v1",
        "b.localhost": "0:0",
    }
    state = (
        "1\n# be_id be_name srv_id srv_name srv_addr ...\n"
        "4 a.localhost:v2 1 s0 127.0.0.1 2 0 1 1 8 1 0 2 0 0 0 0 - 19001 - 0 0 - - 0\n"
    )
    assert parse_servers(state) == {("a.localhost:v2", "127.0.0.1", 19001)}
    header = "pxname,svname,req_tot,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,econ,eresp"
    stat = (
        f"# {header}\n"
        "laneway,FRONTEND,30,0,20,0,0,10,,\n"
        "a.localhost:v1,s0,9,0,5,0,1,3,1,0\n"
        "a.localhost:v1,BACKEND,10,0,5,0,1,4,1,1\n"
        "unavailable,BACKEND,0,0,0,0,0,0,0,0\n"
    )
    counts = parse_stat(stat)
    assert list(counts) == [("a.localhost", "v1")]
    measured = counts[("a.localhost", "v1")]
    assert (measured.requests, measured.statuses, measured.errors) == (10, (0, 5, 0, 1, 2), 2)
