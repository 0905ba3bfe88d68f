"""A canary's own metrics, read from the team's Prometheus (LANEWAY_PROMETHEUS_URL).

`controllers/rolling.py` calls `metric_checks` when a window is judged, alongside the thread
that runs the statistics: each query of the strategy's `metrics` is asked once for the
canary's release and once for stable's (`GET /api/v1/query`, an instant query at the time
of the judgement, its range the window judged), and `analysis.external.compare` judges the
two values. Whatever keeps a number from being read (no URL set, Prometheus unreachable or
too slow, an answer too large, not one number, or Prometheus's own error) becomes a
`Reading` with the reason, so the check is inconclusive and says why: no exception leaves
this module, and no answer is trusted further than its size and shape.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

import httpx

from laneway.analysis.external import Reading, compare
from laneway.analysis.types import Check
from laneway.core import rollouts
from laneway.core.types import Environment
from laneway.settings import Settings
from laneway.spec.metrics import render

MAX_ANSWER = 1 << 20
"""Bytes of one answer read at most: one number is a few hundred; a query that matched every
series of a large server is cut off, not read."""

NOT_SET = "LANEWAY_PROMETHEUS_URL is not set on the server"


async def metric_checks(
    settings: Settings,
    environment: Environment,
    status: rollouts.RolloutStatus,
    since: float,
    now: float,
) -> tuple[Check, ...]:
    """One check per metric of the rollout's strategy, over the window from `since` to `now`."""
    analysis = status.strategy.analysis
    metrics = analysis.metrics if analysis is not None else ()
    if not metrics or status.canary is None or status.stable is None:
        return ()
    sides = (status.canary.label, status.stable.label)
    if settings.prometheus_url is None:
        unset = Reading(problem=NOT_SET)
        return tuple(compare(metric, unset, unset, sides=sides) for metric in metrics)
    names = {
        "interval": duration(now - since),
        "environment": environment.name,
        "app": environment.app,
    }
    try:
        http = client(settings)
    except httpx.InvalidURL as exc:
        unusable = Reading(problem=f"LANEWAY_PROMETHEUS_URL cannot be used: {exc}")
        return tuple(compare(metric, unusable, unusable, sides=sides) for metric in metrics)
    async with http:
        readings = await asyncio.gather(
            *(
                query(
                    http,
                    render(metric.query, names | {"release": side}),
                    now,
                    timeout=settings.prometheus_timeout,
                )
                for metric in metrics
                for side in sides
            )
        )
    return tuple(
        compare(metric, readings[2 * i], readings[2 * i + 1], sides=sides)
        for i, metric in enumerate(metrics)
    )


def client(settings: Settings) -> httpx.AsyncClient:
    """An HTTP client for the configured Prometheus (its path kept: `http://host/prom`)."""
    assert settings.prometheus_url is not None
    # identity: the size cap holds for the bytes that arrive, not after a decompression
    headers = {"Accept": "application/json", "Accept-Encoding": "identity"}
    if settings.prometheus_token is not None:
        headers["Authorization"] = f"Bearer {settings.prometheus_token.get_secret_value()}"
    base = settings.prometheus_url.rstrip("/") + "/"
    return httpx.AsyncClient(
        base_url=base,
        headers=headers,
        timeout=settings.prometheus_timeout,
        follow_redirects=False,
    )


async def query(http: httpx.AsyncClient, expression: str, at: float, *, timeout: float) -> Reading:
    """The value of an instant query: one number, no data, or the problem in words."""
    where = shown_url(str(http.base_url))
    params = {"query": expression, "time": f"{at:.3f}"}
    try:
        async with asyncio.timeout(timeout):
            async with http.stream("GET", "api/v1/query", params=params) as response:
                body = await _read(response)
    except TimeoutError:
        return Reading(problem=f"Prometheus at {where} did not answer within {timeout:g}s")
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        reason = str(exc) or type(exc).__name__
        return Reading(problem=f"Prometheus at {where} could not be reached: {reason}")
    if body is None:
        return Reading(problem=f"Prometheus at {where} answered more than {MAX_ANSWER:,} bytes")
    return parse(response.status_code, body)


async def _read(response: httpx.Response) -> bytes | None:
    """The body, or None past MAX_ANSWER bytes (the rest is not read)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_ANSWER:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def parse(status_code: int, body: bytes) -> Reading:
    """A Reading from the query API's answer (pure; the API's format: prometheus.io/docs,
    "HTTP API", "Expression query result formats")."""
    try:
        answer: Any = json.loads(body)
    except ValueError:
        return Reading(problem=f"Prometheus answered HTTP {status_code} without JSON")
    if not isinstance(answer, dict):
        return Reading(problem="Prometheus's answer is not a JSON object")
    if answer.get("status") != "success" or status_code != 200:
        error_type = _text(answer.get("errorType")) or f"HTTP {status_code}"
        error = _text(answer.get("error")) or "no reason given"
        return Reading(problem=f"Prometheus refused the query ({error_type}): {error}")
    data = answer.get("data")
    if not isinstance(data, dict):
        return Reading(problem="Prometheus's answer has no data")
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        return _sample(result)
    if kind == "vector" and isinstance(result, list):
        if not result:
            return Reading()
        if len(result) > 1:
            return Reading(
                problem=f"the query answers {len(result)} series, not one: aggregate them "
                "(`sum(...)`, `max(...)`)"
            )
        series = result[0]
        return _sample(series.get("value") if isinstance(series, dict) else None)
    if kind == "matrix":
        return Reading(
            problem="the query answers a range vector: take `rate(...)` or "
            "`avg_over_time(...)` of it for one number"
        )
    return Reading(
        problem=f"the query answers a {_text(kind) or 'result'} where a number was expected"
    )


def _sample(sample: Any) -> Reading:
    """`[<unix time>, "<value>"]`, the value a string ("NaN" and "+Inf" included)."""
    if not isinstance(sample, list) or len(sample) != 2 or not isinstance(sample[1], str):
        return Reading(problem="Prometheus's answer holds no [time, value] sample")
    try:
        value = float(sample[1])
    except ValueError:
        return Reading(problem=f"Prometheus answered {_text(sample[1])!r}, not a number")
    return Reading(value=value)


def duration(seconds: float) -> str:
    """A window in PromQL's duration syntax, whole seconds: `120s`."""
    return f"{max(1, round(seconds))}s"


def shown_url(url: str) -> str:
    """The URL without its user and password, to be shown in a check."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path.rstrip('/')}"


def _text(value: Any, limit: int = 300) -> str:
    """A string from an answer, shortened: Prometheus's error echoes the query."""
    text = value if isinstance(value, str) else ""
    return text if len(text) <= limit else text[: limit - 1] + "…"
