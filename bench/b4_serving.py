"""B4, served: OFREP latency and throughput, and in-process evaluation synced over flagd sync.

Starts a laneway server (its own LANEWAY_HOME, ports chosen at run time) with one app and one
environment whose service is trivial, loads a flag set with a static flag, a targeting rule
and a fractional rollout, then measures, each through the published packages:

- OFREP single evaluations through openfeature-sdk + openfeature-provider-ofrep, one caller
  in a loop: latency p50/p99 and evaluations/s, per kind of flag;
- OFREP bulk (`POST /ofrep/v1/evaluate/flags`) over one keep-alive connection;
- OFREP single evaluations at moderate load: 100 and 300 requests/s sent open loop
  (httpx, asyncio, up to 64 connections);
- in-process evaluation through openfeature-provider-flagd (in-process mode), synced from
  laneway's flagd sync service: evaluations/s per kind.

    python bench/b4_serving.py [--n 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import hey_output  # bench/hey_output.py, beside this script
import httpx
from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext

from laneway.testing import started_with_app

SPEC = "app: bench\nservices:\n  web: {command: python3 -m http.server $PORT --bind 127.0.0.1}\n"
FLAGS = {
    "flags": {
        "static": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "on",
        },
        "targeted": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
            "targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on", "off"]},
        },
        "rollout": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
            "targeting": {"fractional": [["on", 10], ["off", 90]]},
        },
    }
}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def context(i: int) -> EvaluationContext:
    return EvaluationContext(
        f"user-{i}", {"email": f"u{i}@example.com" if i % 2 else f"u{i}@x.org"}
    )


def timed_loop(call, n: int) -> tuple[float, float, float]:
    """(p50 ms, p99 ms, per second) of n calls in a row."""
    took = []
    start = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        call(i)
        took.append((time.perf_counter() - t) * 1000)
    rate = n / (time.perf_counter() - start)
    return statistics.median(took), pct(took, 0.99), rate


async def open_loop(
    url: str, key: str, *, rate: float, seconds: float
) -> tuple[float, float, float]:
    """Requests sent at a fixed rate whatever the answers do (open loop), as many callers
    would: (p50 ms, p99 ms, answered per second)."""
    took: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits) as http:

        async def one(i: int) -> None:
            nonlocal errors
            t = time.perf_counter()
            body = {"context": {"targetingKey": f"u{i}"}}
            r = await http.post("/ofrep/v1/evaluate/flags/rollout", json=body)
            took.append((time.perf_counter() - t) * 1000)
            errors += r.status_code != 200

        tasks = []
        start = time.perf_counter()
        for i in range(int(rate * seconds)):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    assert errors == 0, f"{errors} failed evaluations"
    return statistics.median(took), pct(took, 0.99), len(took) / elapsed


def hey_load(url: str, key: str, *, rate: int, seconds: int = 5) -> tuple[float, float, float]:
    """The same at a fixed rate from `hey` (a Go load generator, whose own overhead is far
    below a Python client's): (p50 ms, p99 ms, answered per second)."""
    workers = max(1, rate // 100)
    out = subprocess.run(
        ["hey", "-z", f"{seconds}s", "-c", str(workers), "-q", str(rate // workers)]
        + ["-m", "POST", "-T", "application/json", "-H", f"Authorization: Bearer {key}"]
        + ["-d", '{"context": {"targetingKey": "user-1"}}']
        + [f"{url}/ofrep/v1/evaluate/flags/rollout"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    report = hey_output.parse(out)
    failures = report.failures()
    assert not failures, f"hey at {rate}/s: {'; '.join(failures)}\n{out}"
    return report.latency_ms(50), report.latency_ms(99), report.requests_per_second


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    n = parser.parse_args().n
    with tempfile.TemporaryDirectory() as tmp:
        _, server = started_with_app(Path(tmp), SPEC)
        try:
            with server.http() as http:
                http.post(
                    "/api/v1/apps/bench/environments",
                    json={"name": "staging", "kind": "staging", "branch": "main"},
                ).raise_for_status()
                http.put(
                    "/api/v1/apps/bench/environments/staging/flagset", json=FLAGS
                ).raise_for_status()
                key = http.post("/api/v1/apps/bench/environments/staging/flag-key").json()["key"]
            rows = []
            api.set_provider(
                OFREPProvider(
                    server.url, headers_factory=lambda: {"Authorization": f"Bearer {key}"}
                ),
                "ofrep",
            )
            ofrep = api.get_client("ofrep")
            for flag in ("static", "targeted", "rollout"):
                p50, p99, rate = timed_loop(
                    lambda i, f=flag: ofrep.get_boolean_value(f, False, context(i)), n
                )
                rows.append((f"OFREP single, {flag}, 1 caller", p50, p99, rate))
            with httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {key}"}
            ) as http:
                p50, p99, rate = timed_loop(
                    lambda i: http.post(
                        "/ofrep/v1/evaluate/flags", json={"context": {"targetingKey": f"u{i}"}}
                    ).raise_for_status(),
                    n // 2,
                )
            rows.append(("OFREP bulk (3 flags), 1 caller", p50, p99, rate))
            for offered in (100, 300):
                p50, p99, rate = asyncio.run(open_loop(server.url, key, rate=offered, seconds=5))
                rows.append((f"OFREP single, rollout, {offered}/s offered", p50, p99, rate))
            if shutil.which("hey"):
                for offered in (100, 300, 1000):
                    p50, p99, rate = hey_load(server.url, key, rate=offered)
                    rows.append((f"OFREP single, rollout, {offered}/s from hey", p50, p99, rate))

            host, port = server.flags_sync
            provider = FlagdProvider(
                resolver_type=ResolverType.IN_PROCESS,
                host=host,
                port=port,
                selector=key,
                deadline_ms=10_000,
            )
            api.set_provider_and_wait(provider, "inprocess")
            local = api.get_client("inprocess")
            for flag in ("static", "targeted", "rollout"):
                p50, p99, rate = timed_loop(
                    lambda i, f=flag: local.get_boolean_value(f, False, context(i)), n * 5
                )
                rows.append((f"in-process (flagd provider), {flag}", p50, p99, rate))
            provider.shutdown()
            api.shutdown()
            print(f"{'what':44} {'p50 ms':>8} {'p99 ms':>8} {'per s':>9}")
            for what, p50, p99, rate in rows:
                print(f"{what:44} {p50:8.3f} {p99:8.3f} {rate:9.0f}")
        finally:
            server.teardown()


if __name__ == "__main__":
    main()
