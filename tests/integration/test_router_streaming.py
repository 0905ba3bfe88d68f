"""The built-in router end to end, bodies on the wire: streaming, size, websockets, HTTP/1.0.

Chunked bodies pass through both ways as they arrive (the first chunk before the rest exists),
20 MiB bodies arrive whole with and without a Content-Length, a websocket echoes text and
bytes, and HTTP/1.0, `Connection: close`, HEAD and 204/304 answers are framed as HTTP says.
Real sockets, real upstream servers (uvicorn) and real clients in the test's own uvloop event
loop (tests/integration/router_harness.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.integration.router_harness import (
    SHOP,
    TIMEOUT,
    client,
    raw_exchange,
    router,
    run,
    single,
    upstreams,
)
from websockets.asyncio.client import connect as ws_connect

pytestmark = pytest.mark.integration


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
