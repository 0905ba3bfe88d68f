"""B3, under a slowloris: the router's memory and other clients' latency while N connections
send heads that never end.

    python bench/b3_slowloris.py [--slow 2000] [--requests 2000] [--head-timeout 10]

Starts, on loopback only, a trivial upstream (`bench/b3_router.py upstream`) and the built-in
router (`python -m laneway.router --head-timeout S`), then measures a keep-alive client's
sequential requests (p50, p99) and the router's resident memory: first alone, then with
`--slow` connections each holding a partial head and adding a header line every second,
and finally once the head timeout has closed them (counting how many got 408). Everything
it started is stopped, whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from b3_router import HOST, free_port, wait_for_port  # noqa: E402

from laneway.core.routing import Backend, Pool, Route, RoutingTable  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise SystemExit("b3: no VmRSS")


async def latencies(port: int, count: int) -> list[float]:
    """Microseconds per request of one keep-alive client, sequential."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
    times = []
    for _ in range(count):
        start = time.perf_counter()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 "), head
        await reader.readexactly(13)
        times.append((time.perf_counter() - start) * 1e6)
    writer.close()
    return times


async def slow_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    """A head that gains a line a second and never ends; what the router answers."""
    answer = asyncio.ensure_future(reader.read())
    while not answer.done():
        writer.write(b"X-Slow: 1\r\n")
        await asyncio.wait([answer], timeout=1.0)
    writer.close()
    return answer.result()


async def slowloris(port: int, count: int) -> None:
    """`python bench/b3_slowloris.py slow PORT N`, a process of its own: N slow heads; prints
    `ready` once all are connected, then how many got 408 once the router closed them all."""
    opened = []
    for _ in range(count):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET / HTTP/1.1\r\nHost: {HOST}\r\n".encode())
        opened.append((reader, writer))
    print("ready", flush=True)
    answers = await asyncio.gather(*(slow_client(r, w) for r, w in opened))
    print(sum(1 for a in answers if a.startswith(b"HTTP/1.1 408 ")), flush=True)


def line(label: str, times: list[float], rss: float) -> str:
    cut = statistics.quantiles(times, n=100)
    return f"{label:<34} p50 {cut[49]:7.0f} µs   p99 {cut[98]:7.0f} µs   router RSS {rss:6.1f} MB"


async def bench(args: argparse.Namespace, router_port: int, router_pid: int) -> None:
    await latencies(router_port, 200)  # warm-up
    print(line("alone", await latencies(router_port, args.requests), rss_mb(router_pid)))
    slow = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "slow",
        str(router_port),
        str(args.slow),
        stdout=asyncio.subprocess.PIPE,
    )
    assert slow.stdout is not None
    assert (await slow.stdout.readline()).strip() == b"ready"
    label = f"with {args.slow} slow heads"
    print(line(label, await latencies(router_port, args.requests), rss_mb(router_pid)))
    timed_out = int(await slow.stdout.readline())
    await slow.wait()
    print(
        line(
            "after the head timeout",
            await latencies(router_port, args.requests),
            rss_mb(router_pid),
        )
    )
    print(f"slow connections answered 408 and closed: {timed_out} of {args.slow}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slow", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--head-timeout", type=float, default=10.0)
    args = parser.parse_args()
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        upstream = subprocess.Popen(
            [sys.executable, str(BENCH / "b3_router.py"), "upstream"],
            stdout=subprocess.PIPE,
            text=True,
        )
        stack.callback(upstream.kill)
        assert upstream.stdout is not None
        upstream_port = int(upstream.stdout.readline())
        table = Path(tmp) / "routes.json"
        route = Route(
            HOST, "app", "bench", (Pool("v1", 100, (Backend("127.0.0.1", upstream_port),)),)
        )
        table.write_text(RoutingTable(1, {HOST: route}).to_json())
        router_port = free_port()
        router = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "laneway.router",
                "--listen",
                f"127.0.0.1:{router_port}",
                "--table",
                str(table),
                "--head-timeout",
                str(args.head_timeout),
                "--log-level",
                "warning",
            ]
        )
        stack.callback(router.kill)
        wait_for_port(router_port)
        asyncio.run(bench(args, router_port, router.pid))


if __name__ == "__main__":
    if sys.argv[1:2] == ["slow"]:
        asyncio.run(slowloris(int(sys.argv[2]), int(sys.argv[3])))
    else:
        main()
