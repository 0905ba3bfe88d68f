"""B2: failed requests during a deploy, a promote, a config change and a rollback under steady
load through the built-in router, and how fast an instant rollback moves traffic.

    python bench/b2_pipeline.py [--rate 300] [--quiet 3] [--switches 10]

Starts a laneway server on ports chosen at run time, makes the example app (`shop`, packages
vendored as bench/b1_preview.py does, so the build needs no network) with a second commit on
branch `second`, creates `staging` from main and `production` from the same build. A load
generator on an event loop in a thread of its own (raw HTTP/1.1 on keep-alive connections,
open loop: one request every 1/rate s whatever the answers do) sends `GET /api/info` to the
router and records per request: send and answer times, status, and the `release` answering.
Under that load, each phase with --quiet seconds before and after:

    deploy     laneway deploy staging --ref second
    promote    laneway promote staging production       (the load moves to production)
    config     laneway config set staging FOO=bar
    rollback   laneway rollback staging                 (v2 is warm: a router switch)

Failed: a connection error, no answer within 10 s, or any status but 2xx. "switch": from the
command's start to the first answer from the new release; "stale": answers from the old
release to requests sent after that. Then --switches instant rollbacks back and forth (each a
new release): the rollback API is called from the load's event loop while 4 more connections
poll the router back to back, timed from the POST being sent to the first request routed to
the other release (and to its answer, to the API's 202, and to the server's `switched` event,
written once the router has acknowledged the table); and two more `laneway rollback` runs.
Everything it started is stopped and dropped at the end (Server.teardown), also on failure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import uvloop
from b1_preview import make_repo  # bench/ is on sys.path when this runs as a script

from laneway.testing import Server, git, make_server, wait_until

APP = "shop"
TIMEOUT = 10.0
LENGTH = re.compile(rb"(?im)^content-length:\s*(\d+)\s*$")
Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@dataclass
class Sample:
    sent: float  # time.monotonic()
    done: float
    status: int  # 0: no answer (error says why)
    release: str
    error: str = ""
    probe: bool = False

    @property
    def failed(self) -> bool:
        return not 200 <= self.status < 300  # 0: no answer


class Load:
    """Open-loop GETs of /api/info at `rate` per second on an event loop in its own thread."""

    def __init__(self, router: str, rate: float, host: str) -> None:
        address, port = router.rsplit(":", 1)
        self.address, self.port, self.rate, self.host = address, int(port), rate, host
        self.samples: list[Sample] = []
        self.slip = self.cpu = self.elapsed = 0.0  # slip: worst lag behind the schedule
        self.loop = uvloop.new_event_loop()
        self.stopping = False
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._run(),))

    async def get(self, conn: Conn | None, probe: bool = False) -> tuple[Conn | None, Sample]:
        """One request on `conn` (or a new connection); the connection to reuse, if any."""
        sent = time.monotonic()
        try:
            async with asyncio.timeout(TIMEOUT):
                if conn is None:
                    conn = await asyncio.open_connection(self.address, self.port)
                conn[1].write(f"GET /api/info HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
                head = await conn[0].readuntil(b"\r\n\r\n")
                length = LENGTH.search(head)
                if length is None:
                    raise ValueError("an answer without content-length")
                body = await conn[0].readexactly(int(length[1]))
            status = int(head[9:12])
            release = json.loads(body).get("release", "") if status == 200 else ""
            sample = Sample(sent, time.monotonic(), status, release, probe=probe)
            if b"connection: close" not in head.lower():
                self.samples.append(sample)
                return conn, sample
        except (OSError, EOFError, TimeoutError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:100]
            sample = Sample(sent, time.monotonic(), 0, "", error, probe)
        self.samples.append(sample)
        if conn is not None:
            conn[1].close()
        return None, sample

    async def _one(self, idle: list[Conn]) -> None:
        conn, _ = await self.get(idle.pop() if idle else None)
        if conn is not None:
            idle.append(conn)

    async def _run(self) -> None:
        idle: list[Conn] = []
        tasks: set[asyncio.Task[None]] = set()
        cpu, due = time.thread_time(), time.monotonic()
        start = due
        while not self.stopping:
            due += 1 / self.rate
            now = time.monotonic()
            self.slip = max(self.slip, now - due)
            if due > now:
                await asyncio.sleep(due - now)
            tasks.add(task := asyncio.create_task(self._one(idle)))
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
        self.cpu, self.elapsed = time.thread_time() - cpu, time.monotonic() - start
        for _, writer in idle:
            writer.close()

    async def _switch(self, api: str, token: str, path: str, before: str) -> dict:
        """POST `path` while 4 connections poll the router back to back, until one of them
        is answered by a release other than `before`."""
        seen = asyncio.Event()

        async def poll() -> None:
            conn: Conn | None = None
            while not seen.is_set():
                conn, sample = await self.get(conn, probe=True)
                if sample.release not in ("", before):
                    seen.set()
            if conn is not None:
                conn[1].close()

        pollers = [asyncio.create_task(poll()) for _ in range(4)]
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=api, headers=headers) as http:
            await asyncio.sleep(0.2)  # the pollers are connected and polling
            wall, sent = time.time(), time.monotonic()
            answer = await http.post(path, json={})
            answered = time.monotonic()
        await asyncio.wait_for(seen.wait(), 30)
        await asyncio.gather(*pollers)
        answer.raise_for_status()
        return {"wall": wall, "sent": sent, "api": answered - sent, "name": answer.json()["name"]}

    def switch(self, server: Server, path: str, before: str) -> dict:
        work = self._switch(server.url, server.token(), path, before)
        return asyncio.run_coroutine_threadsafe(work, self.loop).result()

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping = True
        self.thread.join()


def summarize(name: str, samples: list[Sample], began: float, took: float, span: float) -> dict:
    """One phase of the steady load: counts, latency, and the switch it saw."""
    ok = sorted((s for s in samples if 200 <= s.status < 300), key=lambda s: s.done)
    latencies = sorted((s.done - s.sent) * 1000 for s in ok) or [0.0]
    old, new = (ok[0].release, ok[-1].release) if ok else ("", "")
    first = next((s.done for s in ok if s.release == new), 0.0)
    return {
        "phase": name,
        "requests": len(samples),
        "req/s": f"{len(samples) / span:.0f}",
        "failed": sum(s.failed for s in samples),
        "5xx": sum(s.status >= 500 for s in samples),
        "conn err": sum(s.status == 0 for s in samples),
        "p50 ms": f"{latencies[len(latencies) // 2]:.1f}",
        "p99 ms": f"{latencies[int(0.99 * (len(latencies) - 1))]:.1f}",
        "max ms": f"{latencies[-1]:.0f}",
        "releases": f"{old}->{new}" if old != new else old,
        "switch ms": f"{(first - began) * 1000:.0f}" if old != new else "-",
        "stale": sum(s.release == old and s.sent > first for s in ok) if old != new else 0,
        "command ms": f"{took * 1000:.0f}" if took else "-",
        "causes": sorted({s.error or str(s.status) for s in samples if s.failed}),
    }


def switched_at(http: httpx.Client, base: str, name: str) -> float:
    """When the server said `name` is live, which it says once the router serves it; or 0."""
    for event in http.get(f"{base}/events").json():
        if event["type"] == "switched" and event["message"].startswith(f"{name} is live"):
            return datetime.fromisoformat(event["time"]).timestamp()
    return 0.0


def report(load: Load, rows: list[dict], times: dict[str, list[float]]) -> None:
    steady = [s for s in load.samples if not s.probe]
    print(
        f"B2 ({datetime.now():%Y-%m-%d %H:%M}) load: {load.rate:.0f} req/s asked, "
        f"{len(steady) / load.elapsed:.0f} sent over {load.elapsed:.0f} s; the generator at "
        f"most {load.slip * 1000:.0f} ms behind schedule, {100 * load.cpu / load.elapsed:.0f}% "
        f"of a core\n"
    )
    columns = [c for c in rows[0] if c != "causes"]
    print("".join(f"{c:>11}" for c in columns))
    for row in rows:
        print("".join(f"{row[c]:>11}" for c in columns))
        for cause in row["causes"]:
            print(f"{'':>11}failed: {cause}")
    print(f"\ninstant rollback, ms{'median':>38}{'max':>8}{'min':>8}  each")
    for label, values in times.items():
        ms = sorted(values)
        each = " ".join(f"{v:.0f}" for v in values) if len(values) <= 12 else ""
        print(f"  {label:<42}{statistics.median(ms):>8.0f}{ms[-1]:>8.0f}{ms[0]:>8.0f}  {each}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=300, help="requests per second")
    parser.add_argument("--quiet", type=float, default=3, help="seconds before and after a phase")
    parser.add_argument("--switches", type=int, default=10, help="instant rollbacks to time")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="laneway-b2-") as tmp:
        root = Path(tmp)
        repo = make_repo(root, "vendored")
        git(repo, "checkout", "-q", "-b", "second")
        (repo / "SECOND").write_text("2\n")
        git(repo, "add", "SECOND")
        git(repo, "commit", "-q", "-m", "second")
        git(repo, "checkout", "-q", "main")
        server = make_server(root / "home")
        # Instances lease app ports from one range, each checking only that nothing listens
        # yet: beside another instance (test suites), two can lease one port (docs, B2).
        server.env["LANEWAY_PORTS"] = "27000-27999"
        try:
            server.start()
            run(server, repo, args)
        finally:
            server.teardown()


def run(server: Server, repo: Path, args: argparse.Namespace) -> None:
    def cli(*argv: str) -> float:
        started = time.monotonic()
        server.cli(*argv, cwd=repo, timeout=600)
        return time.monotonic() - started

    cli("env", "create", "staging", "--kind", "staging", "--branch", "main")
    first = json.loads(server.cli("releases", "staging", "--json", cwd=repo).stdout)[0]
    cli("env", "create", "production", "--kind", "production", "--build", first["build"])
    base = f"/api/v1/apps/{APP}/environments/staging"
    times: dict[str, list[float]] = {}
    rows: list[dict] = []
    with Load(server.router, args.rate, f"staging.{APP}.localhost") as load, server.http() as http:
        phases = (
            ("deploy", "staging", ("deploy", "staging", "--ref", "second")),
            ("promote", "production", ("promote", "staging", "production")),
            ("config", "staging", ("config", "set", "staging", "FOO=bar")),
            ("rollback", "staging", ("rollback", "staging")),
        )
        for name, environment, argv in phases:
            load.host = f"{environment}.{APP}.localhost"
            start = time.monotonic()
            time.sleep(args.quiet)
            began = time.monotonic()
            took = cli(*argv)
            time.sleep(args.quiet)
            end = time.monotonic()
            samples = [s for s in load.samples if start <= s.sent < end]
            rows.append(summarize(name, samples, began, took, end - start))
        times["`laneway rollback` (CLI) end to end"] = [took * 1000]
        load.host = f"staging.{APP}.localhost"
        start = time.monotonic()
        for _ in range(args.switches):
            time.sleep(1)
            before = server.get(load.host, "/api/info").json()["release"]
            result = load.switch(server, f"{base}/rollback", before)
            sent = result["sent"]
            name = result["name"]
            switched = wait_until(lambda n=name: switched_at(http, base, n), what=f"{name} live")
            assert isinstance(switched, float)
            other = [s for s in load.samples if s.sent >= sent and s.release not in ("", before)]
            for label, seconds in (
                ("POST sent -> its 202 answer", result["api"]),
                ("POST sent -> 'switched' event (router acked)", switched - result["wall"]),
                ("POST sent -> first request routed to it", min(s.sent for s in other) - sent),
                ("POST sent -> first answer received from it", min(s.done for s in other) - sent),
            ):
                times.setdefault(label, []).append(seconds * 1000)
        for _ in range(2):
            time.sleep(1)
            times["`laneway rollback` (CLI) end to end"].append(cli("rollback", "staging") * 1000)
        time.sleep(args.quiet)
        end = time.monotonic()
        times["CLI start-up alone (`laneway --help`)"] = [cli("--help") * 1000 for _ in range(3)]
    window = [s for s in load.samples if start <= s.sent < end]
    row = summarize("rollbacks", [s for s in window if not s.probe], 0, 0, end - start)
    probes = [s for s in window if s.probe and s.failed]
    row.update(releases=f"{args.switches}+2 times", stale="-", **{"switch ms": "-"})
    row["failed"] += len(probes)
    row["causes"] += [f"poller: {s.error or s.status}" for s in probes]
    rows.append(row)
    report(load, rows, times)
    print("\n" + server.cli("releases", "staging", cwd=repo).stdout)


if __name__ == "__main__":
    main()
