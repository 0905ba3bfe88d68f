"""The `canary:` section of laneway.yaml: how a canary rollout of the app goes by default.

`laneway canary start` takes these steps, interval and limits unless its options say
otherwise; `core.canary` turns them into the rollout's `Strategy`. Steps are percents of
clients (two decimals at most: 0.01% steps) or pauses, and weights only rise, so a client
once sent to the canary is never sent back while it rolls out.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

PAUSE = re.compile(r"^pause(?: (\d+)(s|m|h))?$")
UNITS = {"s": 1, "m": 60, "h": 3600}
INTERVAL = r"^\d+(s|m|h)$"
LATENCY = r"^\d+(ms|s)$"
URL = r"^https?://[^\s]+$"
MAX_STEPS = 20
MAX_METRICS = 5
MAX_QUERY = 2000
Step = float | str
PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
"""`{{release}}` in a metric's query; `render` puts each side's value in its place."""
PLACEHOLDERS = ("release", "interval", "environment", "app")
PERCENT = re.compile(r"^(\d{1,5}(?:\.\d{1,4})?)%$")
METRIC_NAME = r"^[a-z][a-z0-9_-]{0,39}$"
ROUTER_CHECKS = ("latency",)
"""A verdict's own check names that a metric's name could take (analysis/checks.py)."""
Number = StrictFloat | StrictInt


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


class Metric(_Strict):
    """A metric of the team's own Prometheus, queried for each side and compared."""

    name: str = Field(
        pattern=METRIC_NAME,
        description="What the verdict calls it (`checkout-errors`): a-z, 0-9, `_`, `-`.",
    )
    query: str = Field(
        min_length=1,
        max_length=MAX_QUERY,
        description="A PromQL expression answering one number, with `{{release}}` where the "
        "release label goes (`v7`), evaluated once for the canary and once for stable; "
        "`{{interval}}` is the window judged (`[{{interval}}]`), `{{environment}}` and "
        "`{{app}}` the names.",
    )
    max_increase: Number | StrictStr | None = Field(
        default=None,
        description="Lower is better: how much higher the canary may be than stable, `10%` of "
        "stable's value or a number in the query's units (`0.02`).",
    )
    max: Number | None = Field(
        default=None, description="Lower is better: a bound the canary's value must not pass."
    )
    max_decrease: Number | StrictStr | None = Field(
        default=None,
        description="Higher is better: how much lower the canary may be than stable, `5%` of "
        "stable's value or a number in the query's units.",
    )
    min: Number | None = Field(
        default=None, description="Higher is better: a bound the canary's value must reach."
    )

    @field_validator("name", mode="after")
    @classmethod
    def _name(cls, name: str) -> str:
        if name in ROUTER_CHECKS:
            raise ValueError(
                f"{name} is a check of the router's own; name it otherwise (`app-{name}`)"
            )
        return name

    @field_validator("query", mode="after")
    @classmethod
    def _query(cls, query: str) -> str:
        used = [name for name in PLACEHOLDER.findall(query)]
        unknown = sorted({name for name in used if name not in PLACEHOLDERS})
        if unknown:
            known = ", ".join(f"{{{{{name}}}}}" for name in PLACEHOLDERS)
            raise ValueError(f"unknown placeholder {{{{{unknown[0]}}}}}; known: {known}")
        if "release" not in used:
            raise ValueError(
                'put {{release}} where the release label goes (`release="{{release}}"`): '
                "the query is evaluated for the canary's release and for stable's"
            )
        return query

    @field_validator("max_increase", "max_decrease", mode="before")
    @classmethod
    def _margin_type(cls, margin: object) -> object:
        if margin is None or isinstance(margin, str) or _is_number(margin):
            return margin
        raise ValueError(
            "a percent of stable's value (`10%`) or a number in the query's units, "
            f"got {_shown(margin)}"
        )

    @field_validator("max", "min", mode="before")
    @classmethod
    def _bound_type(cls, bound: object) -> object:
        if bound is None or _is_number(bound):
            return bound
        raise ValueError(f"a number in the query's units, got {_shown(bound)}")

    @field_validator("max_increase", "max_decrease", mode="after")
    @classmethod
    def _margin(cls, margin: float | str | None, info: ValidationInfo) -> float | str | None:
        if margin is None:
            return None
        if isinstance(margin, str):
            match = PERCENT.match(margin.strip())
            if match is None:
                raise ValueError(
                    f"a percent of stable's value (`10%`) or a number in the query's units, "
                    f"got {margin!r}"
                )
            if info.field_name == "max_decrease" and float(match.group(1)) > 100:
                raise ValueError(f"at most 100% (of stable's value), got {margin}")
            return margin.strip()
        if not math.isfinite(margin) or margin < 0:
            raise ValueError(f"a number of 0 or more, got {margin}")
        return margin

    @field_validator("max", "min", mode="after")
    @classmethod
    def _bound(cls, bound: float | None) -> float | None:
        if bound is not None and not math.isfinite(bound):
            raise ValueError(f"a finite number, got {bound}")
        return bound

    @model_validator(mode="after")
    def _direction(self) -> Metric:
        lower = self.max_increase is not None or self.max is not None
        higher = self.max_decrease is not None or self.min is not None
        if lower and higher:
            raise ValueError(
                "give max_increase and max (lower is better) or max_decrease and min (higher "
                "is better), not both"
            )
        if not lower and not higher:
            raise ValueError(
                "give max_increase or max (lower is better), or max_decrease or min (higher "
                "is better)"
            )
        return self

    @property
    def higher_is_better(self) -> bool:
        return self.max_decrease is not None or self.min is not None

    @property
    def bound(self) -> float | None:
        """`min` or `max`, whichever the direction has."""
        bound = self.min if self.higher_is_better else self.max
        return None if bound is None else float(bound)

    @property
    def margin(self) -> tuple[float | None, float | None]:
        """(relative, absolute): the allowed worsening as a fraction of stable's value, or
        in the query's units; at most one is set."""
        margin = self.max_decrease if self.higher_is_better else self.max_increase
        if margin is None:
            return None, None
        if isinstance(margin, str):
            return float(margin[:-1]) / 100, None
        return None, float(margin)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _shown(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else repr(value)


def render(query: str, values: dict[str, str]) -> str:
    """The query with each `{{name}}` replaced by `values[name]`."""
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], query)


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
