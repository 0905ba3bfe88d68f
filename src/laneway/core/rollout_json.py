"""A rollout status as JSON, the way the store keeps it (`environments.rollout_json`). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from laneway.core.measurements import Measurement
from laneway.core.rollout_types import (
    Analysis,
    Metric,
    Pause,
    RolloutStatus,
    SetWeight,
    Side,
    Step,
    Strategy,
    Webhook,
    Window,
)
from laneway.core.routing import WEIGHT_SCALE


def to_json(status: RolloutStatus) -> dict[str, Any]:
    def side(value: Side | None) -> list[int] | None:
        return None if value is None else [value.release, value.generation]

    strategy = status.strategy
    analysis = strategy.analysis
    return {
        "stable": side(status.stable),
        "canary": side(status.canary),
        "steps": [
            {"weight": s.weight} if isinstance(s, SetWeight) else {"pause": s.seconds}
            for s in strategy.steps
        ],
        "analysis": None
        if analysis is None
        else {
            "interval": analysis.interval,
            "failure_limit": analysis.failure_limit,
            "criteria": dict(analysis.criteria),
            "metrics": [_metric_json(metric) for metric in analysis.metrics],
            "warmup": analysis.warmup,
        },
        "sticky_header": strategy.sticky_header,
        "sticky_cookie": strategy.sticky_cookie,
        "webhooks": [
            {"url": hook.url, "on": list(hook.on), "timeout": hook.timeout, "secret": hook.secret}
            for hook in strategy.webhooks
        ],
        "hold_limit": strategy.hold_limit,
        "step_index": status.step_index,
        "weight": status.weight,
        "served": status.served,
        "exposed": status.exposed,
        "step_since": status.step_since,
        "window": None
        if status.window is None
        else {
            "since": status.window.since,
            "epoch": status.window.epoch,
            "canary": status.window.canary.to_json(),
            "stable": status.window.stable.to_json(),
        },
        "paused": list(status.paused),
        "aborted": status.aborted,
        "failures": status.failures,
        "warm": side(status.warm),
        "warm_until": status.warm_until,
        "ended": status.ended,
        "judged_at": status.judged_at,
        "note": status.note,
        "gate": status.gate,
        "held_at": status.held_at,
        "held_since": status.held_since,
    }


def from_json(data: Mapping[str, Any]) -> RolloutStatus:
    def side(value: Any) -> Side | None:
        return None if not value else Side(int(value[0]), int(value[1]))

    steps: list[Step] = []
    for item in data.get("steps") or []:
        if "weight" in item:
            steps.append(SetWeight(int(item["weight"])))
        else:
            seconds = item.get("pause")
            steps.append(Pause(None if seconds is None else float(seconds)))
    raw_analysis = data.get("analysis")
    analysis = (
        None
        if not raw_analysis
        else Analysis(
            interval=float(raw_analysis["interval"]),
            failure_limit=int(raw_analysis["failure_limit"]),
            criteria={str(k): float(v) for k, v in (raw_analysis.get("criteria") or {}).items()},
            metrics=tuple(_metric(item) for item in raw_analysis.get("metrics") or ()),
            warmup=float(raw_analysis.get("warmup") or 0.0),
        )
    )
    window = data.get("window")
    return RolloutStatus(
        stable=side(data.get("stable")),
        canary=side(data.get("canary")),
        strategy=Strategy(
            steps=tuple(steps) or (SetWeight(WEIGHT_SCALE),),
            analysis=analysis,
            sticky_header=data.get("sticky_header"),
            sticky_cookie=data.get("sticky_cookie"),
            webhooks=tuple(
                Webhook(
                    str(h["url"]),
                    tuple(str(e) for e in h["on"]),
                    float(h["timeout"]),
                    None if h.get("secret") is None else str(h["secret"]),
                )
                for h in data.get("webhooks") or ()
            ),
            hold_limit=float(data.get("hold_limit", Strategy.hold_limit)),
        ),
        step_index=int(data.get("step_index", 0)),
        weight=int(data.get("weight", 0)),
        served=None if data.get("served") is None else int(data["served"]),
        exposed=bool(data.get("exposed", False)),
        step_since=None if data.get("step_since") is None else float(data["step_since"]),
        window=None
        if not window
        else Window(
            since=float(window["since"]),
            epoch=None if window.get("epoch") is None else float(window["epoch"]),
            canary=Measurement.from_json(window["canary"]),
            stable=Measurement.from_json(window["stable"]),
        ),
        paused=tuple(str(p) for p in data.get("paused") or ()),
        aborted=data.get("aborted"),
        failures=int(data.get("failures", 0)),
        warm=side(data.get("warm")),
        warm_until=float(data.get("warm_until", 0.0)),
        ended=data.get("ended"),
        judged_at=None if data.get("judged_at") is None else float(data["judged_at"]),
        note=data.get("note"),
        gate=None if data.get("gate") is None else int(data["gate"]),
        held_at=None if data.get("held_at") is None else float(data["held_at"]),
        held_since=None if data.get("held_since") is None else float(data["held_since"]),
    )


def _metric_json(metric: Metric) -> dict[str, Any]:
    return {
        "name": metric.name,
        "query": metric.query,
        "higher_is_better": metric.higher_is_better,
        "relative": metric.relative,
        "absolute": metric.absolute,
        "limit": metric.limit,
    }


def _metric(data: Mapping[str, Any]) -> Metric:
    def number(key: str) -> float | None:
        value = data.get(key)
        return None if value is None else float(value)

    return Metric(
        name=str(data["name"]),
        query=str(data["query"]),
        higher_is_better=bool(data.get("higher_is_better", False)),
        relative=number("relative"),
        absolute=number("absolute"),
        limit=number("limit"),
    )


def strategy_json(strategy: Strategy) -> dict[str, Any]:
    """A strategy alone, as a rollout's JSON holds it (for a change that runs later)."""
    return to_json(RolloutStatus(strategy=strategy))


def strategy_of(data: Mapping[str, Any]) -> Strategy:
    return from_json(data).strategy
