"""A rollout's webhooks: POST a small JSON document, say how each answered.

Called by `controllers/rolling.py`: the `pre-step` ones before each weight (all must answer
2xx, or the step is held and they are asked again later), the `promoted` and `aborted` ones
once the rollout ends. Each call's outcome is recorded as an event of the environment. An
answer's body is never read beyond a short excerpt for the event.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx

from laneway.core import rollouts

EXCERPT = 200


@dataclass(frozen=True)
class Answer:
    url: str
    ok: bool
    detail: str
    """`200`, `503: not now`, `timed out after 10s`, `connection refused`."""


async def call(
    http: httpx.AsyncClient, hooks: tuple[rollouts.Webhook, ...], payload: dict[str, Any]
) -> list[Answer]:
    """Every hook at once; their answers in the hooks' order."""
    return list(await asyncio.gather(*(_one(http, hook, payload) for hook in hooks)))


async def _one(http: httpx.AsyncClient, hook: rollouts.Webhook, payload: dict[str, Any]) -> Answer:
    try:
        async with http.stream("POST", hook.url, json=payload, timeout=hook.timeout) as response:
            excerpt = b""
            async for chunk in response.aiter_bytes():
                excerpt += chunk
                if len(excerpt) >= EXCERPT:
                    break
    except httpx.TimeoutException:
        return Answer(hook.url, False, f"timed out after {hook.timeout:g}s")
    except httpx.HTTPError as exc:
        return Answer(hook.url, False, _reason(exc))
    text = excerpt[:EXCERPT].decode("utf-8", "replace").strip().splitlines()
    detail = str(response.status_code) + (f": {text[0]}" if text and text[0] else "")
    return Answer(hook.url, response.is_success, detail)


def _reason(exc: httpx.HTTPError) -> str:
    text = str(exc) or type(exc).__name__
    if "refused" in text.lower():
        return "connection refused"
    return text.splitlines()[0][:EXCERPT]
