"""B3: throughput and added latency of the built-in router, against a direct connection and HAProxy.

    python bench/b3_router.py [--duration 5] [--connections 32] [--rounds 2]
                              [--layout split|shared|both] [--no-haproxy]
                              [--before REV [--before-first]]

Starts, on loopback only: a trivial upstream (uvloop, answers a fixed 200 to every request),
the built-in router (`python -m laneway.router`) routing one host to it (and a second host
over a 1% canary split, measured twice: as fresh clients, each given a bucket and a
Set-Cookie, and as returning ones sending their bucket cookie), and, if installed,
HAProxy with one thread doing the same (Host match, X-Forwarded-For, keep-alive to the
server). Then wrk (`apt-get install wrk`) measures each: requests/s at --connections with
the CPU time the process used, and p50 latency at one connection. Layout `split` is
DESIGN.md's B3 (proxies alone on CPU 1; wrk and, for want of a third CPU, the upstream on
CPU 0); `shared` leaves placement to the kernel. Prints a table and the ratios per layout;
`--before main` adds the router of another git revision (its `src/`, exported), routing
the plain host, for a before-and-after in the same run (started after this tree's, or
before with `--before-first`: here the first-started of two identical routers is the
slower, docs/benchmarks.md). Everything it started is stopped,
whatever happens. Needs `wrk`; HAProxy is optional.
About 50 s per layout with the defaults, twice that with the split cases and --before.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HOST = "bench.app.localhost"
SPLIT_HOST = "canary.app.localhost"
"""Routed over two pools by the same router: a 1% canary first, as a rollout's table has it."""
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!"


# -- the upstream: `python bench/b3_router.py upstream` prints its port, serves until killed


class _Fixed(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.tail = b""

    def data_received(self, data: bytes) -> None:
        buffer = self.tail + data if self.tail else data
        count = buffer.count(b"\r\n\r\n")  # requests without bodies: one per blank line
        if count:
            self.transport.write(RESPONSE * count)  # type: ignore[attr-defined]
            self.tail = buffer[buffer.rfind(b"\r\n\r\n") + 4 :]
        else:
            self.tail = buffer


async def _serve_upstream() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Fixed, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


def run_upstream() -> None:
    import uvloop

    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(_serve_upstream())


# -- the harness


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise SystemExit(f"b3: nothing listens on 127.0.0.1:{port} after {timeout}s")


def pin(pid: int, cpus: set[int] | None) -> None:
    """Every thread of `pid` (HAProxy's worker has one per CPU) on `cpus`; 0: this one."""
    mask = cpus if cpus is not None else set(range(os.cpu_count() or 1))
    tasks = [pid] if pid == 0 else [int(task.name) for task in Path(f"/proc/{pid}/task").iterdir()]
    for task in tasks:
        os.sched_setaffinity(task, mask)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def parse_latency(text: str) -> float:
    """wrk's '45.12us' / '1.20ms' / '2.00s' -> microseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise SystemExit(f"b3: cannot read wrk's latency {text!r}")
    return float(match[1]) * {"us": 1, "ms": 1e3, "s": 1e6, "m": 6e7}[match[2]]


def wrk(
    port: int,
    *,
    connections: int,
    duration: float,
    cpus: set[int] | None,
    headers: tuple[str, ...] = (f"Host: {HOST}",),
) -> tuple[float, float]:
    """(requests/s, p50 latency in µs)."""
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency"]
    for header in headers:
        argv += ["-H", header]
    argv.append(f"http://127.0.0.1:{port}/")
    out = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=duration + 30,
        check=True,
        preexec_fn=lambda: pin(0, cpus),
    ).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors or "Socket errors" in out:
        raise SystemExit(f"b3: wrk saw errors against port {port}:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = parse_latency(re.search(r"^\s+50%\s+(\S+)$", out, re.M).group(1))  # type: ignore[union-attr]
    return rps, p50


class Processes:
    """Started processes, each stopped (TERM, then KILL) on exit."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []
        self.cleanups: list[Callable[[], None]] = []

    def start(self, argv: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(argv, **kwargs)  # type: ignore[call-overload]
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        for cleanup in self.cleanups:
            cleanup()
        for process in reversed(self.started):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in reversed(self.started):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.contextmanager
def processes() -> Iterator[Processes]:
    started = Processes()
    try:
        yield started
    finally:
        started.stop_all()


HAPROXY_CONFIG = """\
global
    nbthread 1
    maxconn 4096
defaults
    mode http
    timeout connect 3s
    timeout client 30s
    timeout server 30s
    option http-keep-alive
    option forwardfor
    http-reuse always
frontend fe
    bind 127.0.0.1:{port}
    use_backend app if {{ hdr(host),field(1,:) -i {host} }}
backend app
    server s1 127.0.0.1:{upstream}
"""


Target = tuple[int, int, tuple[str, ...]]
"""Port, the pid whose CPU time is counted, and the headers wrk sends."""


def measure(
    targets: dict[str, Target], upstream_pid: int, args: argparse.Namespace, *, split: bool
) -> dict[str, dict[str, float]]:
    """Best of `args.rounds` for each target, in turn, every other round in reverse order;
    with `split`, proxies alone on CPU 1."""
    client_cpus, proxy_cpus = ({0}, {1}) if split else (None, None)
    pin(upstream_pid, client_cpus)
    for name, (_, pid, _) in targets.items():
        pin(pid, client_cpus if name == "direct" else proxy_cpus)
    results: dict[str, dict[str, float]] = {name: {} for name in targets}
    for port, _, headers in targets.values():  # warm up: connections, pools, caches
        wrk(port, connections=args.connections, duration=1, cpus=client_cpus, headers=headers)
    for round_ in range(args.rounds):
        order = list(targets.items())
        for name, (port, pid, headers) in order if round_ % 2 == 0 else reversed(order):
            before, start = cpu_seconds(pid), time.monotonic()
            rps, _ = wrk(
                port,
                connections=args.connections,
                duration=args.duration,
                cpus=client_cpus,
                headers=headers,
            )
            cpu = (cpu_seconds(pid) - before) / (time.monotonic() - start)
            if rps > results[name].get("rps", 0):
                results[name].update(rps=rps, cpu=cpu)
            _, p50 = wrk(
                port,
                connections=1,
                duration=args.duration / 2,
                cpus=client_cpus,
                headers=headers,
            )
            results[name]["p50"] = min(p50, results[name].get("p50", p50))
    return results


def report(results: dict[str, dict[str, float]], title: str) -> None:
    print(f"\n{title}\n")
    print(
        f"{'target':<20} {'req/s':>9} {'its CPU':>8} {'req/CPU-s':>10} {'p50 @1 conn':>12} "
        f"{'p50 added':>10}"
    )
    direct = results["direct"]
    for name, r in results.items():
        added = "" if name == "direct" else f"{r['p50'] - direct['p50']:.0f} µs"
        print(
            f"{name:<20} {r['rps']:>9.0f} {r['cpu']:>8.0%} {r['rps'] / max(r['cpu'], 1e-9):>10.0f} "
            f"{r['p50']:>9.0f} µs {added:>10}"
        )
    theirs = results.get("haproxy (1 thread)")
    for name, ours in results.items():
        if not name.startswith("router"):
            continue
        print(f"{name} / direct, req/s: {ours['rps'] / direct['rps']:.2f}")
        if theirs:
            efficiency = (ours["rps"] / ours["cpu"]) / (theirs["rps"] / theirs["cpu"])
            print(
                f"  / haproxy, req/s: {ours['rps'] / theirs['rps']:.2f}; per CPU-second: "
                f"{efficiency:.2f}  (goal: at least 0.6); p50 added minus haproxy's: "
                f"{ours['p50'] - theirs['p50']:.0f} µs (goal: within 15 µs)"
            )


def start_router(
    started: Processes, table_file: Path, src: Path
) -> tuple[int, subprocess.Popen[bytes]]:
    port = free_port()
    process = started.start(
        [
            sys.executable,
            "-m",
            "laneway.router",
            "--listen",
            f"127.0.0.1:{port}",
            "--table",
            str(table_file),
            "--log-level",
            "warning",
        ],
        env={**os.environ, "PYTHONPATH": str(src)},
    )
    wait_for_port(port)
    return port, process


def start_before(
    rev: str, started: Processes, table: Any, tmp: Path, root: Path
) -> tuple[int, int]:
    """The router of git revision `rev` (its `src/` exported) serving `table`: port, pid."""
    from laneway.router.driver import BuiltinRouterDriver

    before = tmp / "before"
    before.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", rev, "src"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(before)], input=archive, check=True)
    table_file = tmp / "before.json"
    BuiltinRouterDriver(table_file, pid=lambda: None).apply(table)
    port, process = start_router(started, table_file, before / "src")
    return port, process.pid


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2, help="runs per target; the best counts")
    parser.add_argument("--no-haproxy", action="store_true")
    parser.add_argument("--before", help="also run the router of this git revision")
    parser.add_argument(
        "--before-first",
        action="store_true",
        help="start that router before this tree's (which process starts first matters here)",
    )
    parser.add_argument(
        "--layout",
        choices=["split", "shared", "both"],
        default="both",
        help="split: proxies alone on CPU 1, wrk and upstream on CPU 0; shared: no pinning",
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("b3: wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 2
    haproxy = None if args.no_haproxy else shutil.which("haproxy")
    layouts = ["split", "shared"] if args.layout == "both" else [args.layout]
    if (os.cpu_count() or 1) < 2:
        layouts = ["shared"]
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "src"))
    from laneway.core.routing import (
        CANARY,
        STABLE,
        WEIGHT_SCALE,
        Backend,
        Pool,
        Route,
        RoutingTable,
    )
    from laneway.router.driver import BuiltinRouterDriver

    reports = []
    with processes() as started, tempfile.TemporaryDirectory(prefix="b3-") as tmp:
        upstream = started.start([sys.executable, __file__, "upstream"], stdout=subprocess.PIPE)
        assert upstream.stdout is not None
        upstream_port = int(upstream.stdout.readline())

        table_file = Path(tmp) / "routes.json"
        backend = Backend("127.0.0.1", upstream_port)
        pool = Pool("v1", WEIGHT_SCALE, (backend,))
        canary = (Pool("v2", 100, (backend,), CANARY), Pool("v1", 9900, (backend,), STABLE))
        table = RoutingTable(
            1,
            {
                HOST: Route(HOST, "app", "bench", (pool,)),
                SPLIT_HOST: Route(SPLIT_HOST, "app", "canary", canary),
            },
        )
        BuiltinRouterDriver(table_file, pid=lambda: None).apply(table)
        if args.before and args.before_first:
            before_router = start_before(args.before, started, table, Path(tmp), root)
        router_port, router = start_router(started, table_file, root / "src")
        plain = (f"Host: {HOST}",)
        split = (f"Host: {SPLIT_HOST}",)
        targets: dict[str, Target] = {
            "direct": (upstream_port, upstream.pid, plain),
            "router": (router_port, router.pid, plain),
            "router, split 1%, new": (router_port, router.pid, split),
            "router, split 1%, cookie": (
                router_port,
                router.pid,
                (*split, "Cookie: session=0123456789abcdef; laneway_bucket=5000"),
            ),
        }
        if args.before:
            if not args.before_first:
                before_router = start_before(args.before, started, table, Path(tmp), root)
            port, pid = before_router
            targets[f"router ({args.before})"] = (port, pid, plain)
        if haproxy:
            haproxy_port = free_port()
            config = Path(tmp) / "haproxy.cfg"
            config.write_text(
                HAPROXY_CONFIG.format(port=haproxy_port, host=HOST, upstream=upstream_port)
            )
            process = started.start(
                [haproxy, "-f", str(config), "-db"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            wait_for_port(haproxy_port)
            targets["haproxy (1 thread)"] = (haproxy_port, process.pid, plain)
            # laneway's HAProxy data plane: its generated config, a 5% split, the request log
            from laneway.router.haproxy import HAProxyDriver

            driver = HAProxyDriver(
                listen=("127.0.0.1", free_port()), directory=Path(tmp) / "laneway-haproxy"
            )
            split = (
                Pool("v2", 500, pool.backends, role="canary"),
                Pool("v1", 9_500, pool.backends),
            )
            driver.apply(RoutingTable(1, {HOST: Route(HOST, "app", "bench", split)}))
            driver.ensure_running()
            started.cleanups.append(driver.stop)
            worker = driver.worker_pid()
            assert worker is not None
            targets["haproxy, laneway's"] = (driver.listen[1], worker, plain)
        for layout in layouts:
            results = measure(targets, upstream.pid, args, split=layout == "split")
            where = (
                "proxies alone on CPU 1, wrk and upstream on CPU 0"
                if layout == "split"
                else "no pinning"
            )
            reports.append(
                (
                    results,
                    f"B3 ({layout}: {where}), {args.connections} connections, "
                    f"best of {args.rounds} x {args.duration:g}s",
                )
            )
    for results, title in reports:
        report(results, title)
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["upstream"]:
        run_upstream()
    else:
        sys.exit(main())
