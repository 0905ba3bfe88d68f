"""What a canary must satisfy against its baseline: sample, thresholds, margins, false alarms."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Criteria:
    """The rules of one rollout's verdicts.

    - `min_requests`: requests each side (canary, baseline) needs before a verdict is more
      than inconclusive.
    - `max_error_rate`: an absolute limit on the canary's share of failed requests (0..1).
    - `max_latency`: an absolute limit (seconds) on the canary's `latency_percentile`.
    - `latency_percentile`: the percentile of the tail check and of `max_latency` (50..100).
    - `error_rate_margin`: how much worse (absolute, 0.005 = half a point) the canary's error
      rate may be than the baseline's before it counts as a regression (Kayenta's "allowed
      increase").
    - `latency_margin`: how much slower (relative, 0.1 = 10%) the canary's median and tail
      percentile may be than the baseline's.
    - `latency_floor`: and, whatever the margin, how much slower in seconds (0.002: 2 ms):
      a fast app's fraction of a millisecond, a fresh process's colder caches, is no
      regression a user notices.
    - `false_alarm_rate`: the share of rollouts of identical builds that may fail (0..0.5).
    - `looks`: how many verdicts a rollout makes at most (steps times intervals); the false
      alarm rate is shared among them (see `analysis/judge.py`).
    """

    min_requests: int = 200
    max_error_rate: float | None = None
    max_latency: float | None = None
    latency_percentile: float = 99.0
    error_rate_margin: float = 0.005
    latency_margin: float = 0.10
    latency_floor: float = 0.002
    false_alarm_rate: float = 0.01
    looks: int = 12

    def __post_init__(self) -> None:
        _check_int("min_requests", self.min_requests, low=1)
        _check_int("looks", self.looks, low=1)
        if self.max_error_rate is not None:
            _check_float("max_error_rate", self.max_error_rate, 0.0, 1.0, "between 0 and 1")
        if self.max_latency is not None:
            _check_float("max_latency", self.max_latency, 0.0, 3600.0, "of seconds above 0")
            if self.max_latency == 0:
                raise ValueError(f"max_latency must be seconds above 0, not {self.max_latency}")
        _check_float("latency_percentile", self.latency_percentile, 50.0, 100.0, "from 50 to 100")
        if self.latency_percentile in (50.0, 100.0):
            raise ValueError(
                f"latency_percentile must be above 50 and below 100, not {self.latency_percentile}"
            )
        _check_float("error_rate_margin", self.error_rate_margin, 0.0, 1.0, "between 0 and 1")
        _check_float("latency_margin", self.latency_margin, 0.0, 10.0, "between 0 and 10")
        _check_float("latency_floor", self.latency_floor, 0.0, 60.0, "of seconds, 0 to 60")
        _check_float("false_alarm_rate", self.false_alarm_rate, 0.0, 0.5, "between 0 and 0.5")
        if self.false_alarm_rate <= 0:
            raise ValueError("false_alarm_rate must be above 0 (a verdict could never fail)")

    @property
    def checks(self) -> int:
        """How many checks can fail: the three comparisons, and the thresholds that are set."""
        return 3 + (self.max_error_rate is not None) + (self.max_latency is not None)

    @property
    def alpha(self) -> float:
        """The significance level of one check at one look: the false alarm rate shared
        evenly among every check at every look (Bonferroni)."""
        return self.false_alarm_rate / (self.looks * self.checks)


def _check_int(name: str, value: object, *, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number, not {value!r}")
    if value < low:
        raise ValueError(f"{name} must be at least {low}, not {value}")


def _check_float(name: str, value: object, low: float, high: float, wording: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number {wording}, not {value!r}")
    if not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{name} must be a number {wording}, not {value}")
