"""The built-in router end to end: real sockets, real upstream servers (uvicorn), real clients.

Upstreams and the router run in the test's own event loop (uvloop, as in production) except
in the test that starts `python -m laneway.router` as a process. Ports come from binding
port 0. Timeouts are driven by calling the router's tick with a clock ahead of time, never
by sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import uvloop
from websockets.asyncio.client import connect as ws_connect

from laneway.core.routing import Backend, Pool, Route, RoutingTable
from laneway.router import driver, server
from laneway.router.types import ProxyOptions
from laneway.router.upstream import UpstreamConnection

pytestmark = pytest.mark.integration

SHOP = "feature-x.shop.localhost"
TIMEOUT = 10.0


def run(coro: Coroutine[Any, Any, None]) -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(asyncio.wait_for(coro, 60))


# -- upstreams


class Upstream:
    """A uvicorn server on 127.0.0.1:0 with a small ASGI app; `name` tells replicas apart."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.go_on = asyncio.Event()  # /stream sends its second part once this is set
        self.stopping = asyncio.Event()  # /hang answers once this is set
        self.server: uvicorn.Server | None = None
        self.port = 0

    @property
    def backend(self) -> Backend:
        return Backend("127.0.0.1", self.port)

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.accept"})
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    return
                await send(
                    {"type": "websocket.send", **{k: message.get(k) for k in ("text", "bytes")}}
                )
        path = scope["path"]
        if path == "/echo":  # the request body back, as it arrives, chunked
            await send({"type": "http.response.start", "status": 200, "headers": []})
            more = True
            while more:
                message = await receive()
                more = message.get("more_body", False)
                await send(
                    {
                        "type": "http.response.body",
                        "body": message.get("body", b""),
                        "more_body": True,
                    }
                )
            await send({"type": "http.response.body", "body": b""})
        elif path == "/digest":  # size and sha256 of the request body, read as it arrives
            digest, size, more = hashlib.sha256(), 0, True
            while more:
                message = await receive()
                more = message.get("more_body", False)
                digest.update(message.get("body", b""))
                size += len(message.get("body", b""))
            body = json.dumps({"size": size, "sha256": digest.hexdigest()}).encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})
        elif path == "/stream":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"first;", "more_body": True})
            await self.go_on.wait()
            await send({"type": "http.response.body", "body": b"rest"})
        elif path == "/big":
            size = int(scope["query_string"] or b"0")
            piece = b"x" * (1 << 20)
            headers = [(b"content-length", str(size).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            while size > 0:
                await send({"type": "http.response.body", "body": piece[:size], "more_body": True})
                size -= len(piece)
            await send({"type": "http.response.body", "body": b""})
        elif path == "/hang":
            await self.stopping.wait()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"late"})
        elif path.startswith("/status/"):
            status = int(path.rsplit("/", 1)[1])
            await send({"type": "http.response.start", "status": status, "headers": []})
            await send({"type": "http.response.body", "body": b""})
        else:
            body = json.dumps(
                {
                    "server": self.name,
                    "method": scope["method"],
                    "path": path,
                    "headers": {k.decode(): v.decode() for k, v in scope["headers"]},
                    "client_port": scope["client"][1],
                }
            ).encode()
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})


@contextlib.asynccontextmanager
async def upstreams(*names: str) -> AsyncIterator[list[Upstream]]:
    started: list[tuple[Upstream, asyncio.Task[None]]] = []
    try:
        for name in names:
            upstream = Upstream(name)
            config = uvicorn.Config(
                upstream.app,
                host="127.0.0.1",
                port=0,
                lifespan="off",
                interface="asgi3",
                proxy_headers=False,
                log_level="error",
                ws="websockets-sansio",
                timeout_graceful_shutdown=1,
            )
            upstream.server = uvicorn.Server(config)
            task = asyncio.create_task(upstream.server.serve())
            started.append((upstream, task))
            await until(lambda u=upstream: u.server.started, "upstream start")  # type: ignore[union-attr]
            upstream.port = upstream.server.servers[0].sockets[0].getsockname()[1]
        yield [upstream for upstream, _ in started]
    finally:
        for upstream, _ in started:
            upstream.go_on.set()
            upstream.stopping.set()
            assert upstream.server is not None
            upstream.server.should_exit = True
        await asyncio.gather(*(task for _, task in started), return_exceptions=True)


def refused_backend() -> Backend:
    """An address nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return Backend("127.0.0.1", s.getsockname()[1])


async def until(predicate: Callable[[], object], what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


# -- the router


async def wait_for_upstreams(r: server.Router) -> list[UpstreamConnection]:
    """The upstream connections of requests under way, once there is at least one."""

    def attached() -> list[UpstreamConnection]:
        return [
            ex.upstream
            for connection in r.state.connections
            for ex in connection.pipeline
            if ex.upstream is not None
        ]

    await until(attached, "a request sent to a replica")
    return attached()


def make_table(
    version: int, routes: dict[str, list[tuple[str, int, list[Backend]]]]
) -> RoutingTable:
    return RoutingTable(
        version=version,
        routes={
            hostname: Route(
                hostname,
                hostname.split(".")[1],
                hostname.split(".")[0],
                tuple(
                    Pool(release, weight, tuple(backends)) for release, weight, backends in pools
                ),
            )
            for hostname, pools in routes.items()
        },
    )


@contextlib.asynccontextmanager
async def router(
    tmp_path: Path, table: RoutingTable, **options: Any
) -> AsyncIterator[server.Router]:
    table_file = tmp_path / "routes.json"
    driver.BuiltinRouterDriver(table_file, pid=lambda: None).apply(table)
    r = server.Router(table_file, options=ProxyOptions(**options), tick=3600)
    await r.start("127.0.0.1", 0)
    try:
        yield r
    finally:
        await r.close(drain_timeout=1)


def client(r: server.Router, host: str = SHOP, **kwargs: Any) -> httpx.AsyncClient:
    _, port = r.address
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers={"host": host}, timeout=TIMEOUT, **kwargs
    )


async def raw_exchange(r: server.Router, request: bytes) -> bytes:
    """Send bytes, read until the router closes the connection."""
    _, port = r.address
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    data = await asyncio.wait_for(reader.read(), TIMEOUT)
    writer.close()
    return data


def single(backends: list[Backend], hostname: str = SHOP) -> RoutingTable:
    return make_table(1, {hostname: [("v1", 100, backends)]})


# -- tests


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


def test_stopping_lets_requests_under_way_finish(tmp_path: Path) -> None:
    async def main() -> None:
        async with upstreams("a") as (a,):
            table_file = tmp_path / "routes.json"
            driver.BuiltinRouterDriver(table_file, pid=lambda: None).apply(single([a.backend]))
            r = server.Router(table_file, tick=3600)
            await r.start("127.0.0.1", 0)
            _, port = r.address
            async with client(r) as busy, client(r) as idle:
                assert (await idle.get("/")).status_code == 200  # leaves an idle connection
                async with busy.stream("GET", "/stream") as response:
                    chunks = response.aiter_raw()
                    assert await asyncio.wait_for(chunks.__anext__(), TIMEOUT) == b"first;"
                    closing = asyncio.create_task(r.close(drain_timeout=TIMEOUT))
                    await until(lambda: len(r.state.connections) == 1, "the idle one closed")
                    with pytest.raises(OSError):
                        await asyncio.open_connection("127.0.0.1", port)
                    a.go_on.set()
                    assert b"".join([chunk async for chunk in chunks]) == b"rest"
                    assert response.headers.get("connection") is None  # sent before stopping
                await asyncio.wait_for(closing, TIMEOUT)
                assert not r.state.connections

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


def test_streams_chunked_bodies_both_ways(tmp_path: Path) -> None:
    async def main() -> None:
        async with (
            upstreams("a") as (a,),
            router(tmp_path, single([a.backend])) as r,
            client(r) as c,
        ):
            # the first chunk of a response arrives while the rest does not exist yet
            async with c.stream("GET", "/stream") as response:
                assert response.headers["transfer-encoding"] == "chunked"
                chunks = response.aiter_raw()
                assert await asyncio.wait_for(chunks.__anext__(), TIMEOUT) == b"first;"
                a.go_on.set()
                assert b"".join([chunk async for chunk in chunks]) == b"rest"

            # the first chunk of an upload is echoed back before the client sends the next
            _, port = r.address
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                f"POST /echo HTTP/1.1\r\nHost: {SHOP}\r\nTransfer-Encoding: chunked\r\n\r\n"
                "4\r\none;\r\n".encode()
            )
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
            assert b"transfer-encoding: chunked" in head.lower()
            assert (
                await asyncio.wait_for(reader.readuntil(b"one;\r\n"), TIMEOUT) == b"4\r\none;\r\n"
            )
            writer.write(b"5\r\nthree\r\n0\r\n\r\n")
            rest = await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), TIMEOUT)
            assert rest == b"5\r\nthree\r\n0\r\n\r\n"
            writer.close()

    run(main())


def test_large_bodies_both_ways(tmp_path: Path) -> None:
    size = 20 * 1024 * 1024
    payload = os.urandom(size)
    expected = {"size": size, "sha256": hashlib.sha256(payload).hexdigest()}

    async def pieces() -> AsyncIterator[bytes]:
        for offset in range(0, size, 1 << 20):
            yield payload[offset : offset + (1 << 20)]

    async def main() -> None:
        async with (
            upstreams("a") as (a,),
            router(tmp_path, single([a.backend])) as r,
            client(r) as c,
        ):
            response = await c.post("/digest", content=payload)  # with a Content-Length
            assert response.json() == expected
            response = await c.post("/digest", content=pieces())  # chunked
            assert response.json() == expected
            async with c.stream("GET", f"/big?{size}") as response:
                assert response.headers["content-length"] == str(size)
                total = 0
                async for chunk in response.aiter_raw():
                    total += len(chunk)
            assert total == size

    run(main())


def test_websocket_echo(tmp_path: Path) -> None:
    async def main() -> None:
        async with upstreams("a") as (a,), router(tmp_path, single([a.backend])) as r:
            _, port = r.address
            async with ws_connect(f"ws://{SHOP}/ws", host="127.0.0.1", port=port) as ws:
                await ws.send("hello")
                assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "hello"
                await ws.send(b"\x00" * 100_000)
                assert await asyncio.wait_for(ws.recv(), TIMEOUT) == b"\x00" * 100_000

    run(main())


def test_http10_and_connection_close(tmp_path: Path) -> None:
    async def main() -> None:
        async with upstreams("a") as (a,), router(tmp_path, single([a.backend])) as r:
            # HTTP/1.0: the response ends with the connection
            data = await raw_exchange(r, f"GET / HTTP/1.0\r\nHost: {SHOP}\r\n\r\n".encode())
            head, _, body = data.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 ")
            assert b"connection: close" in head.lower()
            assert json.loads(body)["server"] == "a"
            # HTTP/1.0, body of unknown length: no chunking, the close ends it
            a.go_on.set()
            data = await raw_exchange(r, f"GET /stream HTTP/1.0\r\nHost: {SHOP}\r\n\r\n".encode())
            assert data.endswith(b"\r\n\r\nfirst;rest")
            assert b"transfer-encoding" not in data.lower()
            # HTTP/1.1 with Connection: close
            data = await raw_exchange(
                r, f"GET / HTTP/1.1\r\nHost: {SHOP}\r\nConnection: close\r\n\r\n".encode()
            )
            assert data.startswith(b"HTTP/1.1 200 ") and b"connection: close" in data.lower()
            # HEAD and 204/304: no body, and the connection goes on
            request = (
                f"HEAD /big?1000 HTTP/1.1\r\nHost: {SHOP}\r\n\r\n"
                f"GET /status/204 HTTP/1.1\r\nHost: {SHOP}\r\n\r\n"
                f"GET /status/304 HTTP/1.1\r\nHost: {SHOP}\r\n\r\n"
                f"GET / HTTP/1.1\r\nHost: {SHOP}\r\nConnection: close\r\n\r\n"
            ).encode()
            data = await raw_exchange(r, request)
            responses = data.split(b"HTTP/1.1 ")[1:]
            assert [response[:3] for response in responses] == [b"200", b"204", b"304", b"200"]
            assert b"content-length: 1000" in responses[0].lower()
            assert responses[0].endswith(b"\r\n\r\n")  # HEAD: the head only
            assert json.loads(responses[3].partition(b"\r\n\r\n")[2])["server"] == "a"

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


def test_serve_reloads_on_sighup_and_tick(tmp_path: Path) -> None:
    async def main() -> None:
        async with upstreams("a", "b") as (a, b):
            table_file = tmp_path / "routes.json"
            first = single([a.backend])
            driver.BuiltinRouterDriver(table_file, pid=lambda: None).apply(first)
            drv = driver.BuiltinRouterDriver(table_file, pid=os.getpid)  # serve is in this process
            stop = asyncio.Event()
            ready: asyncio.Future[server.Router] = asyncio.get_running_loop().create_future()
            task = asyncio.create_task(
                server.serve(
                    "127.0.0.1", 0, table_file, tick=3600, stop=stop, ready=ready.set_result
                )
            )
            try:
                r = await asyncio.wait_for(ready, TIMEOUT)
                assert drv.verify(first) is True
                async with client(r) as c:
                    assert (await c.get("/")).json()["server"] == "a"
                    second = make_table(2, {SHOP: [("v2", 100, [b.backend])]})
                    assert drv.verify(second) is False
                    drv.apply(second)  # sends this process SIGHUP
                    await until(lambda: drv.verify(second), "SIGHUP reload")
                    assert (await c.get("/")).json()["server"] == "b"
                    # a bad file keeps the table and is not acknowledged
                    table_file.write_text("{not json")
                    r.check()
                    assert drv.verify(make_table(3, {})) is False
                    assert (await c.get("/")).json()["server"] == "b"
            finally:
                stop.set()
                await task

    run(main())


def test_module_process_reloads_on_sighup_and_reports_bad_listen(tmp_path: Path) -> None:
    async def main() -> None:
        async with upstreams("a", "b") as (a, b):
            table_file = tmp_path / "routes.json"
            process: asyncio.subprocess.Process | None = None
            drv = driver.BuiltinRouterDriver(
                table_file, pid=lambda: process.pid if process else None
            )
            drv.apply(single([a.backend]))
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "laneway.router",
                "--listen",
                "127.0.0.1:0",
                "--table",
                str(table_file),
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                assert process.stderr is not None
                port = 0
                while not port:
                    line = (await asyncio.wait_for(process.stderr.readline(), TIMEOUT)).decode()
                    assert line, "the router exited before listening"
                    if "listening on http://" in line:
                        port = int(line.rsplit(":", 1)[1].split()[0])
                base = f"http://127.0.0.1:{port}"
                async with httpx.AsyncClient(base_url=base, headers={"host": SHOP}) as c:
                    assert (await c.get("/")).json()["server"] == "a"
                    second = single([b.backend])
                    second = RoutingTable(version=7, routes=second.routes)
                    drv.apply(second)
                    await until(lambda: drv.verify(second), ".applied after SIGHUP")
                    assert (await c.get("/")).json()["server"] == "b"

                # the port is taken now: a second router says so and exits 2
                other = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "laneway.router",
                    "--listen",
                    f"127.0.0.1:{port}",
                    "--table",
                    str(table_file),
                    stderr=asyncio.subprocess.PIPE,
                )
                _, err = await asyncio.wait_for(other.communicate(), TIMEOUT)
                assert other.returncode == 2
                assert b"address already in use" in err and b"Traceback" not in err
                bad = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "laneway.router",
                    "--listen",
                    "localhost",
                    "--table",
                    str(table_file),
                    stderr=asyncio.subprocess.PIPE,
                )
                _, err = await asyncio.wait_for(bad.communicate(), TIMEOUT)
                assert bad.returncode == 2
                assert b"expected HOST:PORT" in err and b"Traceback" not in err
            finally:
                if process.returncode is None:
                    process.send_signal(signal.SIGTERM)
                    await asyncio.wait_for(process.wait(), TIMEOUT)
            assert process.returncode == 0

    run(main())
