"""What the built-in router's end-to-end tests share: real upstream servers, the router, clients.

`Upstream` is a uvicorn server on 127.0.0.1:0 with a small ASGI app (echo, digest, stream, big,
hang, status, websocket echo); `router` starts a `server.Router` on a routing table written by
the built-in driver; `client` and `raw_exchange` talk to it; `run` runs a test's coroutine on
uvloop, as in production. Ports come from binding port 0; waits are on conditions (`until`),
never on the clock. Used by test_router.py, test_router_streaming.py, test_router_reload.py,
test_router_split.py and test_metrics_api.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import socket
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import uvloop

from laneway.core.routing import Backend, Pool, Route, RoutingTable
from laneway.router import driver, server
from laneway.router.types import ProxyOptions
from laneway.router.upstream import UpstreamConnection

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
