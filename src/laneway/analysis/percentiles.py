"""Percentiles of a latency histogram over `LATENCY_BOUNDS` (the last bucket: past every bound)."""

from __future__ import annotations

from collections.abc import Sequence

from laneway.core.measurements import LATENCY_BOUNDS


def bucket_of(counts: Sequence[int], q: float) -> int | None:
    """The index of the bucket holding the `q`-th percentile (0..100); None if empty."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q / 100 * total
    seen = 0
    for index, count in enumerate(counts):
        seen += count
        if count and seen >= rank:
            return index
    return len(counts) - 1


def percentile(counts: Sequence[int], q: float) -> float | None:
    """The `q`-th percentile (0..100) in seconds, interpolated inside its bucket: linearly in
    the first bucket, geometrically in the others (their bounds grow by a factor, so a
    smooth distribution's mass spreads evenly in the logarithm). A percentile in the last
    bucket is reported as the last bound, which it exceeds. None if the histogram is empty."""
    index = bucket_of(counts, q)
    if index is None:
        return None
    if index >= len(LATENCY_BOUNDS):
        return LATENCY_BOUNDS[-1]
    total = sum(counts)
    below = sum(counts[:index])
    fraction = min(max((q / 100 * total - below) / counts[index], 0.0), 1.0)
    upper = LATENCY_BOUNDS[index]
    if index == 0:
        return upper * fraction
    lower = LATENCY_BOUNDS[index - 1]
    return float(lower * (upper / lower) ** fraction)


def count_above(counts: Sequence[int], index: int) -> int:
    """Requests in the buckets past `index`."""
    return sum(counts[index + 1 :])


def count_surely_above(counts: Sequence[int], seconds: float) -> int:
    """Requests in the buckets whose whole range lies above `seconds`."""
    lowers = (0.0, *LATENCY_BOUNDS)
    return sum(count for lower, count in zip(lowers, counts, strict=False) if lower >= seconds)
