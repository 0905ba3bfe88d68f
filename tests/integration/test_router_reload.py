"""The built-in router end to end, its life: stopping with requests under way, and reloads.

Stopping closes idle connections, refuses new ones and lets a request under way finish;
`server.serve` reloads its table on SIGHUP and on its tick and keeps the old table when the
file is bad; `python -m laneway.router`, started as a real process, reloads on SIGHUP,
acknowledges the version it applied, and exits 2 with a message (no traceback) for a port in
use or a bad `--listen`. Upstreams run in the test's own uvloop event loop
(tests/integration/router_harness.py).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest
from tests.integration.router_harness import (
    SHOP,
    TIMEOUT,
    client,
    make_table,
    run,
    single,
    until,
    upstreams,
)

from laneway.core.routing import RoutingTable
from laneway.router import driver, server

pytestmark = pytest.mark.integration


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
