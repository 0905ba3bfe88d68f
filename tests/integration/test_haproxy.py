"""The HAProxy data plane for real: an HAProxy the test starts (master-worker, ports chosen at
run time) in front of small upstream servers, driven only through `HAProxyDriver`.

Skipped where HAProxy is not installed (.ci/run installs Debian's `haproxy`).
"""

from __future__ import annotations

import http.client
import math
import os
import signal
import socket
import threading
import zlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from laneway.core.routing import (
    CANARY,
    Backend,
    Pool,
    Route,
    RoutingTable,
    Stickiness,
    bucket_of,
    pool_for_bucket,
)
from laneway.router.haproxy import HAProxyDriver, find_haproxy
from laneway.testing import Upstream, free_port, poll_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(find_haproxy() is None, reason="HAProxy is not installed"),
]

SHOP = "production.shop.localhost"
OTHER = "staging.shop.localhost"


class Client:
    """One keep-alive connection to the router that keeps no cookies: a fresh client each
    request unless the test sends a cookie itself."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def get(
        self, host: str, path: str = "/", headers: dict[str, str] | None = None
    ) -> tuple[int, str, http.client.HTTPMessage]:
        self.connection.request("GET", path, headers={"Host": host, **(headers or {})})
        response = self.connection.getresponse()
        return response.status, response.read().decode(), response.headers

    def close(self) -> None:
        self.connection.close()


def pool(upstream: Upstream, release: str, weight: int, role: str = "stable") -> Pool:
    return Pool(release, weight, (Backend("127.0.0.1", upstream.port),), role=role)


def split_table(
    stable: Upstream, canary: Upstream, weight: int, *, version: int = 1, **split: object
) -> RoutingTable:
    route = Route(
        SHOP,
        "shop",
        "production",
        (pool(canary, "v2", weight, CANARY), pool(stable, "v1", 10_000 - weight)),
        Stickiness(**split),  # type: ignore[arg-type]
    )
    return RoutingTable(version=version, routes={SHOP: route})


@pytest.fixture
def upstreams() -> Iterator[tuple[Upstream, Upstream, Upstream]]:
    servers = (Upstream("v1"), Upstream("v2"), Upstream("other"))
    yield servers
    for server in servers:
        server.close()


@pytest.fixture
def haproxy(tmp_path: Path) -> Iterator[HAProxyDriver]:
    driver = HAProxyDriver(listen=("127.0.0.1", free_port()), directory=tmp_path / "haproxy")
    try:
        yield driver
    finally:
        driver.stop()
        assert driver.master_pid() is None


def test_routes_by_host_and_answers_404_for_others(haproxy, upstreams) -> None:
    v1, v2, other = upstreams
    table = split_table(v1, v2, 0)
    staging = Route(OTHER, "shop", "staging", (pool(other, "v7", 10_000),))
    table = RoutingTable(version=1, routes={**table.routes, OTHER: staging})
    haproxy.apply(table)
    haproxy.ensure_running()
    assert haproxy.verify(table) is True
    client = Client(haproxy.listen[1])
    try:
        assert client.get(SHOP)[:2] == (200, "v1")
        assert client.get("Production.Shop.LOCALHOST.:8080")[:2] == (200, "v1")
        assert client.get(OTHER)[:2] == (200, "other")
        status, body, _ = client.get("nowhere.shop.localhost")
        assert status == 404 and "nowhere.shop.localhost" in body
    finally:
        client.close()


def test_weight_step_without_reload(haproxy, upstreams) -> None:
    v1, v2, _ = upstreams
    first = split_table(v1, v2, 0, version=1)
    second = split_table(v1, v2, 10_000, version=2)
    haproxy.apply(first)
    haproxy.ensure_running()
    worker = haproxy.worker_pid()
    config = haproxy.config_path.read_text()
    assert haproxy.verify(first) is True
    assert haproxy.verify(second) is False
    client = Client(haproxy.listen[1])
    try:
        assert client.get(SHOP)[1] == "v1"
        haproxy.apply(second)
        assert haproxy.verify(second) is True
        assert haproxy.verify(first) is False
        assert client.get(SHOP)[1] == "v2"
    finally:
        client.close()
    assert haproxy.worker_pid() == worker  # the same worker: no reload
    assert haproxy.config_path.read_text() == config


def test_new_servers_reload_seamlessly_and_counts_carry_over(haproxy, upstreams) -> None:
    v1, v2, other = upstreams
    first = split_table(v1, v2, 0, version=1)
    haproxy.apply(first)
    haproxy.ensure_running()
    worker = haproxy.worker_pid()
    client = Client(haproxy.listen[1])
    held: list[int] = []
    holder = threading.Thread(
        target=lambda: held.append(Client(haproxy.listen[1]).get(SHOP, "/hold")[0])
    )
    try:
        for _ in range(5):
            assert client.get(SHOP)[0] == 200
        holder.start()  # a request under way through the reload
        assert v1.holding.wait(30)
        staging = Route(OTHER, "shop", "staging", (pool(other, "v7", 10_000),))
        second = RoutingTable(version=2, routes={**first.routes, OTHER: staging})
        haproxy.apply(second)
        poll_until(lambda: haproxy.verify(second), what="the reloaded worker")
        assert haproxy.worker_pid() != worker
        # the old worker closes its idle keep-alive connections; clients open new ones
        client.close()
        client = Client(haproxy.listen[1])
        assert client.get(OTHER)[1] == "other"
        for _ in range(3):
            assert client.get(SHOP)[0] == 200
        # the new worker's 3 and the old worker's 5, read through the master while it drains
        counters = haproxy.read_counters()
        assert counters is not None
        assert counters[(SHOP, "v1")].requests == 8
        v1.held.set()
        holder.join(30)
        assert held == [200]  # the old worker finished the request it had
    finally:
        client.close()


def test_sticky_sides_match_the_table(haproxy, upstreams) -> None:
    v1, v2, _ = upstreams
    table = split_table(v1, v2, 2_500, offset=4_321, hash_header="x-user", hash_cookie="uid")
    route = table.routes[SHOP]
    haproxy.apply(table)
    haproxy.ensure_running()
    client = Client(haproxy.listen[1])

    def side(bucket: int) -> str:
        return route.pools[pool_for_bucket(route.pools, bucket, route.split.offset)].release

    try:
        for n in range(200):
            user = f"user-{n}"
            assert zlib.crc32(user.encode()) % 10_000 == bucket_of(user.encode())
            assert client.get(SHOP, headers={"x-user": user})[1] == side(bucket_of(user.encode()))
            cookie = {"Cookie": f'a=1; uid="{user}"'}
            assert client.get(SHOP, headers=cookie)[1] == side(bucket_of(user.encode()))
        # the header wins over the cookie, and neither sets laneway's cookie
        _, body, headers = client.get(SHOP, headers={"x-user": "u1", "Cookie": "uid=u2"})
        assert body == side(bucket_of(b"u1")) and headers.get("set-cookie") is None
        # laneway's bucket cookie: set for a fresh client, honored after
        seen = set()
        for _ in range(40):
            _, body, headers = client.get(SHOP)
            value = headers["set-cookie"].split(";")[0]
            name, bucket = value.split("=")
            assert name == "laneway_bucket" and body == side(int(bucket))
            seen.add(body)
            for _ in range(3):
                _, again, headers = client.get(SHOP, headers={"Cookie": value})
                assert again == body and headers.get("set-cookie") is None
        assert seen == {"v1", "v2"}
        for bucket in (0, 5_678, 5_679, 9_999):
            cookie = {"Cookie": f"laneway_bucket={bucket:04d}"}
            assert client.get(SHOP, headers=cookie)[1] == side(bucket)
        # forcing: header first, then cookie, any case
        for headers, release in (
            ({"x-laneway-canary": "always", "x-user": "u1"}, "v2"),
            ({"x-laneway-canary": "NEVER"}, "v1"),
            ({"Cookie": "laneway_canary=always; laneway_bucket=5679"}, "v2"),
            ({"Cookie": "laneway_canary=never; laneway_bucket=5678"}, "v1"),
            ({"x-laneway-canary": "never", "Cookie": "laneway_canary=always"}, "v1"),
        ):
            assert client.get(SHOP, headers=headers)[1] == release, headers
    finally:
        client.close()


def test_fresh_clients_share_is_the_weight(haproxy, upstreams) -> None:
    v1, v2, _ = upstreams
    weight, requests = 500, 20_000
    haproxy.apply(split_table(v1, v2, weight))
    haproxy.ensure_running()
    client = Client(haproxy.listen[1])
    try:
        canary = sum(client.get(SHOP)[1] == "v2" for _ in range(requests))
    finally:
        client.close()
    share = weight / 10_000
    sd = math.sqrt(requests * share * (1 - share))
    assert abs(canary - requests * share) <= 3 * sd, (canary, requests * share, sd)
    counters = haproxy.read_counters()
    assert counters is not None
    assert counters[(SHOP, "v2")].requests == canary
    assert counters[(SHOP, "v1")].requests == requests - canary


def test_counters_match_the_requests(haproxy, upstreams) -> None:
    v1, v2, other = upstreams
    down = free_port()  # nothing listens there
    table = split_table(v1, v2, 0)
    broken = Route(OTHER, "shop", "staging", (Pool("v9", 10_000, (Backend("127.0.0.1", down),)),))
    table = RoutingTable(version=1, routes={**table.routes, OTHER: broken})
    haproxy.apply(table)
    haproxy.ensure_running()
    client = Client(haproxy.listen[1])
    try:
        for path, times in (("/", 7), ("/status/500", 3), ("/status/404", 2), ("/status/302", 1)):
            for _ in range(times):
                client.get(SHOP, path)
        for _ in range(2):  # each waits out HAProxy's retries (1 s apart)
            assert Client(haproxy.listen[1]).get(OTHER)[0] == 503
    finally:
        client.close()
    counters = haproxy.read_counters()
    assert counters is not None
    ok = counters[(SHOP, "v1")]
    assert ok.requests == 13
    assert ok.statuses == (0, 7, 1, 2, 3)
    assert ok.errors == 0
    failing = counters[(OTHER, "v9")]
    assert (failing.requests, failing.statuses, failing.errors) == (2, (0, 0, 0, 0, 0), 2)
    assert counters[(SHOP, "v2")].requests == 0
    # the latency of each response from a replica, from the request log
    poll_until(
        lambda: sum((haproxy.read_counters() or {})[(SHOP, "v1")].latency) == 13,
        what="13 request log lines",
    )
    measured = (haproxy.read_counters() or {})[(SHOP, "v1")]
    assert measured.latency_sum > 0 and sum(measured.latency) == 13


def test_restarts_haproxy_that_died(haproxy, upstreams) -> None:
    v1, v2, _ = upstreams
    table = split_table(v1, v2, 0)
    haproxy.apply(table)
    first = haproxy.ensure_running()
    assert first is not None
    os.killpg(first, signal.SIGKILL)
    poll_until(lambda: haproxy.master_pid() is None, what="the master's exit")
    assert haproxy.verify(table) is None
    second = haproxy.ensure_running()
    assert second not in (None, first)
    assert haproxy.verify(table) is True
    assert Client(haproxy.listen[1]).get(SHOP)[1] == "v1"


def test_a_second_driver_adopts_the_running_haproxy(haproxy, upstreams, tmp_path) -> None:
    v1, v2, _ = upstreams
    table = split_table(v1, v2, 0)
    haproxy.apply(table)
    pid = haproxy.ensure_running()
    again = HAProxyDriver(listen=haproxy.listen, directory=haproxy.directory)
    assert again.master_pid() == pid
    assert again.ensure_running() == pid
    assert again.verify(table) is True
    again.apply(replace(split_table(v1, v2, 10_000), version=2))
    assert Client(haproxy.listen[1]).get(SHOP)[1] == "v2"
    assert again.verify(split_table(v1, v2, 10_000)) is True
    again.stop()


def test_started_before_any_table_it_serves_none(haproxy) -> None:
    assert haproxy.ensure_running() is not None  # a fresh state directory
    assert haproxy.verify(RoutingTable(version=0)) is True
    assert Client(haproxy.listen[1]).get(SHOP)[0] == 404


def test_a_replica_too_slow_to_answer_counts_as_an_error(upstreams, tmp_path) -> None:
    v1, v2, _ = upstreams
    driver = HAProxyDriver(
        listen=("127.0.0.1", free_port()), directory=tmp_path / "slow", server_timeout=0.2
    )
    try:
        driver.apply(split_table(v1, v2, 0))
        driver.ensure_running()
        client = Client(driver.listen[1])
        assert client.get(SHOP, "/hold")[0] == 504  # v1 holds it until the test ends
        client.close()
        counters = driver.read_counters()
        assert counters is not None
        late = counters[(SHOP, "v1")]
        assert (late.requests, late.statuses, late.errors) == (1, (0, 0, 0, 0, 0), 1)
    finally:
        v1.held.set()
        driver.stop()


def test_a_taken_port_is_reported_and_retried_later(tmp_path) -> None:
    from laneway.errors import Unavailable

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        driver = HAProxyDriver(listen=taken.getsockname(), directory=tmp_path / "taken")
        try:
            with pytest.raises(Unavailable, match="HAProxy did not start: .*[Bb]ind"):
                driver.ensure_running()
            assert driver.ensure_running() is None  # backing off: not started again at once
            assert driver.master_pid() is None
        finally:
            driver.stop()
