"""HTTP health probes of replicas: GET the spec's path on the replica's port."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx

FRESH = 1.0
"""Seconds a healthy answer stands for: a steady environment is probed every second, so a
switch to a warm release (a rollback) finds its answers fresh and need not probe again."""


async def probe(
    client: httpx.AsyncClient, port: int, path: str, timeout: float
) -> tuple[bool, str]:
    try:
        response = await client.get(f"http://127.0.0.1:{port}{path}", timeout=timeout)
    except httpx.TimeoutException:
        return False, f"GET {path} timed out after {timeout:g}s"
    except httpx.ConnectError:
        return False, f"waiting for GET {path}: not listening yet"
    except httpx.HTTPError as exc:
        return False, f"GET {path} failed: {exc.__class__.__name__}"
    if response.status_code < 400:
        return True, f"GET {path} -> {response.status_code}"
    return False, f"GET {path} -> {response.status_code}"


async def probe_all(
    client: httpx.AsyncClient, targets: dict[int, tuple[int, str, float]]
) -> dict[int, tuple[bool, str]]:
    """Probe {pid: (port, path, timeout)} concurrently; returns {pid: (healthy, detail)}."""
    pids = list(targets)
    results = await asyncio.gather(*(probe(client, *targets[pid]) for pid in pids))
    return dict(zip(pids, results, strict=True))


class HealthCache:
    """The latest healthy answer per pid of one environment; unhealthy ones are never reused."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._healthy: dict[int, tuple[float, str]] = {}

    async def probe_all(
        self, client: httpx.AsyncClient, targets: dict[int, tuple[int, str, float]]
    ) -> dict[int, tuple[bool, str]]:
        now = self._clock()
        fresh = {
            pid: (True, detail)
            for pid, (at, detail) in self._healthy.items()
            if pid in targets and now - at < FRESH
        }
        probed = await probe_all(client, {p: t for p, t in targets.items() if p not in fresh})
        for pid, (healthy, detail) in probed.items():
            if healthy:
                self._healthy[pid] = (self._clock(), detail)
            else:
                self._healthy.pop(pid, None)
        for pid in [p for p in self._healthy if p not in targets]:
            del self._healthy[pid]  # gone
        return {**fresh, **probed}
