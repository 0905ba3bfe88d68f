"""The `canary.metrics` of laneway.yaml: a team's own PromQL queries, judged canary against
stable with the router's checks (`core.canary` keeps them as `rollouts.Metric`,
`controllers/prometheus.py` asks them, `analysis/external.py` compares the answers).

A query names the release label with `{{release}}`, and may use `{{interval}}` (the window
judged), `{{environment}}` and `{{app}}`; the fields given say which way is worse.
"""

from __future__ import annotations

import math
import re

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

MAX_METRICS = 5
MAX_QUERY = 2000
PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
"""`{{release}}` in a metric's query; `render` puts each side's value in its place."""
PLACEHOLDERS = ("release", "interval", "environment", "app")
PERCENT = re.compile(r"^(\d{1,5}(?:\.\d{1,4})?)%$")
METRIC_NAME = r"^[a-z][a-z0-9_-]{0,39}$"
ROUTER_CHECKS = ("latency",)
"""A verdict's own check names that a metric's name could take (analysis/checks.py)."""
Number = StrictFloat | StrictInt


class Metric(BaseModel):
    """A metric of the team's own Prometheus, queried for each side and compared."""

    model_config = ConfigDict(extra="forbid", frozen=True)

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
        used = PLACEHOLDER.findall(query)
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
