"""What a verdict is made of."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Needed:
    """More requests the next verdict needs, canary and baseline, counted from the data
    this verdict had (so a caller divides by each side's current rate for the time)."""

    canary: int
    baseline: int

    def most(self, other: Needed | None) -> Needed:
        if other is None:
            return self
        return Needed(max(self.canary, other.canary), max(self.baseline, other.baseline))


@dataclass(frozen=True)
class Check:
    """One metric's judgement: its outcome, a phrase a person reads, the numbers behind it
    (counts, rates, percentiles of each side, p-value, effect size, threshold, alpha)."""

    name: str
    outcome: Outcome
    summary: str
    numbers: Mapping[str, float | int | None] = field(default_factory=dict)
    needed: Needed | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "outcome": str(self.outcome),
            "summary": self.summary,
            "numbers": dict(self.numbers),
            "needed_requests": _needed_json(self.needed),
        }


@dataclass(frozen=True)
class Verdict:
    """Canary against baseline at one interval: fail if any check fails, else inconclusive
    if any is, else pass. `needed_requests` is set only when inconclusive."""

    outcome: Outcome
    checks: tuple[Check, ...]
    summary: str
    needed_requests: Needed | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": str(self.outcome),
            "summary": self.summary,
            "checks": [check.to_json() for check in self.checks],
            "needed_requests": _needed_json(self.needed_requests),
        }


def _needed_json(needed: Needed | None) -> dict[str, int] | None:
    if needed is None:
        return None
    return {"canary": needed.canary, "baseline": needed.baseline}
