"""Percentiles of a histogram over LATENCY_BOUNDS."""

from __future__ import annotations

import pytest

from laneway.analysis.percentiles import bucket_of, count_above, count_surely_above, percentile
from laneway.core.measurements import LATENCY_BOUNDS, latency_bucket

EMPTY = (0,) * (len(LATENCY_BOUNDS) + 1)


def histogram(*seconds: float) -> tuple[int, ...]:
    counts = list(EMPTY)
    for value in seconds:
        counts[latency_bucket(value)] += 1
    return tuple(counts)


def test_an_empty_histogram_has_no_percentile() -> None:
    assert percentile(EMPTY, 50) is None
    assert bucket_of(EMPTY, 99) is None


def test_a_percentile_lies_in_its_bucket_interpolated_in_the_logarithm() -> None:
    counts = list(EMPTY)
    counts[10] = 100
    value = percentile(counts, 50)
    assert value is not None
    assert LATENCY_BOUNDS[9] < value < LATENCY_BOUNDS[10]
    assert value == pytest.approx((LATENCY_BOUNDS[9] * LATENCY_BOUNDS[10]) ** 0.5)
    assert percentile(counts, 100) == pytest.approx(LATENCY_BOUNDS[10])


def test_the_first_bucket_is_linear_from_zero() -> None:
    assert percentile(histogram(0.0001, 0.0002), 50) == pytest.approx(LATENCY_BOUNDS[0] / 2)


def test_a_percentile_past_every_bound_is_the_last_bound() -> None:
    assert percentile(histogram(500.0), 50) == LATENCY_BOUNDS[-1]


def test_percentiles_follow_the_samples() -> None:
    counts = histogram(*(0.010 for _ in range(90)), *(0.200 for _ in range(10)))
    p50, p95 = percentile(counts, 50), percentile(counts, 95)
    low, high = latency_bucket(0.010), latency_bucket(0.200)
    assert p50 is not None and LATENCY_BOUNDS[low - 1] < p50 <= LATENCY_BOUNDS[low]
    assert p95 is not None and LATENCY_BOUNDS[high - 1] < p95 <= LATENCY_BOUNDS[high]


def test_counts_above_a_bucket_and_surely_above_a_time() -> None:
    counts = histogram(0.001, 0.050, 0.500, 5.0)
    assert count_above(counts, latency_bucket(0.050)) == 2
    assert count_surely_above(counts, 1.0) == 1
    assert count_surely_above(counts, 0.0) == 4
