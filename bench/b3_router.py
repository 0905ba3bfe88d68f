"""B3: throughput and added latency of the built-in router, against a direct connection and HAProxy.

    python bench/b3_router.py [--duration 5] [--connections 32] [--rounds 2]
                              [--layout split|shared|both] [--no-haproxy]

Starts, on loopback only: a trivial upstream (uvloop, answers a fixed 200 to every request),
the built-in router (`python -m laneway.router`) routing one host to it, and, if installed,
HAProxy with one thread doing the same (Host match, X-Forwarded-For, keep-alive to the
server). Then wrk (`apt-get install wrk`) measures each: requests/s at --connections with
the CPU time the process used, and p50 latency at one connection. Layout `split` is
DESIGN.md's B3 (proxies alone on CPU 1; wrk and, for want of a third CPU, the upstream on
CPU 0); `shared` leaves placement to the kernel. Prints a table and the ratios per layout;
everything it started is stopped, whatever happens. Needs `wrk`; HAProxy is optional.
About 50 s per layout with the defaults.
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

HOST = "bench.app.localhost"
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
    port: int, *, connections: int, duration: float, cpus: set[int] | None
) -> tuple[float, float]:
    """(requests/s, p50 latency in µs)."""
    argv = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--latency",
        "-H",
        f"Host: {HOST}",
        f"http://127.0.0.1:{port}/",
    ]
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


def measure(
    targets: dict[str, tuple[int, int]], upstream_pid: int, args: argparse.Namespace, *, split: bool
) -> dict[str, dict[str, float]]:
    """Best of `args.rounds` for each target; with `split`, proxies alone on CPU 1."""
    client_cpus, proxy_cpus = ({0}, {1}) if split else (None, None)
    pin(upstream_pid, client_cpus)
    for name, (_, pid) in targets.items():
        pin(pid, client_cpus if name == "direct" else proxy_cpus)
    results: dict[str, dict[str, float]] = {name: {} for name in targets}
    for port, _ in targets.values():  # warm up: connections, pools, caches
        wrk(port, connections=args.connections, duration=1, cpus=client_cpus)
    for _ in range(args.rounds):
        for name, (port, pid) in targets.items():
            before, start = cpu_seconds(pid), time.monotonic()
            rps, _ = wrk(
                port, connections=args.connections, duration=args.duration, cpus=client_cpus
            )
            cpu = (cpu_seconds(pid) - before) / (time.monotonic() - start)
            if rps > results[name].get("rps", 0):
                results[name].update(rps=rps, cpu=cpu)
            _, p50 = wrk(port, connections=1, duration=args.duration / 2, cpus=client_cpus)
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
    ours = results["laneway router"]
    print(f"router / direct, req/s: {ours['rps'] / direct['rps']:.2f}")
    theirs = results.get("haproxy (1 thread)")
    if theirs:
        efficiency = (ours["rps"] / ours["cpu"]) / (theirs["rps"] / theirs["cpu"])
        print(
            f"router / haproxy, req/s: {ours['rps'] / theirs['rps']:.2f}; per CPU-second: "
            f"{efficiency:.2f}  (goal: at least 0.6)"
        )
        print(
            f"p50 added, router minus haproxy: {ours['p50'] - theirs['p50']:.0f} µs  "
            "(goal: within 15 µs)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2, help="runs per target; the best counts")
    parser.add_argument("--no-haproxy", action="store_true")
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
    from laneway.core.routing import Backend, Pool, Route, RoutingTable
    from laneway.router.driver import BuiltinRouterDriver

    reports = []
    with processes() as started, tempfile.TemporaryDirectory(prefix="b3-") as tmp:
        upstream = started.start([sys.executable, __file__, "upstream"], stdout=subprocess.PIPE)
        assert upstream.stdout is not None
        upstream_port = int(upstream.stdout.readline())

        table_file = Path(tmp) / "routes.json"
        pool = Pool("v1", 100, (Backend("127.0.0.1", upstream_port),))
        table = RoutingTable(1, {HOST: Route(HOST, "app", "bench", (pool,))})
        BuiltinRouterDriver(table_file, pid=lambda: None).apply(table)
        router_port = free_port()
        router = started.start(
            [
                sys.executable,
                "-m",
                "laneway.router",
                "--listen",
                f"127.0.0.1:{router_port}",
                "--table",
                str(table_file),
                "--log-level",
                "warning",
            ],
            env={**os.environ, "PYTHONPATH": str(root / "src")},
        )
        wait_for_port(router_port)
        targets = {
            "direct": (upstream_port, upstream.pid),
            "laneway router": (router_port, router.pid),
        }
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
            targets["haproxy (1 thread)"] = (haproxy_port, process.pid)
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
            targets["haproxy, laneway's"] = (driver.listen[1], worker)
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
