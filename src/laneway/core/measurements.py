"""What the router measures per route and release, in the shape the analysis reads. Pure.

The built-in router (and the HAProxy driver, from its per-server counters) keeps one
`Measurement` per (hostname, release), counting up from its start. The control plane reads
them through `RouterDriver.read_snapshot()`; a canary's analysis compares two windows of
the same interval (`later.minus(earlier)`), canary against stable, and `/metrics` serves
them in the Prometheus text format.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

LATENCY_BOUNDS: tuple[float, ...] = tuple(
    round(0.0005 * 1.2**i, 7) for i in range(int(math.log(120 / 0.0005, 1.2)) + 1)
)
"""Upper bounds (seconds) of the latency histogram's buckets: 0.5 ms up to about 100 s, each
1.2 times the one before, so a 30% change in a percentile moves it more than one bucket.
A last bucket, past the final bound, counts the rest."""

STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")


def latency_bucket(seconds: float) -> int:
    """The index of the histogram bucket `seconds` falls in: the first bound not below it
    (the last bucket past every bound)."""
    return bisect_left(LATENCY_BOUNDS, seconds)


def _zeros() -> tuple[int, ...]:
    return (0,) * (len(LATENCY_BOUNDS) + 1)


@dataclass(frozen=True)
class Measurement:
    """Counts since some start: requests, responses by status class, failures the router
    met itself (connect failures, timeouts: the client got the router's 502 or 504), and
    a latency histogram of the responses (time from the request's end to the response
    head, over `LATENCY_BOUNDS`)."""

    requests: int = 0
    statuses: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)
    errors: int = 0
    latency: tuple[int, ...] = field(default_factory=_zeros)
    latency_sum: float = 0.0

    @property
    def failed(self) -> int:
        """Requests that failed: a 5xx from the backend or an error of the router's own."""
        return self.statuses[4] + self.errors

    @property
    def error_rate(self) -> float | None:
        return self.failed / self.requests if self.requests else None

    def minus(self, earlier: Measurement) -> Measurement | None:
        """The window between `earlier` and this; None if a count went down (the router
        restarted and counts from zero: the window is to be started again)."""
        statuses = tuple(a - b for a, b in zip(self.statuses, earlier.statuses, strict=True))
        latency = tuple(a - b for a, b in zip(self.latency, earlier.latency, strict=True))
        requests = self.requests - earlier.requests
        errors = self.errors - earlier.errors
        if requests < 0 or errors < 0 or min(statuses) < 0 or min(latency) < 0:
            return None
        return Measurement(
            requests=requests,
            statuses=(statuses[0], statuses[1], statuses[2], statuses[3], statuses[4]),
            errors=errors,
            latency=latency,
            latency_sum=max(self.latency_sum - earlier.latency_sum, 0.0),
        )

    def plus(self, other: Measurement) -> Measurement:
        statuses = tuple(a + b for a, b in zip(self.statuses, other.statuses, strict=True))
        return Measurement(
            requests=self.requests + other.requests,
            statuses=(statuses[0], statuses[1], statuses[2], statuses[3], statuses[4]),
            errors=self.errors + other.errors,
            latency=tuple(a + b for a, b in zip(self.latency, other.latency, strict=True)),
            latency_sum=self.latency_sum + other.latency_sum,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "statuses": list(self.statuses),
            "errors": self.errors,
            "latency": list(self.latency),
            "latency_sum": self.latency_sum,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Measurement:
        statuses = [int(n) for n in data.get("statuses", [0] * 5)]
        latency = tuple(int(n) for n in data.get("latency", _zeros()))
        if len(statuses) != 5 or len(latency) != len(LATENCY_BOUNDS) + 1:
            raise ValueError("a measurement with the wrong number of buckets")
        return cls(
            requests=int(data.get("requests", 0)),
            statuses=(statuses[0], statuses[1], statuses[2], statuses[3], statuses[4]),
            errors=int(data.get("errors", 0)),
            latency=latency,
            latency_sum=float(data.get("latency_sum", 0.0)),
        )
