"""B3, the router's own code: CPU per proxied request, this tree against another commit's.

    python bench/b3_router_code.py [--before main] [--requests 50000] [--rounds 5]
                                   [--case single|split|split-cookie|varying|clock]

Drives `router.proxy.ProxyProtocol` over fake transports, no sockets and no event loop: a
keep-alive client sends a GET with a few ordinary headers, the pooled backend connection
answers a 13-byte 200, again and again. What is timed is the router's Python code alone
(parsing, routing, rewriting both heads, the pool), the figure that holds when the machine
is too busy for wrk's numbers to mean anything. `--case split` routes the host over two
pools (a 1% canary first, as a rollout's table has it) and every request is a fresh
client's (a bucket drawn, a Set-Cookie added); `split-cookie` sends laneway's bucket
cookie, as a returning client does; `varying` is `single` with a request id header that
differs on every request, so no head repeats the last (`router.repeat` never helps); `clock` times `time.monotonic()` alone (the counters
read it twice per request). Each round runs both trees in fresh
processes, one after the other, alternating which goes first; prints every round and the
medians. `--before` is any git revision; its `src/` is exported to a temporary directory.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Run in a child process whose PYTHONPATH is one tree's src/: prints µs per request.
CHILD = r"""
import asyncio, sys, time
from laneway.core.routing import Backend, Pool, Route, RoutingTable
from laneway.router.proxy import ProxyProtocol
from laneway.router.state import RouterState
from laneway.router.upstream import UpstreamConnection

HOST = "feature-x.shop.localhost"

class Transport(asyncio.Transport):
    def __init__(self):
        super().__init__()
        self.out = []
    def write(self, data): self.out.append(data)
    def close(self): pass
    def abort(self): pass
    def is_closing(self): return False
    def pause_reading(self): pass
    def resume_reading(self): pass
    def get_extra_info(self, name, default=None):
        return ("10.1.2.3", 40000) if name == "peername" else default
    def get_write_buffer_size(self): return 0
    def can_write_eof(self): return True
    def write_eof(self): pass

backend = Backend("127.0.0.1", 9001)
case = sys.argv[2]
if case == "clock":
    n = int(sys.argv[1]) * 20
    start = time.process_time()
    for _ in range(n):
        time.monotonic()
    print((time.process_time() - start) / n * 1e6)
    sys.exit()
if case in ("single", "varying"):
    pools = (Pool("v1", 10000, (backend,)),)
else:
    pools = (Pool("v2", 100, (backend,), "canary"), Pool("v1", 9900, (backend,), "stable"))
route = Route(HOST, "shop", "feature-x", pools)
state = RouterState(RoutingTable(1, {HOST: route}))
conn = UpstreamConnection(state.upstreams, backend)
upstream = Transport()
conn.connection_made(upstream)
state.upstreams.release(conn)
protocol = ProxyProtocol(state)
client = Transport()
protocol.connection_made(client)
request = (
    b"GET /products?page=2 HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0\r\n"
    b"Accept: text/html,application/xhtml+xml\r\nAccept-Language: en-US,en;q=0.5\r\n"
    b"Accept-Encoding: gzip, deflate\r\nCookie: session=0123456789abcdef"
    + (b"; laneway_bucket=5000" if case == "split-cookie" else b"")
    + b"\r\n\r\n"
)
requests = [request] * 1000
if case == "varying":
    requests = [request.replace(b"\r\n\r\n", b"\r\nX-Request-Id: %d\r\n\r\n" % i) for i in range(1000)]
response = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!"
n = int(sys.argv[1])

def once(i=0):
    protocol.data_received(requests[i % 1000])
    conn.data_received(response)
    upstream.out.clear()
    client.out.clear()

protocol.data_received(request)
conn.data_received(response)
assert client.out[0].endswith(b"Hello, world!"), client.out  # proxied, on the pooled connection
for _ in range(2000):
    once()
start = time.process_time()
for i in range(n):
    once(i)
print((time.process_time() - start) / n * 1e6)
"""


def measure(src: Path, requests: int, case: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(requests), case],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default="main", help="git revision to compare with")
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--case", choices=["single", "split", "split-cookie", "varying", "clock"], default="single"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.before, "src"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        trees = {args.before: Path(tmp) / "src", "this tree": ROOT / "src"}
        results: dict[str, list[float]] = {name: [] for name in trees}
        for round_ in range(args.rounds):
            order = list(trees) if round_ % 2 == 0 else list(reversed(trees))
            for name in order:
                results[name].append(measure(trees[name], args.requests, args.case))
            print(
                f"round {round_ + 1}: "
                + ", ".join(f"{name} {results[name][-1]:.2f} µs" for name in trees),
                flush=True,
            )
    print(
        f"\nCPU per request ({args.case}), median of {args.rounds} rounds of "
        f"{args.requests} requests:"
    )
    for name, values in results.items():
        print(
            f"  {name:>12}: {statistics.median(values):.2f} µs  ({min(values):.2f}-{max(values):.2f})"
        )


if __name__ == "__main__":
    main()
