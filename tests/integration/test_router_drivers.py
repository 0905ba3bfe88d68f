"""The `RouterDriver` contract, which every data plane's driver keeps: the fake, the built-in
router's (a `python -m laneway.router` process) and HAProxy's (an HAProxy the driver runs).

- `verify` is never True for a table the data plane was not handed, and becomes True once
  it was (a data plane may load it a moment later: the built-in router on SIGHUP, HAProxy
  on a reload);
- `apply` does not raise while the data plane is down;
- `read_snapshot` counts each (hostname, release)'s requests (None: cannot say now), and
  says since when: the same start on every read while the data plane runs.
"""

from __future__ import annotations

import http.client
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
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
from laneway.router.base import RouterDriver
from laneway.router.driver import BuiltinRouterDriver
from laneway.router.fake import FakeRouterDriver
from laneway.router.haproxy import HAProxyDriver, find_haproxy
from laneway.testing import Upstream, free_port, poll_until

pytestmark = pytest.mark.integration

HOST = "production.shop.localhost"


@dataclass
class Plane:
    """A driver, and how to start and stop the data plane behind it."""

    name: str
    driver: RouterDriver
    port: int | None = None
    """Where it serves requests; None for the fake, which serves none."""
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, tmp_path: Path) -> None:
        if isinstance(self.driver, HAProxyDriver):
            self.driver.ensure_running()
        elif isinstance(self.driver, BuiltinRouterDriver):
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "laneway.router",
                    "--listen",
                    "127.0.0.1:0",
                    "--table",
                    str(self.driver.table_file),
                ],
                stderr=subprocess.PIPE,
            )
            self.processes.append(process)
            assert process.stderr is not None
            while not self.port:
                line = process.stderr.readline().decode()
                assert line, "the router exited before listening"
                if "listening on http://" in line:
                    self.port = int(line.rsplit(":", 1)[1].split()[0])

    def stop(self) -> None:
        if isinstance(self.driver, HAProxyDriver):
            self.driver.stop()
        for process in self.processes:
            process.terminate()
            process.wait(timeout=10)
            assert process.stderr is not None
            process.stderr.close()


@pytest.fixture(params=["fake", "builtin", "haproxy"])
def plane(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Plane]:
    name = request.param
    if name == "fake":
        made = Plane(name, FakeRouterDriver())
    elif name == "builtin":
        processes: list[subprocess.Popen[bytes]] = []
        driver = BuiltinRouterDriver(
            tmp_path / "routes.json", pid=lambda: processes[0].pid if processes else None
        )
        made = Plane(name, driver, processes=processes)
    else:
        if find_haproxy() is None:
            pytest.skip("HAProxy is not installed")
        port = free_port()
        made = Plane(
            name, HAProxyDriver(listen=("127.0.0.1", port), directory=tmp_path / "haproxy"), port
        )
    try:
        yield made
    finally:
        made.stop()


@pytest.fixture
def upstreams() -> Iterator[tuple[Upstream, Upstream]]:
    servers = (Upstream("v1"), Upstream("v2"))
    yield servers
    for server in servers:
        server.close()


def table(stable: Upstream, canary: Upstream, weight: int, version: int) -> RoutingTable:
    pools = (
        Pool("v2", weight, (Backend("127.0.0.1", canary.port),), role=CANARY),
        Pool("v1", 10_000 - weight, (Backend("127.0.0.1", stable.port),)),
    )
    return RoutingTable(version=version, routes={HOST: Route(HOST, "shop", "production", pools)})


def get(port: int, count: int) -> list[str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        bodies = []
        for _ in range(count):
            connection.request("GET", "/", headers={"Host": HOST})
            bodies.append(connection.getresponse().read().decode())
        return bodies
    finally:
        connection.close()


def test_verify_says_yes_only_for_the_table_it_was_handed(
    plane: Plane, upstreams: tuple[Upstream, Upstream], tmp_path: Path
) -> None:
    v1, v2 = upstreams
    first, second = table(v1, v2, 0, version=1), table(v1, v2, 10_000, version=2)
    assert plane.driver.verify(first) is not True
    plane.driver.apply(first)  # the data plane is not running yet: no error
    plane.start(tmp_path)
    poll_until(lambda: plane.driver.verify(first), what=f"{plane.name} serving the first table")
    assert plane.driver.verify(second) is False
    if plane.port is not None:
        assert get(plane.port, 3) == ["v1"] * 3
    plane.driver.apply(second)
    poll_until(lambda: plane.driver.verify(second), what=f"{plane.name} serving the second")
    if plane.port is not None:
        assert get(plane.port, 3) == ["v2"] * 3


def test_counters_count_the_requests_of_each_release(
    plane: Plane, upstreams: tuple[Upstream, Upstream], tmp_path: Path
) -> None:
    if plane.name == "fake":
        pytest.skip("the fake serves no requests: its counters are what a test sets")
    v1, v2 = upstreams
    handed = table(v1, v2, 0, version=1)
    began = time.time()
    plane.driver.apply(handed)
    plane.start(tmp_path)
    poll_until(lambda: plane.driver.verify(handed), what=f"{plane.name} serving the table")
    assert plane.port is not None
    get(plane.port, 5)
    snapshot = plane.driver.read_snapshot()
    assert snapshot is not None
    counters = snapshot.counters
    assert snapshot.started is not None
    assert began - 1 <= snapshot.started <= time.time()
    again = plane.driver.read_snapshot()
    assert again is not None and again.started == snapshot.started
    assert counters[(HOST, "v1")].requests == 5
    assert counters[(HOST, "v1")].statuses[1] == 5
    assert counters.get((HOST, "v2")) is None or counters[(HOST, "v2")].requests == 0


def test_a_client_gets_the_side_the_table_gives_it(
    plane: Plane, upstreams: tuple[Upstream, Upstream], tmp_path: Path
) -> None:
    """The same client (a user id, a bucket cookie, a forced side) gets the same side on
    every data plane: the one `core.routing` computes."""
    if plane.name == "fake":
        pytest.skip("the fake serves no requests")
    v1, v2 = upstreams
    pools = (
        Pool("v2", 3_000, (Backend("127.0.0.1", v2.port),), role=CANARY),
        Pool("v1", 7_000, (Backend("127.0.0.1", v1.port),)),
    )
    split = Stickiness(offset=777, hash_header="x-user")
    handed = RoutingTable(1, {HOST: Route(HOST, "shop", "production", pools, split)})
    plane.driver.apply(handed)
    plane.start(tmp_path)
    poll_until(lambda: plane.driver.verify(handed), what=f"{plane.name} serving the table")
    assert plane.port is not None

    def side(bucket: int) -> str:
        return pools[pool_for_bucket(pools, bucket, split.offset)].release

    connection = http.client.HTTPConnection("127.0.0.1", plane.port, timeout=30)
    try:
        for n in range(100):
            user = f"user-{n}"
            sent: list[tuple[dict[str, str], str]] = [
                ({"x-user": user}, side(bucket_of(user.encode()))),
                ({"Cookie": f"laneway_bucket={n * 97}"}, side(n * 97)),
            ]
            for headers, release in sent:
                connection.request("GET", "/", headers={"Host": HOST, **headers})
                assert connection.getresponse().read().decode() == release, headers
        for force, release in (("always", "v2"), ("never", "v1")):
            connection.request("GET", "/", headers={"Host": HOST, "x-laneway-canary": force})
            assert connection.getresponse().read().decode() == release
    finally:
        connection.close()
