"""Deterministic samples: n latencies at the quantiles (i + 0.5) / n of a distribution,
counted into the router's histogram, and a share of them failed."""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist

from laneway.core.measurements import LATENCY_BOUNDS, Measurement, latency_bucket

Z99 = NormalDist().inv_cdf(0.99)


def lognormal(
    median: float = 0.05, sigma: float = 0.5, upper: float | None = None
) -> Callable[[float], float]:
    """Quantiles of a lognormal latency; `upper` a larger log-sd above the median (a tail
    stretched with the median unchanged)."""
    high = sigma if upper is None else upper

    def quantile(u: float) -> float:
        z = NormalDist().inv_cdf(u)
        return median * math.exp((high if z > 0 else sigma) * z)

    return quantile


def measurement(
    n: int, error_rate: float = 0.01, quantile: Callable[[float], float] | None = None
) -> Measurement:
    quantile = quantile or lognormal()
    latency = [0] * (len(LATENCY_BOUNDS) + 1)
    total = 0.0
    for i in range(n):
        seconds = quantile((i + 0.5) / n)
        latency[latency_bucket(seconds)] += 1
        total += seconds
    failed = round(n * error_rate)
    return Measurement(
        requests=n,
        statuses=(0, n - failed, 0, 0, failed),
        latency=tuple(latency),
        latency_sum=total,
    )


def tail_stretched(factor: float = 1.3) -> Callable[[float], float]:
    """p99 `factor` times the baseline's, median the same."""
    return lognormal(upper=0.5 + math.log(factor) / Z99)
