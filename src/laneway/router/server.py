"""Runs the built-in router: listen, load and reload the table, tick, drain on the way out.

`python -m laneway.router` calls `run`; tests await `serve` or drive a `Router` directly.
The table comes from a JSON file (`RoutingTable.to_json`) that `router.driver` writes: it is
loaded at start, on SIGHUP, and on a 0.5 s tick when the file's identity, mtime or size
changed. After each load the router writes the version it serves to `<file>.applied`; a bad
file keeps the table in service and logs one line. Its counters are served as JSON, one
snapshot per connection, on the Unix socket `<file>.sock` (`driver.read_snapshot`). The data path is `router.proxy`, one
protocol per client connection over the `router.state` they share.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import resource
import signal
import socket
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, cast

from laneway import errors
from laneway.core.routing import RoutingTable
from laneway.router import driver, proxy
from laneway.router.state import RouterState
from laneway.router.types import CounterKey, PoolCounters, ProxyOptions

log = logging.getLogger("laneway.router")


class Router:
    """The listening socket, the shared proxy state and the table file behind it."""

    def __init__(
        self, table_file: Path, *, options: ProxyOptions | None = None, tick: float = 0.5
    ) -> None:
        self.table_file = Path(table_file)
        self.tick_interval = tick
        self.state = RouterState(options=options)
        self._stamp: tuple[int, int, int] | None = None
        self.started = time.time()
        self.counters_file = driver.counters_path(self.table_file)
        self._server: asyncio.Server | None = None
        self._counters_server: asyncio.Server | None = None
        self._counters_inode = 0
        self._ticker: asyncio.Task[None] | None = None

    @property
    def table(self) -> RoutingTable:
        return self.state.table

    @property
    def counters(self) -> dict[CounterKey, PoolCounters]:
        """Per (hostname, release): requests, responses by class, errors, latency."""
        return self.state.counters

    def snapshot(self) -> bytes:
        """What the counters socket answers (`driver.CounterSnapshot`)."""
        return json.dumps(
            {
                "started": self.started,
                "counters": [
                    {"hostname": hostname, "release": release, **counts.snapshot().to_json()}
                    for (hostname, release), counts in self.state.counters.items()
                ],
            }
        ).encode()

    @property
    def address(self) -> tuple[str, int]:
        assert self._server is not None and self._server.sockets
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    def load(self) -> bool:
        """Read the table file and serve it; on any problem keep the current table."""
        self._stamp = self._stat()
        try:
            table = RoutingTable.from_json(self.table_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            problem = "the file does not exist"
        except OSError as exc:
            problem = exc.strerror or str(exc)
        except KeyError as exc:
            problem = f"missing field {exc}"
        except (ValueError, TypeError, AttributeError) as exc:
            problem = str(exc) or type(exc).__name__
        else:
            self.state.set_table(table)
            try:
                driver.write_atomically(driver.applied_path(self.table_file), f"{table.version}\n")
            except OSError as exc:
                log.warning("routing table v%d loaded but not acknowledged: %s", table.version, exc)
            log.info("routing table v%d loaded: %d routes", table.version, len(table.routes))
            return True
        log.warning(
            "routing table %s not loaded: %s; still serving v%d",
            self.table_file,
            problem,
            self.state.table.version,
        )
        return False

    def check(self) -> bool:
        """Load the table file if it changed since the last attempt."""
        if self._stat() != self._stamp:
            return self.load()
        return False

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.table_file)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    async def start(self, host: str, port: int) -> None:
        """Load the table and listen; InvalidInput if the address cannot be listened on."""
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                lambda: proxy.ProxyProtocol(self.state), host, port, backlog=2048
            )
        except OSError as exc:
            # asyncio wraps bind errors in a long sentence; errno says it shorter
            why = os.strerror(exc.errno) if exc.errno and exc.errno > 0 else exc.strerror
            why = (why or str(exc)).lower()
            raise errors.InvalidInput(f"cannot listen on {host}:{port}: {why}") from exc
        self.load()  # no request is read before this returns: the loop has not run since
        self._counters_server = await self._serve_counters()
        self._ticker = loop.create_task(self._tick_forever())

    async def _serve_counters(self) -> asyncio.Server | None:
        """Listen on the counters socket (0600, beside the table); each connection gets one
        snapshot and is closed. Without it the router still routes: it logs why."""
        path = self.counters_file
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with driver.unix_address(path) as address:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(address)  # a socket left by an earlier router
                sock.bind(address)
                os.chmod(address, 0o600)
                self._counters_inode = os.stat(address).st_ino
            sock.listen(16)
            return await asyncio.get_running_loop().create_unix_server(
                lambda: _CountersProtocol(self.snapshot), sock=sock
            )
        except OSError as exc:
            sock.close()
            log.warning("counters not served on %s: %s", path, exc.strerror or exc)
            return None

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval)
            try:
                self.state.tick()
                self.check()
            except Exception:  # the tick must survive a bug in one connection
                log.exception("router tick failed")

    async def close(self, *, drain_timeout: float = 10.0) -> None:
        """Stop accepting, let requests under way finish (at most `drain_timeout`), close."""
        loop = asyncio.get_running_loop()
        if self._server is not None:
            self._server.close()
        state = self.state
        state.draining = True
        state.tick()  # idle connections close now, busy ones after their response
        deadline = loop.time() + drain_timeout
        while state.connections and loop.time() < deadline:
            await asyncio.sleep(0.02)
            state.tick()
        for connection in list(state.connections):
            if connection.transport is not None:
                connection.transport.abort()
        state.upstreams.close_all()
        if self._counters_server is not None:
            self._counters_server.close()
            with contextlib.suppress(OSError), driver.unix_address(self.counters_file) as address:
                if os.stat(address).st_ino == self._counters_inode:  # not a newer router's
                    os.unlink(address)
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)


class _CountersProtocol(asyncio.Protocol):
    def __init__(self, snapshot: Callable[[], bytes]) -> None:
        self.snapshot = snapshot

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        writer = cast(asyncio.WriteTransport, transport)  # uvloop's is not a subclass
        writer.write(self.snapshot())
        writer.close()


async def serve(
    listen_host: str,
    listen_port: int,
    table_file: Path,
    *,
    options: ProxyOptions | None = None,
    tick: float = 0.5,
    drain_timeout: float = 10.0,
    stop: asyncio.Event | None = None,
    handle_signals: bool = True,
    ready: Callable[[Router], Any] | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT (or `stop` is set), reloading the table on SIGHUP."""
    router = Router(table_file, options=options, tick=tick)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[int] = []
    if handle_signals:  # before `start` writes `.applied`, which tells drivers to signal
        handlers: Iterable[tuple[int, Callable[[], Any]]] = (
            (signal.SIGHUP, router.load),
            (signal.SIGTERM, stop.set),
            (signal.SIGINT, stop.set),
        )
        for signum, handler in handlers:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, handler)
                installed.append(signum)
    try:
        await router.start(listen_host, listen_port)
        host, port = router.address
        log.info("listening on http://%s:%d (table %s)", host, port, table_file)
        if ready is not None:
            ready(router)
        await stop.wait()
        log.info("stopping: finishing requests under way (at most %g s)", drain_timeout)
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
        await router.close(drain_timeout=drain_timeout)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(
    listen_host: str,
    listen_port: int,
    table_file: Path,
    *,
    options: ProxyOptions | None = None,
    **kwargs: Any,
) -> None:
    """Run `serve` on uvloop when it is installed, else on asyncio's own loop."""
    options = fit_to_file_limit(options or ProxyOptions())
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(serve(listen_host, listen_port, table_file, options=options, **kwargs))


SPARE_FILES = 256
"""Open files kept for what is not a client connection: the listener, logs, idle pools."""


def fit_to_file_limit(options: ProxyOptions) -> ProxyOptions:
    """Raise the process's soft limit on open files toward what max_connections needs (two
    per connection: the client's and a backend's), as far as the hard limit allows; if that
    is not enough, lower max_connections to fit and say so, rather than fail accept()s."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = options.max_connections * 2 + SPARE_FILES
    if soft == resource.RLIM_INFINITY or soft >= want:
        return options
    raised = want if hard == resource.RLIM_INFINITY else min(want, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
        soft = raised
    if soft >= want:
        return options
    fits = max(1, (soft - SPARE_FILES) // 2)
    log.info(
        "max_connections lowered from %d to %d: the router may open %d files",
        options.max_connections,
        fits,
        soft,
    )
    return dataclasses.replace(options, max_connections=fits)
