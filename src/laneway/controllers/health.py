"""HTTP health probes of replicas: GET the spec's path on the replica's port."""

from __future__ import annotations

import asyncio

import httpx


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
