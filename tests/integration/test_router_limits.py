"""The router's limits and timeouts at the byte level: a real `python -m laneway.router`
process, started with short limits as flags, raw client sockets, and raw backend sockets
that record every byte the router sends them and say when the router closes them.

Each wait is on a condition (a byte, an end of stream, a count); its bound only keeps a
broken router from hanging the test. Pooled backend connections are kept for 300 s here
(`--idle-ttl`), so a backend connection that ends within the bound was closed by the
router, not returned to its pool and expired.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import uvloop

from laneway.core.routing import Backend, Pool, Route, RoutingTable

pytestmark = pytest.mark.integration

HOST = "feature-x.shop.localhost"
TIMEOUT = 15.0  # a guard against a hung test, never a measure


def run(coro: Coroutine[Any, Any, None]) -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(asyncio.wait_for(coro, 90))


async def until(predicate: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def within(awaitable: Awaitable[Any], what: str) -> Any:
    try:
        return await asyncio.wait_for(awaitable, TIMEOUT)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


# -- the backend


class Connection:
    """One connection the router made to the backend: what it sent, and whether it ended."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.ended = asyncio.Event()


class RawBackend:
    """An HTTP/1.1 backend on 127.0.0.1:0, written on raw streams so that it can misbehave.

    By path: `/ok` answers 200 with body ok; `/slow-read` reads the head and then nothing
    until `resume` is set; `/huge` answers with an endless body; `/upgrade` answers 101 and
    then says nothing. Every other path is a 200 with the request head as its body.
    """

    def __init__(self) -> None:
        self.connections: list[Connection] = []
        self.resume = asyncio.Event()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.resume.set()
        if self._server is not None:
            self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Connection()
        self.connections.append(conn)
        try:
            await self._serve(conn, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            conn.ended.set()
            writer.close()

    async def _serve(
        self, conn: Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            conn.received += head
            path = head.split(b" ", 2)[1]
            if path == b"/slow-read":
                writer.transport.pause_reading()
                await self.resume.wait()
                writer.transport.resume_reading()
                while data := await reader.read(65536):
                    conn.received += data
                return
            if path == b"/huge":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n")
                while True:
                    writer.write(b"z" * 65536)
                    await writer.drain()
            if path == b"/upgrade":
                writer.write(
                    b"HTTP/1.1 101 Switching Protocols\r\n"
                    b"Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
                )
                while data := await reader.read(65536):
                    conn.received += data
                return
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            while length > 0:  # recorded as it arrives
                data = await reader.read(min(length, 65536))
                if not data:
                    return
                conn.received += data
                length -= len(data)
            body = b"ok" if path == b"/ok" else bytes(head)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body))
            await writer.drain()


# -- the router process


class RouterProcess:
    def __init__(self, port: int, process: asyncio.subprocess.Process) -> None:
        self.port = port
        self.process = process
        self.log: list[str] = []

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)

    async def request(self, data: bytes) -> bytes:
        """Send bytes on a new connection; what comes back until the router closes it."""
        reader, writer = await self.open()
        writer.write(data)
        try:
            return await within(reader.read(), "the router to answer and close")
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def router(
    tmp_path: Path, backend: RawBackend, *, files: int | None = None, **flags: object
) -> AsyncIterator[RouterProcess]:
    """A router process with these flags; `files` is its limit on open files, soft and hard."""
    table_file = tmp_path / "routes.json"
    route = Route(
        HOST, "shop", "feature-x", (Pool("v1", 100, (Backend("127.0.0.1", backend.port),)),)
    )
    table_file.write_text(RoutingTable(1, {HOST: route}).to_json())
    argv = ["--listen", "127.0.0.1:0", "--table", str(table_file), "--idle-ttl", "300"]
    for name, value in flags.items():
        argv += ["--" + name.replace("_", "-"), str(value)]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "laneway.router",
        *argv,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=None
        if files is None
        else lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (files, files)),
    )
    assert process.stderr is not None
    stderr = process.stderr
    reading: asyncio.Task[None] | None = None
    try:
        port = 0
        early = []
        while not port:
            line = (await within(stderr.readline(), "the router to listen")).decode()
            assert line, "the router exited before listening: " + "".join(early)
            early.append(line)
            if "listening on http://" in line:
                port = int(line.rsplit(":", 1)[1].split()[0])
        proc = RouterProcess(port, process)
        proc.log += early

        async def drain() -> None:
            while line := await stderr.readline():
                proc.log.append(line.decode())

        reading = asyncio.create_task(drain())
        yield proc
    finally:
        if process.returncode is None:
            process.terminate()
            await within(process.wait(), "the router to stop")
        if reading is not None:
            await reading


@contextlib.asynccontextmanager
async def backend() -> AsyncIterator[RawBackend]:
    b = RawBackend()
    await b.start()
    try:
        yield b
    finally:
        await b.stop()


def get(path: str = "/", host: str = HOST) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


async def read_response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One response with a Content-Length: (head, body)."""
    head = await within(reader.readuntil(b"\r\n\r\n"), "a response head")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head, await within(reader.readexactly(length), "a response body")


# -- the head


def test_a_head_over_the_limit_in_one_write_is_431_and_never_reaches_the_backend(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        async with backend() as b, router(tmp_path, b) as r:
            big = get().replace(b"\r\n\r\n", b"\r\nx-big: " + b"y" * 100_000 + b"\r\n\r\n")
            answer = await r.request(big)
            assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
            many = get().replace(
                b"\r\n\r\n",
                b"".join(b"\r\nx-h%d: %s" % (i, b"v" * 90) for i in range(1000)) + b"\r\n\r\n",
            )
            assert (await r.request(many)).startswith(b"HTTP/1.1 431 ")
            # a head just under the limit goes through, on a connection that stays open
            reader, writer = await r.open()
            writer.write(
                get("/ok").replace(b"\r\n\r\n", b"\r\nx-h: " + b"v" * 60_000 + b"\r\n\r\n")
            )
            head, body = await read_response(reader)
            assert head.startswith(b"HTTP/1.1 200 ") and body == b"ok"
            writer.close()
            assert all(
                b"x-big" not in c.received and b"x-h999" not in c.received for c in b.connections
            )

    run(main())


def test_an_absolute_form_request_is_routed_by_its_own_authority(tmp_path: Path) -> None:
    async def main() -> None:
        async with backend() as b, router(tmp_path, b) as r:
            reader, writer = await r.open()
            writer.write(
                f"GET http://{HOST}:8080/p?q=1 HTTP/1.1\r\nHost: other.shop.localhost\r\n\r\n".encode()
            )
            head, body = await read_response(reader)
            assert head.startswith(b"HTTP/1.1 200 ")
            lines = body.split(b"\r\n")
            assert lines[0] == b"GET /p?q=1 HTTP/1.1"
            hosts = [line for line in lines if line.lower().startswith(b"host:")]
            assert hosts == [f"host: {HOST}:8080".encode()]
            writer.write(f"GET http://other.host/ HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
            head, body = await read_response(reader)
            assert head.startswith(b"HTTP/1.1 404 ") and b"other.host" in body
            writer.close()

    run(main())


def test_a_head_that_never_ends_is_408_and_closed(tmp_path: Path) -> None:
    async def main() -> None:
        async with backend() as b, router(tmp_path, b, head_timeout=1) as r:
            reader, writer = await r.open()
            writer.write(b"GET / HTTP/1.1\r\nHost: " + HOST.encode())
            answer = await within(reader.read(), "the router to give up on the head")
            assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
            assert b"connection: close" in answer
            silent_reader, silent = await r.open()  # not a byte: closed with nothing said
            assert await within(silent_reader.read(), "the router to close") == b""
            writer.close()
            silent.close()
            assert b.connections == []

    run(main())


def test_a_slowloris_leaves_other_clients_served_and_is_cut_at_the_head_timeout(
    tmp_path: Path,
) -> None:
    slow = 200

    async def main() -> None:
        async with backend() as b, router(tmp_path, b, head_timeout=3) as r:
            loris = [await r.open() for _ in range(slow)]
            for _, writer in loris:
                writer.write(b"GET / HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\nX-a: ")
            for _, writer in loris:
                await writer.drain()
            reader, writer = await r.open()
            for _ in range(20):
                writer.write(get("/ok"))
                head, body = await read_response(reader)
                assert head.startswith(b"HTTP/1.1 200 ") and body == b"ok"
            writer.close()
            answers = await within(
                asyncio.gather(*(reader.read() for reader, _ in loris)), "the slow heads to end"
            )
            assert all(answer.startswith(b"HTTP/1.1 408 ") for answer in answers)
            for _, writer in loris:
                writer.close()
            assert len(b.connections) == 1  # the served client's only

    run(main())


# -- the connection limit


def test_connections_over_the_limit_are_refused_at_once_and_the_others_served(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        async with backend() as b, router(tmp_path, b, max_connections=5) as r:
            held = [await r.open() for _ in range(5)]
            reader, writer = held[0]
            writer.write(get("/ok"))  # accepted in order: the five before any later one
            assert (await read_response(reader))[1] == b"ok"
            answer = await r.request(b"")
            assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
            for reader, writer in held[1:]:
                writer.write(get("/ok"))
                assert (await read_response(reader))[1] == b"ok"
            held[-1][1].close()

            async def served() -> bool:
                close = get("/ok").replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
                try:
                    answer = await r.request(close)
                except ConnectionResetError:  # refused, its request unread: a reset
                    return False
                return answer.startswith(b"HTTP/1.1 200 ")

            deadline = time.monotonic() + TIMEOUT
            while not await served():  # once the router has seen the fifth one go
                assert time.monotonic() < deadline, "a freed connection was never reused"
            for _, writer in held[:-1]:
                writer.close()
            await until(lambda: any("refused" in line for line in r.log), "the refusal logged")

    run(main())


def test_the_connection_limit_fits_the_open_file_limit(tmp_path: Path) -> None:
    async def main() -> None:
        async with backend() as b, router(tmp_path, b, files=300) as r:
            await until(lambda: any("lowered from 10000 to 22" in x for x in r.log), "the log")
            held = [await r.open() for _ in range(22)]
            reader, writer = held[-1]
            writer.write(get("/ok"))
            assert (await read_response(reader))[1] == b"ok"
            assert (await r.request(b"")).startswith(b"HTTP/1.1 503 ")
            for _, writer in held:
                writer.close()

    run(main())


# -- once a request has started


def test_a_request_body_that_stalls_is_408_and_the_backend_connection_closed(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        async with backend() as b, router(tmp_path, b, body_timeout=1) as r:
            reader, writer = await r.open()
            writer.write(
                f"POST /upload HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 1000\r\n\r\n".encode()
                + b"x" * 10
            )
            await until(
                lambda: b.connections and b.connections[0].received.endswith(b"x" * 10),
                "the start of the body at the backend",
            )
            answer = await within(reader.read(), "the router to give up on the body")
            assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
            await within(b.connections[0].ended.wait(), "the backend connection to be closed")
            writer.close()

    run(main())


def test_a_client_that_stops_reading_is_cut_and_the_backend_connection_closed(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        async with backend() as b, router(tmp_path, b, send_timeout=1) as r:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", r.port))
            reader, writer = await asyncio.open_connection(sock=sock)
            writer.write(get("/huge"))
            await within(reader.readexactly(1000), "the response to start")
            writer.transport.pause_reading()  # and never reads again
            await until(lambda: b.connections, "the backend connection")
            await within(b.connections[0].ended.wait(), "the backend connection to be closed")
            writer.transport.resume_reading()
            received = 1000
            with contextlib.suppress(ConnectionError):
                while data := await within(reader.read(1 << 20), "the client connection to end"):
                    received += len(data)
            assert received < 1_000_000_000  # cut short
            writer.close()

    run(main())


def test_a_backend_that_stops_reading_the_request_is_504_and_closed(tmp_path: Path) -> None:
    async def main() -> None:
        async with backend() as b, router(tmp_path, b, send_timeout=1, body_timeout=300) as r:
            reader, writer = await r.open()
            size = 64 << 20
            writer.write(
                f"POST /slow-read HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {size}\r\n\r\n".encode()
            )
            sending = asyncio.create_task(send_forever(writer, size))
            answer = await within(reader.read(), "the router to give up on the backend")
            assert answer.startswith(b"HTTP/1.1 504 Gateway Timeout\r\n")
            assert b"did not take the request in time" in answer
            sending.cancel()
            b.resume.set()
            await within(b.connections[0].ended.wait(), "the backend connection to be closed")
            writer.close()

    run(main())


async def send_forever(writer: asyncio.StreamWriter, size: int) -> None:
    with contextlib.suppress(ConnectionError):
        piece = b"x" * 65536
        for _ in range(size // len(piece)):
            writer.write(piece)
            await writer.drain()


def test_an_idle_upgraded_connection_is_closed_at_the_tunnel_timeout(tmp_path: Path) -> None:
    async def main() -> None:
        async with backend() as b, router(tmp_path, b, tunnel_timeout=1) as r:
            reader, writer = await r.open()
            writer.write(
                f"GET /upgrade HTTP/1.1\r\nHost: {HOST}\r\n"
                "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n".encode()
            )
            head = await within(reader.readuntil(b"\r\n\r\n"), "the 101")
            assert head.startswith(b"HTTP/1.1 101 ")
            writer.write(b"spliced")
            await until(lambda: b.connections[0].received.endswith(b"spliced"), "the bytes spliced")
            assert await within(reader.read(), "the router to close the idle tunnel") == b""
            await within(b.connections[0].ended.wait(), "the backend side to be closed")
            writer.close()

    run(main())
