"""A canary's strategy: the spec's `canary:` section, with what the command overrides. Pure.

`laneway canary start` sends its options; the API validates the merged section with the
spec's own model (`spec.canary.Canary`), so a bad step is refused with the same words in a
request as in a file, and this turns it into the `rollouts.Strategy` the rollout keeps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from laneway.core import rollouts
from laneway.errors import InvalidInput
from laneway.spec.canary import (
    INTERVAL,
    LATENCY,
    Canary,
    basis_points,
    interval_seconds,
    latency_seconds,
    pause_seconds,
)
from laneway.spec.metrics import Metric

LOOKS_PER_STEP = 3
"""Verdicts a weight step is expected to take: the false-alarm rate is shared among them."""


def merged(section: Canary, overrides: Mapping[str, Any]) -> Canary:
    """The spec's section with the command's values over it; InvalidInput names the field."""
    data = section.model_dump()
    data.update({key: value for key, value in overrides.items() if value is not None})
    try:
        return Canary.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {_reason(error)}"
            for error in exc.errors()
        )
        raise InvalidInput(f"canary: {problems}") from None


WORDS = {
    INTERVAL: "a duration like 30s, 2m or 1h (at least 1s)",
    LATENCY: "a time like 500ms or 2s",
}


def _reason(error: Any) -> str:
    pattern = (error.get("ctx") or {}).get("pattern")
    if error.get("type") == "string_pattern_mismatch" and pattern in WORDS:
        return f"expected {WORDS[pattern]}, got {error.get('input')!r}"
    return str(error["msg"]).removeprefix("Value error, ")


def strategy(section: Canary) -> rollouts.Strategy:
    steps: list[rollouts.Step] = []
    for step in section.steps:
        if isinstance(step, str):
            steps.append(rollouts.Pause(pause_seconds(step)))
        else:
            points = basis_points(step)
            assert points is not None  # the model checked it
            steps.append(rollouts.SetWeight(points))
    sticky = section.sticky
    judged = sum(1 for s in steps if isinstance(s, rollouts.SetWeight) and s.weight < 10_000)
    criteria: dict[str, float] = {
        "min_requests": section.min_requests,
        "latency_percentile": section.latency_percentile,
        "looks": max(12, LOOKS_PER_STEP * judged),
    }
    if section.max_error_rate is not None:
        criteria["max_error_rate"] = section.max_error_rate / 100
    if section.max_latency is not None:
        criteria["max_latency"] = latency_seconds(section.max_latency)
    return rollouts.Strategy(
        steps=tuple(steps),
        analysis=rollouts.Analysis(
            interval=interval_seconds(section.interval),
            failure_limit=section.failure_limit,
            criteria=criteria,
            warmup=interval_seconds(section.warmup),
            metrics=tuple(_metric(metric) for metric in section.metrics),
        ),
        sticky_header=sticky.header.lower() if sticky and sticky.header else None,
        sticky_cookie=sticky.cookie if sticky else None,
        webhooks=tuple(
            rollouts.Webhook(hook.url, tuple(hook.on), hook.timeout, hook.secret)
            for hook in section.webhooks
        ),
        hold_limit=interval_seconds(section.hold_limit),
    )


def _metric(metric: Metric) -> rollouts.Metric:
    relative, absolute = metric.margin
    return rollouts.Metric(
        name=metric.name,
        query=metric.query,
        higher_is_better=metric.higher_is_better,
        relative=relative,
        absolute=absolute,
        limit=metric.bound,
    )
