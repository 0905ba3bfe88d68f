"""A team's own metric, judged canary against baseline: the value its PromQL query has for
each side (read by `controllers/prometheus.py`), compared by the metric's margin and bound.

Each side is one number, not a sample, so there is no test of significance: the margin is
the whole rule. The check fails if the canary is worse than its bound, or worse than the
baseline by more than the margin (a fraction of the baseline's value, or an amount in the
query's units); it is inconclusive if a value it needs is missing: Prometheus had no data
for a side ("no values found" is never a pass), answered NaN, or could not be asked.
`judge.combined` adds these checks to the router's verdict by the same rule as the others.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from laneway.analysis.types import Check, Outcome
from laneway.core.rollout_types import Metric


@dataclass(frozen=True)
class Reading:
    """One side's value of a metric, or why there is none: a `problem` when Prometheus
    could not be asked or refused the query; neither when it had no data."""

    value: float | None = None
    problem: str | None = None


def compare(metric: Metric, canary: Reading, baseline: Reading, *, sides: tuple[str, str]) -> Check:
    """The check of `metric`; `sides` names the canary and the baseline (`v8`, `v7`)."""
    numbers: dict[str, float | int | None] = {
        "canary": _finite(canary.value),
        "baseline": _finite(baseline.value),
        "relative_margin": metric.relative,
        "absolute_margin": metric.absolute,
        "limit": metric.limit,
        "allowed": None,
    }
    name = metric.name
    canary_side, baseline_side = sides
    missing = _missing(canary, canary_side)
    if missing is not None:
        return Check(name, Outcome.INCONCLUSIVE, f"{name}: {missing}", numbers)
    value = _value(canary)
    shown = f"{name} {_number(value)} on {canary_side}"
    if metric.limit is not None and _worse(metric, value, metric.limit):
        bound = "min" if metric.higher_is_better else "max"
        return Check(
            name, Outcome.FAIL, f"{shown}, past its {bound} of {_number(metric.limit)}", numbers
        )
    if metric.relative is None and metric.absolute is None:
        return Check(name, Outcome.PASS, f"{shown}, within {_number(metric.limit)}", numbers)
    missing = _missing(baseline, baseline_side)
    if missing is not None:
        return Check(name, Outcome.INCONCLUSIVE, f"{name}: {missing}", numbers)
    base = _value(baseline)
    allowance = (
        metric.absolute if metric.absolute is not None else (metric.relative or 0) * abs(base)
    )
    allowed = base - allowance if metric.higher_is_better else base + allowance
    numbers["allowed"] = allowed
    phrase = f"{name} {_number(value)} vs {_number(base)} ({_change(value, base)})"
    if _worse(metric, value, allowed):
        margin = (
            f"{_number(metric.absolute)}"
            if metric.absolute is not None
            else f"{(metric.relative or 0) * 100:g}%"
        )
        way = "lower" if metric.higher_is_better else "higher"
        return Check(name, Outcome.FAIL, f"{phrase}: {way} by more than {margin}", numbers)
    return Check(name, Outcome.PASS, phrase, numbers)


def _missing(reading: Reading, side: str) -> str | None:
    if reading.problem is not None:
        return f"no value for {side}: {reading.problem}"
    if reading.value is None:
        return f"Prometheus has no data for {side} (no values found: never a pass)"
    if not math.isfinite(reading.value):
        return f"the value for {side} is {reading.value} (a ratio of no requests?)"
    return None


def _finite(value: float | None) -> float | None:
    """A number for the verdict's JSON, which has no NaN or infinity."""
    return value if value is not None and math.isfinite(value) else None


def _value(reading: Reading) -> float:
    assert reading.value is not None
    return reading.value


def _worse(metric: Metric, value: float, than: float) -> bool:
    return value < than if metric.higher_is_better else value > than


def _change(value: float, base: float) -> str:
    if base == 0:
        return f"{value - base:+.4g}"
    return f"{(value - base) / abs(base) * 100:+.1f}%"


def _number(value: float | None) -> str:
    return "none" if value is None else f"{value:.4g}"
