"""The `canary:` section of laneway.yaml: how a canary rollout of the app goes by default.

`laneway canary start` takes these steps, interval and limits unless its options say
otherwise; `core.canary` turns them into the rollout's `Strategy`. Steps are percents of
clients (two decimals at most: 0.01% steps) or pauses, and weights only rise, so a client
once sent to the canary is never sent back while it rolls out.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from laneway.spec.metrics import MAX_METRICS, Metric
from laneway.spec.names import ENV_KEY

PAUSE = re.compile(r"^pause(?: (\d+)(s|m|h))?$")
UNITS = {"s": 1, "m": 60, "h": 3600}
INTERVAL = r"^[1-9]\d{0,4}(s|m|h)$"
LATENCY = r"^\d+(ms|s)$"
WARMUP = r"^\d{1,5}(s|m)$"
URL = r"^https?://[^\s]+$"
MAX_STEPS = 20
MAX_INTERVAL = 86_400.0
Step = float | str


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sticky(_Strict):
    """What keeps one user on one side: a request header or a cookie naming the user."""

    header: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9-]{1,64}$",
        description="A request header whose value names the user (`X-User-Id`).",
    )
    cookie: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="A cookie whose value names the user.",
    )

    @model_validator(mode="after")
    def _one(self) -> Sticky:
        if (self.header is None) == (self.cookie is None):
            raise ValueError("give exactly one of header or cookie")
        return self


def default_steps() -> list[Step]:
    return [1.0, 5.0, 25.0, 50.0, 100.0]


MAX_WEBHOOKS = 5
Event = Literal["pre-step", "promoted", "aborted"]


def _pre_step() -> list[Event]:
    return ["pre-step"]


class Webhook(_Strict):
    """An HTTP endpoint a rollout calls with a JSON POST (app, environment, release, step,
    weight, event): before each weight (`pre-step`, anything but 2xx holds the step), on
    promotion (`promoted`) and on abort (`aborted`); each call is recorded as an event."""

    url: str = Field(pattern=URL, max_length=2000, description="Where to POST (http or https).")
    on: list[Event] = Field(
        default_factory=_pre_step, min_length=1, max_length=3, description="When."
    )
    timeout: float = Field(default=10.0, gt=0, le=60, description="Seconds to wait for the answer.")
    secret: str | None = Field(
        default=None,
        pattern=ENV_KEY,
        max_length=128,
        description="A secret config variable of the environment (`laneway config set "
        "--secret`) whose value signs each call: X-Laneway-Signature (docs/canary.md).",
    )


class Canary(_Strict):
    """How a canary rollout goes: its steps, how each is judged, what keeps a user on a side."""

    steps: list[Step] = Field(
        default_factory=default_steps,
        min_length=1,
        max_length=MAX_STEPS,
        description="Percents of clients sent to the canary, in order (0.01 to 100, two "
        "decimals at most), or `pause` (until `laneway canary resume`) or `pause 10m`.",
    )
    interval: Annotated[str, Field(pattern=INTERVAL)] = Field(
        default="2m",
        description="How long each weight is held before it is judged, at least (2m catches a "
        "1% -> 3% error regression of a 5% canary at 100 requests/s within 3 intervals: "
        "docs/benchmarks.md, B7).",
    )
    warmup: Annotated[str, Field(pattern=WARMUP)] = Field(
        default="0s",
        description="How long each weight is served before its window opens: a fresh "
        "process's first, colder requests are not judged (`30s`).",
    )
    failure_limit: int = Field(
        default=1, ge=0, le=10, strict=True, description="Failed verdicts tolerated."
    )
    min_requests: int = Field(
        default=200,
        ge=1,
        le=10_000_000,
        strict=True,
        description="Requests each side needs before a verdict is more than inconclusive.",
    )
    max_error_rate: float | None = Field(
        default=None,
        gt=0,
        le=100,
        description="A limit on the canary's failed requests, in percent, whatever stable does.",
    )
    max_latency: Annotated[str, Field(pattern=LATENCY)] | None = Field(
        default=None,
        description="A limit on the canary's latency percentile (`500ms`, `2s`).",
    )
    latency_percentile: float = Field(
        default=99.0, gt=50, lt=100, description="The percentile of the latency checks."
    )
    webhooks: list[Webhook] = Field(
        default_factory=list,
        max_length=MAX_WEBHOOKS,
        description="Called before each step (a failing one holds it), on promotion, on abort.",
    )
    hold_limit: Annotated[str, Field(pattern=INTERVAL)] = Field(
        default="1h",
        description="How long a step's pre-step webhooks may keep holding it before the "
        "rollout aborts (asked again every 10s meanwhile); 10s to 24h.",
    )
    sticky: Sticky | None = Field(
        default=None,
        description="Keep each user on one side by a header or cookie naming them; "
        "by default laneway's own cookie keeps each client on its side.",
    )
    metrics: list[Metric] = Field(
        default_factory=list,
        max_length=MAX_METRICS,
        description="Metrics of the team's own Prometheus (LANEWAY_PROMETHEUS_URL on the "
        "server), each judged canary against stable alongside the router's counts.",
    )

    @field_validator("interval", mode="after")
    @classmethod
    def _interval(cls, interval: str) -> str:
        if interval_seconds(interval) > MAX_INTERVAL:
            raise ValueError(f"at most 24h, got {interval}")
        return interval

    @field_validator("hold_limit", mode="after")
    @classmethod
    def _hold_limit(cls, limit: str) -> str:
        if not 10 <= interval_seconds(limit) <= MAX_INTERVAL:
            raise ValueError(f"10s to 24h, got {limit}")
        return limit

    @field_validator("steps", mode="after")
    @classmethod
    def _steps(cls, steps: list[Step]) -> list[Step]:
        last = 0
        for number, step in enumerate(steps, 1):
            if isinstance(step, str):
                if not PAUSE.match(step):
                    raise ValueError(f"step {number}: `pause`, `pause 10m`, or a percent")
                continue
            points = basis_points(step)
            if points is None:
                raise ValueError(
                    f"step {number}: a percent of clients from 0.01 to 100 with two decimals "
                    f"at most, got {step}"
                )
            if points < last:
                raise ValueError(
                    f"step {number}: weights only rise ({step:g}% after {last / 100:g}%), so "
                    "no client is sent back from the canary"
                )
            last = points
        return steps

    @field_validator("metrics", mode="after")
    @classmethod
    def _metrics(cls, metrics: list[Metric]) -> list[Metric]:
        seen: set[str] = set()
        for metric in metrics:
            if metric.name in seen:
                raise ValueError(f"two metrics are named {metric.name}")
            seen.add(metric.name)
        return metrics


def basis_points(percent: float) -> int | None:
    """`1.5` -> 150; None for anything outside 0.01..100 or finer than 0.01."""
    if isinstance(percent, bool) or not 0 < percent <= 100:
        return None
    points = round(percent * 100)
    return points if abs(points - percent * 100) < 1e-6 and points >= 1 else None


def pause_seconds(step: str) -> float | None:
    """`pause` -> None (until resumed); `pause 10m` -> 600."""
    match = PAUSE.match(step)
    if match is None or match.group(1) is None:
        return None
    return float(int(match.group(1)) * UNITS[match.group(2)])


def latency_seconds(latency: str) -> float:
    """`500ms` -> 0.5; `2s` -> 2.0."""
    if latency.endswith("ms"):
        return int(latency[:-2]) / 1000
    return float(int(latency[:-1]))


def interval_seconds(interval: str) -> float:
    return float(int(interval[:-1]) * UNITS[interval[-1]])
