"""Health probes on a fake clock: a healthy answer stands for a second, an unhealthy one
never does."""

from __future__ import annotations

import asyncio

import httpx

from laneway.controllers.health import FRESH, HealthCache
from laneway.core.clock import FakeClock


def _client(answers: dict[int, int], calls: list[int]) -> httpx.AsyncClient:
    def handle(request: httpx.Request) -> httpx.Response:
        port = request.url.port or 0
        calls.append(port)
        if port not in answers:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(answers[port], request=request)

    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


def test_fresh_healthy_answers_are_reused_and_others_probed_again() -> None:
    clock = FakeClock()
    calls: list[int] = []
    answers = {8001: 200, 8002: 503}
    cache = HealthCache(clock)
    targets = {1: (8001, "/healthz", 1.0), 2: (8002, "/healthz", 1.0), 3: (8003, "/h", 1.0)}

    async def run() -> list[dict[int, tuple[bool, str]]]:
        async with _client(answers, calls) as client:
            first = await cache.probe_all(client, targets)
            clock.advance(FRESH / 2)
            second = await cache.probe_all(client, targets)
            clock.advance(FRESH)
            third = await cache.probe_all(client, {1: targets[1]})
            return [first, second, third]

    first, second, third = asyncio.run(run())
    assert first == {
        1: (True, "GET /healthz -> 200"),
        2: (False, "GET /healthz -> 503"),
        3: (False, "waiting for GET /h: not listening yet"),
    }
    assert second == first
    assert calls.count(8001) == 2, "reused once within FRESH, probed again after"
    assert calls.count(8002) == 2 and calls.count(8003) == 2
    assert third == {1: (True, "GET /healthz -> 200")}
