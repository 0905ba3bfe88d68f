"""The built-in router end to end, proxying: routing by host, balancing, weights, headers.

Which replica a request reaches (host with or without a port, in any case; round robin; the
weights of a split), what it is told when nothing can answer (404, 503, 502 with failover,
504 on an upstream timeout, a client that leaves), the forwarded and hop-by-hop headers and
connection reuse. Real sockets, real upstream servers (uvicorn) and real clients, all in the
test's own uvloop event loop (tests/integration/router_harness.py); timeouts are driven by
calling the router's tick with a clock ahead of time, never by sleeping.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from tests.integration.router_harness import (
    SHOP,
    client,
    make_table,
    refused_backend,
    router,
    run,
    single,
    until,
    upstreams,
    wait_for_upstreams,
)

pytestmark = pytest.mark.integration


def test_routes_by_host_with_or_without_port_in_any_case(tmp_path: Path) -> None:
    async def main() -> None:
        async with upstreams("a", "b") as (a, b):
            table = make_table(
                1,
                {
                    SHOP: [("v1", 100, [a.backend])],
                    "main.shop.localhost": [("v1", 100, [b.backend])],
                },
            )
            async with router(tmp_path, table) as r:
                for host, name in [
                    (SHOP, "a"),
                    (f"{SHOP}:8080", "a"),
                    ("Feature-X.Shop.LOCALHOST", "a"),
                    ("main.shop.localhost:80", "b"),
                ]:
                    async with client(r, host) as c:
                        response = await c.get("/hello?x=1")
                    assert response.status_code == 200, host
                    assert response.json()["server"] == name
                    assert response.json()["path"] == "/hello"

    run(main())


def test_unknown_host_is_404_and_no_backend_is_503(tmp_path: Path) -> None:
    async def main() -> None:
        table = single([])
        async with router(tmp_path, table) as r:
            async with client(r, "nope.shop.localhost") as c:
                response = await c.get("/")
                assert response.status_code == 404
                assert "No environment is served at 'nope.shop.localhost'" in response.text
            async with client(r) as c:
                response = await c.get("/")
                assert response.status_code == 503
                assert (
                    'environment "feature-x" of app "shop" has no healthy replica' in response.text
                )

    run(main())


def test_round_robin_over_two_backends(tmp_path: Path) -> None:
    async def main() -> None:
        async with (
            upstreams("a", "b") as (a, b),
            router(tmp_path, single([a.backend, b.backend])) as r,
        ):
            async with client(r) as c:
                names = [(await c.get("/")).json()["server"] for _ in range(6)]
                assert names in (["a", "b"] * 3, ["b", "a"] * 3)
                assert (await c.get("/status/500")).status_code == 500
            counters = r.counters[(SHOP, "v1")]
            assert (counters.requests, counters.statuses, counters.errors) == (
                7,
                [0, 6, 0, 0, 1],
                0,
            )

    run(main())


def test_weights_zero_and_split(tmp_path: Path) -> None:
    async def main() -> None:
        async with upstreams("old", "new") as (old, new):
            table = make_table(
                1,
                {
                    SHOP: [("v1", 0, [old.backend]), ("v2", 100, [new.backend])],
                    "split.shop.localhost": [
                        ("v1", 8000, [old.backend]),
                        ("v2", 2000, [new.backend]),
                    ],
                },
            )
            async with router(tmp_path, table) as r:
                async with client(r) as c:
                    names = {(await c.get("/")).json()["server"] for _ in range(10)}
                assert names == {"new"}
                names_list = []
                async with client(r, "split.shop.localhost") as c:
                    for _ in range(200):
                        c.cookies.clear()  # a new client each time
                        names_list.append((await c.get("/")).json()["server"])
                assert 160 - 17 <= names_list.count("old") <= 160 + 17  # 3 sd of a binomial
                counters = r.counters
                assert counters[("split.shop.localhost", "v1")].requests == names_list.count("old")
                assert counters[("split.shop.localhost", "v2")].requests == names_list.count("new")

    run(main())


def test_backend_down_is_502_and_a_refused_backend_fails_over(tmp_path: Path) -> None:
    async def main() -> None:
        dead = refused_backend()
        async with router(tmp_path, single([dead])) as r, client(r) as c:
            response = await c.get("/")
            assert response.status_code == 502
            assert "No replica could be reached" in response.text
            assert 'environment "feature-x" of app "shop"' in response.text
        async with (
            upstreams("live") as (live,),
            router(tmp_path, single([dead, live.backend]), down_for=60) as r,
        ):
            async with client(r) as c:
                for _ in range(6):
                    response = await c.get("/")
                    assert response.status_code == 200
                    assert response.json()["server"] == "live"
            # tried once, then left alone while marked down
            assert r.counters[(SHOP, "v1")].errors == 0  # the refusal was failed over
            assert r.counters[(SHOP, "v1")].requests == 6

    run(main())


def test_upstream_timeout_is_504_and_client_disconnect_closes_upstream(tmp_path: Path) -> None:
    async def main() -> None:
        async with (
            upstreams("a") as (a,),
            router(tmp_path, single([a.backend]), read_timeout=5) as r,
        ):
            async with client(r) as c:
                pending = asyncio.create_task(c.get("/hang"))
                await wait_for_upstreams(r)
                r.state.tick(time.monotonic() + 10)  # as if 10 s had passed
                response = await pending
                assert response.status_code == 504
                assert "did not answer in time" in response.text
                assert r.counters[(SHOP, "v1")].errors == 1

            # a client that goes away mid-request takes its upstream connection with it
            _, port = r.address
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"GET /hang HTTP/1.1\r\nHost: {SHOP}\r\n\r\n".encode())
            (proxied,) = await wait_for_upstreams(r)
            assert proxied.transport is not None
            local_port = proxied.transport.get_extra_info("sockname")[1]
            assert a.server is not None
            upstream_side = a.server.server_state.connections
            assert any(c.client[1] == local_port for c in upstream_side)  # type: ignore[attr-defined]
            writer.close()
            await until(
                lambda: all(c.client[1] != local_port for c in upstream_side),  # type: ignore[attr-defined]
                "the upstream connection closed",
            )

    run(main())


def test_forwarded_headers_and_hop_by_hop(tmp_path: Path) -> None:
    async def main() -> None:
        async with upstreams("a") as (a,), router(tmp_path, single([a.backend])) as r:
            async with client(r, f"{SHOP}:8080") as c:
                response = await c.get(
                    "/",
                    headers={
                        "x-forwarded-for": "203.0.113.7",
                        "x-forwarded-proto": "https",
                        "connection": "keep-alive, x-secret",
                        "x-secret": "hop",
                        "keep-alive": "timeout=5",
                        "x-kept": "yes",
                    },
                )
            headers = response.json()["headers"]
            assert headers["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
            assert headers["x-forwarded-proto"] == "http"
            assert headers["x-forwarded-host"] == f"{SHOP}:8080"
            assert headers["host"] == f"{SHOP}:8080"
            assert headers["x-kept"] == "yes"
            assert "x-secret" not in headers and "keep-alive" not in headers

    run(main())


def test_keep_alive_reuses_one_upstream_connection(tmp_path: Path) -> None:
    async def main() -> None:
        async with upstreams("a") as (a,), router(tmp_path, single([a.backend])) as r:
            limits = httpx.Limits(max_connections=1)
            async with client(r, limits=limits) as c:
                ports = {(await c.get("/")).json()["client_port"] for _ in range(5)}
            assert len(ports) == 1
            assert len(r.state.connections) <= 1

    run(main())
