"""Criteria: defaults, the level of one check at one look, bad values named."""

from __future__ import annotations

from typing import Any

import pytest

from laneway.analysis.criteria import Criteria


def test_defaults_are_valid_and_share_the_false_alarm_rate() -> None:
    criteria = Criteria()
    assert criteria.checks == 3
    assert criteria.alpha == pytest.approx(0.01 / (12 * 3))
    with_limits = Criteria(max_error_rate=0.05, max_latency=0.5)
    assert with_limits.checks == 5
    assert with_limits.alpha == pytest.approx(0.01 / (12 * 5))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"min_requests": 0}, "min_requests must be at least 1, not 0"),
        ({"min_requests": 2.5}, "min_requests must be a whole number, not 2.5"),
        ({"min_requests": True}, "min_requests must be a whole number, not True"),
        ({"looks": 0}, "looks must be at least 1, not 0"),
        ({"max_error_rate": 1.5}, "max_error_rate must be a number between 0 and 1, not 1.5"),
        ({"max_error_rate": "5%"}, "max_error_rate must be a number between 0 and 1, not '5%'"),
        ({"max_latency": 0}, "max_latency must be seconds above 0, not 0"),
        ({"max_latency": -1.0}, "max_latency must be a number of seconds above 0, not -1.0"),
        ({"max_latency": float("nan")}, "max_latency must be a number of seconds above 0"),
        ({"latency_percentile": 50}, "latency_percentile must be above 50 and below 100"),
        ({"latency_percentile": 100.0}, "latency_percentile must be above 50 and below 100"),
        ({"latency_percentile": 120}, "latency_percentile must be a number from 50 to 100"),
        ({"error_rate_margin": -0.1}, "error_rate_margin must be a number between 0 and 1"),
        ({"latency_margin": float("inf")}, "latency_margin must be a number between 0 and 10"),
        ({"false_alarm_rate": 0}, "false_alarm_rate must be above 0"),
        ({"false_alarm_rate": 0.6}, "false_alarm_rate must be a number between 0 and 0.5"),
    ],
)
def test_bad_values_are_named(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as raised:
        Criteria(**values)
    assert message in str(raised.value)
