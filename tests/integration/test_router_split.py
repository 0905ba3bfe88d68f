"""The split and the counters through a real router process (`python -m laneway.router`):
fresh clients' share of the canary at 1% and 0.1% over 100,000 requests each, a cookie
holding its side across a weight change, and the counters read through the driver's
socket matching what was sent.

The backends are small asyncio protocols in the test's loop that answer pipelined requests
at once, naming themselves in `X-Server` (and answering `GET /500` with a 500); the clients
pipeline requests on keep-alive connections, so 100,000 requests take a few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import socket
import stat
import sys
import threading
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest
from tests.integration.router_harness import run

from laneway.core.measurements import LATENCY_BOUNDS
from laneway.core.routing import CANARY, STABLE, Backend, Pool, Route, RoutingTable
from laneway.router import driver

pytestmark = pytest.mark.integration

HOST = "production.shop.localhost"
BROKEN = "broken.shop.localhost"
TIMEOUT = 10.0


class _Backend(asyncio.Protocol):
    """Answers each request (no bodies) as it arrives: 200 naming `name`, 500 for /500."""

    def __init__(self, name: str) -> None:
        ok = f"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Server: {name}\r\n\r\nok"
        failed = (
            f"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nX-Server: {name}\r\n\r\n"
        )
        self.ok, self.failed = ok.encode(), failed.encode()
        self.tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        heads = (self.tail + data).split(b"\r\n\r\n")
        self.tail = heads.pop()
        if heads:
            self.transport.write(
                b"".join(self.failed if h.startswith(b"GET /500 ") else self.ok for h in heads)
            )


@contextlib.asynccontextmanager
async def backends(*names: str) -> AsyncIterator[list[Backend]]:
    loop = asyncio.get_running_loop()
    servers = [
        await loop.create_server(lambda n=name: _Backend(n), "127.0.0.1", 0) for name in names
    ]
    try:
        yield [Backend("127.0.0.1", s.sockets[0].getsockname()[1]) for s in servers]
    finally:
        for s in servers:
            s.close()


def refused() -> Backend:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return Backend("127.0.0.1", s.getsockname()[1])


def table(version: int, canary: int, stable: Backend, new: Backend, **more: Route) -> RoutingTable:
    route = Route(
        HOST,
        "shop",
        "production",
        (Pool("v2", canary, (new,), CANARY), Pool("v1", 10_000 - canary, (stable,), STABLE)),
    )
    return RoutingTable(version, {HOST: route, **more})


class RouterProcess:
    def __init__(self, table_file: Path) -> None:
        self.table_file = table_file
        self.process: asyncio.subprocess.Process | None = None
        self.driver = driver.BuiltinRouterDriver(table_file, pid=self.pid)
        self.port = 0
        self._drain: asyncio.Task[None] | None = None

    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "laneway.router",
            "--listen",
            "127.0.0.1:0",
            "--table",
            str(self.table_file),
            stderr=asyncio.subprocess.PIPE,
        )
        assert self.process.stderr is not None
        while not self.port:
            line = (await asyncio.wait_for(self.process.stderr.readline(), TIMEOUT)).decode()
            assert line, "the router exited before listening"
            if "listening on http://" in line:
                self.port = int(line.rsplit(":", 1)[1].split()[0])
        self._drain = asyncio.create_task(self._read_log(self.process.stderr))

    @staticmethod
    async def _read_log(stream: asyncio.StreamReader) -> None:
        while await stream.readline():
            pass

    async def apply(self, new: RoutingTable) -> None:
        self.driver.apply(new)
        while self.driver.verify(new) is not True:
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.process.wait(), TIMEOUT)
        if self._drain is not None:
            await self._drain


@contextlib.asynccontextmanager
async def router_process(tmp_path: Path, first: RoutingTable) -> AsyncIterator[RouterProcess]:
    router = RouterProcess(tmp_path / "routes.json")
    router.driver.apply(first)
    await router.start()
    try:
        yield router
    finally:
        await router.stop()


Response = tuple[int, str, str | None]
"""Status, X-Server, and the bucket laneway's cookie was set to (None: not set)."""


def parse(data: bytes) -> list[Response]:
    found = []
    for raw in data.split(b"HTTP/1.1 ")[1:]:
        head = raw.split(b"\r\n\r\n", 1)[0].decode()
        lines = head.split("\r\n")
        fields = dict(line.split(": ", 1) for line in lines[1:])
        cookie = fields.get("set-cookie")
        bucket = cookie.split(";", 1)[0].split("=", 1)[1] if cookie else None
        found.append((int(lines[0][:3]), fields["X-Server"], bucket))
    return found


async def send(
    port: int, count: int, *, host: str = HOST, path: str = "/", cookie: str | None = None
) -> list[Response]:
    """`count` requests pipelined on one keep-alive connection, in batches."""
    extra = f"Cookie: {cookie}\r\n" if cookie else ""
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    responses: list[Response] = []
    try:
        while len(responses) < count:
            batch = min(500, count - len(responses))
            writer.write(request * batch)
            data = b""
            while data.count(b"X-Server: ") < batch:
                chunk = await asyncio.wait_for(reader.read(1 << 18), TIMEOUT)
                assert chunk, "the router closed the connection"
                data += chunk
            while not data.endswith((b"ok", b"\r\n\r\n")):  # the last body
                data += await asyncio.wait_for(reader.read(1 << 18), TIMEOUT)
            responses += parse(data)
    finally:
        writer.close()
    return responses


async def fresh_clients(port: int, count: int, connections: int = 8) -> list[Response]:
    parts = await asyncio.gather(*(send(port, count // connections) for _ in range(connections)))
    return [response for part in parts for response in part]


def within_3_sd(observed: int, count: int, weight: int) -> tuple[bool, str]:
    p = weight / 10_000
    sd = math.sqrt(count * p * (1 - p))
    return abs(observed - count * p) <= 3 * sd, f"{observed} of {count} at p={p} (sd {sd:.1f})"


@pytest.mark.parametrize("weight", [100, 10])
def test_fresh_clients_share_is_the_weight(tmp_path: Path, weight: int) -> None:
    async def main() -> None:
        async with (
            backends("stable", "canary") as (stable, new),
            router_process(tmp_path, table(1, weight, stable, new)) as router,
        ):
            count = 100_000
            responses = await fresh_clients(router.port, count)
            assert len(responses) == count
            servers = Counter(server for _, server, _ in responses)
            ok, why = within_3_sd(servers["canary"], count, weight)
            assert ok, why
            # every fresh client was given its bucket, and its bucket decided its side
            for _, server, bucket in responses:
                assert bucket is not None
                assert (server == "canary") == (int(bucket) < weight)

    run(main())


def test_a_client_keeps_its_side_when_the_weight_is_raised(tmp_path: Path) -> None:
    async def main() -> None:
        async with (
            backends("stable", "canary") as (stable, new),
            router_process(tmp_path, table(1, 100, stable, new)) as router,
        ):
            responses = await fresh_clients(router.port, 4000)
            sides = {server: bucket for _, server, bucket in responses}
            assert set(sides) == {"canary", "stable"}
            holders = {side: f"laneway_bucket={sides[side]}" for side in sides}
            for version, weight in ((1, 100), (2, 500), (3, 100)):
                if version > 1:
                    await router.apply(table(version, weight, stable, new))
                canary = await send(router.port, 1000, cookie=holders["canary"])
                assert {(server, bucket) for _, server, bucket in canary} == {("canary", None)}
            # a stable client outside every weight used stays on stable throughout
            far = "laneway_bucket=9999"
            assert {server for _, server, _ in await send(router.port, 500, cookie=far)} == {
                "stable"
            }

    run(main())


def test_counters_through_the_socket_match_what_was_sent(tmp_path: Path) -> None:
    async def main() -> None:
        async with backends("stable", "canary") as (stable, new):
            broken = Route(BROKEN, "shop", "broken", (Pool("v1", 10_000, (refused(),)),))
            first = table(1, 3000, stable, new, **{BROKEN: broken})
            async with router_process(tmp_path, first) as router:
                sock = driver.counters_path(router.table_file)
                assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
                before = await asyncio.to_thread(router.driver.read_snapshot)
                assert before is not None and before.counters[(HOST, "v1")].requests == 0
                sent: list[Response] = []
                for path, count in (("/", 3000), ("/500", 400)):
                    sent += await send(router.port, count, path=path)
                sent += await send(router.port, 100, path="/500", cookie="laneway_bucket=0")
                refusals = await send_broken(router.port)
                counters = await asyncio.to_thread(router.driver.read_counters)
                assert counters is not None
                for release, name in (("v1", "stable"), ("v2", "canary")):
                    mine = [status for status, server, _ in sent if server == name]
                    m = counters[(HOST, release)]
                    assert m.requests == len(mine)
                    assert m.statuses == (0, mine.count(200), 0, 0, mine.count(500))
                    assert m.errors == 0
                    assert sum(m.latency) == m.requests
                    assert len(m.latency) == len(LATENCY_BOUNDS) + 1
                    assert 0 < m.latency_sum < m.requests * LATENCY_BOUNDS[-1]
                broken_counts = counters[(BROKEN, "v1")]
                assert (broken_counts.requests, broken_counts.errors) == (refusals, refusals)
                assert broken_counts.statuses == (0, 0, 0, 0, 0)
                after = await asyncio.to_thread(router.driver.read_snapshot)
                assert after is not None and after.started == before.started
            # the router is gone: it cannot be asked
            assert await asyncio.to_thread(router.driver.read_counters) is None
            assert not driver.counters_path(router.table_file).exists()

    run(main())


async def send_broken(port: int) -> int:
    """Requests to the route whose only backend refuses: each gets the router's 502."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for _ in range(3):
            writer.write(f"GET / HTTP/1.1\r\nHost: {BROKEN}\r\n\r\n".encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
            assert head.startswith(b"HTTP/1.1 502 ")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
    finally:
        writer.close()
    return 3


def test_a_router_that_cannot_be_asked_gives_no_counts(tmp_path: Path) -> None:
    table_file = tmp_path / "routes.json"
    drv = driver.BuiltinRouterDriver(table_file, pid=lambda: None)
    assert drv.read_counters() is None  # no socket
    path = driver.counters_path(table_file)
    for answer in (b"not json", b'{"started": 1}', b'{"started": 1, "counters": [{}]}', b""):
        with socket.socket(socket.AF_UNIX) as listener:
            listener.bind(str(path))
            listener.listen(1)

            def answer_once(listener: socket.socket = listener, answer: bytes = answer) -> None:
                accepted, _ = listener.accept()
                with accepted:
                    accepted.sendall(answer)

            thread = threading.Thread(target=answer_once)
            thread.start()
            assert drv.read_counters() is None, answer
            thread.join()
        os.unlink(path)
