"""A rollout's webhooks: POST a small JSON document, say how each answered.

Called by `controllers/rolling.py`: the `pre-step` ones before each weight (all must answer
2xx, or the step is held and they are asked again later), the `promoted` and `aborted` ones
once the rollout ends. A hook that names a secret is signed with its value
(`core.signing`: X-Laneway-Timestamp and X-Laneway-Signature), and is not called when the
environment has no such secret. Each call's outcome is recorded as an event of the environment, with
the URL shown without its user, password or query, and the answer's status alone: its body
is never read (viewers read events; a webhook pointed at an internal address must not have
its answer echoed).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from laneway.core import rollouts, signing


@dataclass(frozen=True)
class Answer:
    url: str
    ok: bool
    detail: str
    """`200`, `503: not now`, `timed out after 10s`, `connection refused`."""


async def call(
    http: httpx.AsyncClient,
    hooks: tuple[rollouts.Webhook, ...],
    payload: dict[str, Any],
    *,
    secrets: Mapping[str, str],
    now: float,
) -> list[Answer]:
    """Every hook at once; their answers in the hooks' order. `secrets` holds the values
    of the secret config variables the hooks sign with, by name."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "content-type": "application/json",
        "user-agent": "laneway",
        "x-laneway-event": str(payload.get("event")),
        "x-laneway-delivery": uuid.uuid4().hex,
        "x-laneway-timestamp": str(int(now)),
    }
    return list(
        await asyncio.gather(*(_one(http, hook, body, headers, secrets, now) for hook in hooks))
    )


async def _one(
    http: httpx.AsyncClient,
    hook: rollouts.Webhook,
    body: bytes,
    headers: dict[str, str],
    secrets: Mapping[str, str],
    now: float,
) -> Answer:
    shown = shown_url(hook.url)
    if hook.secret is not None:
        secret = secrets.get(hook.secret)
        if secret is None:
            return Answer(
                shown, False, f"not called: {hook.secret} is not a secret of this environment"
            )
        headers = headers | {"x-laneway-signature": signing.sign(secret, int(now), body)}
    try:
        async with http.stream(
            "POST", hook.url, content=body, headers=headers, timeout=hook.timeout
        ) as response:
            status = response.status_code
            phrase = response.reason_phrase
    except httpx.TimeoutException:
        return Answer(shown, False, f"timed out after {hook.timeout:g}s")
    except httpx.HTTPError as exc:
        return Answer(shown, False, _reason(exc))
    detail = f"{status} {phrase}".strip()
    return Answer(shown, 200 <= status < 300, detail)


def shown_url(url: str) -> str:
    """The URL as events and notes show it: no user, password or query (where tokens hide),
    since viewers read those."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "(an unreadable URL)"
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}{parsed.path}"


def _reason(exc: httpx.HTTPError) -> str:
    text = str(exc) or type(exc).__name__
    if "refused" in text.lower():
        return "connection refused"
    return type(exc).__name__.removesuffix("Error").lower() + " error"
