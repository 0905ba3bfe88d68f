"""The checks of a verdict (see `judge.py` for the rule they share)."""

from __future__ import annotations

import math

from laneway.analysis.criteria import Criteria
from laneway.analysis.percentiles import bucket_of, count_above, count_surely_above, percentile
from laneway.analysis.significance import (
    binomial_greater,
    growth_to_significance,
    mann_whitney_greater,
    proportion_greater,
    upper_scale_greater,
)
from laneway.analysis.types import Check, Needed, Outcome
from laneway.core.measurements import LATENCY_BOUNDS, Measurement

Numbers = dict[str, float | int | None]


def error_rate(canary: Measurement, baseline: Measurement, criteria: Criteria) -> Check:
    name = "error rate"
    short = _too_few(name, canary.requests, baseline.requests, criteria)
    if short is not None:
        return short
    rate_c, rate_b = canary.failed / canary.requests, baseline.failed / baseline.requests
    p = proportion_greater(canary.failed, canary.requests, baseline.failed, baseline.requests)
    numbers: Numbers = {
        "canary_requests": canary.requests,
        "canary_failed": canary.failed,
        "canary_rate": rate_c,
        "baseline_requests": baseline.requests,
        "baseline_failed": baseline.failed,
        "baseline_rate": rate_b,
        "difference": rate_c - rate_b,
        "margin": criteria.error_rate_margin,
        "p_value": p,
        "alpha": criteria.alpha,
    }
    phrase = (
        f"error rate {_percent(rate_c)} vs {_percent(rate_b)}"
        f" ({(rate_c - rate_b) * 100:+.1f} points, p={p:.2g})"
    )
    worse = rate_c - rate_b > criteria.error_rate_margin
    return _decide(name, phrase, numbers, worse, p, criteria, canary.requests, baseline.requests)


def latency(canary: Measurement, baseline: Measurement, criteria: Criteria) -> Check:
    name = "latency"
    n_c, n_b = sum(canary.latency), sum(baseline.latency)
    short = _too_few(name, n_c, n_b, criteria)
    if short is not None:
        return short
    test = mann_whitney_greater(canary.latency, baseline.latency)
    median_c, median_b = (
        _required(percentile(canary.latency, 50)),
        _required(percentile(baseline.latency, 50)),
    )
    numbers: Numbers = {
        "canary_responses": n_c,
        "canary_median": median_c,
        "canary_mean": canary.latency_sum / n_c,
        "baseline_responses": n_b,
        "baseline_median": median_b,
        "baseline_mean": baseline.latency_sum / n_b,
        "u": test.u,
        "z": test.z,
        "cles": test.cles,
        "margin": criteria.latency_margin,
        "floor": criteria.latency_floor,
        "p_value": test.p,
        "alpha": criteria.alpha,
    }
    phrase = (
        f"median {_ms(median_c)} vs {_ms(median_b)} ({_change(median_c, median_b)},"
        f" P(canary slower)={test.cles:.2f}, p={test.p:.2g})"
    )
    worse = median_c > _allowed(median_b, criteria)
    return _decide(name, phrase, numbers, worse, test.p, criteria, n_c, n_b)


def _allowed(baseline: float, criteria: Criteria) -> float:
    """The slowest the canary may be: the margin over the baseline, and never less than the
    floor over it (a fraction of a millisecond on a fast app is no regression)."""
    return max(baseline * (1 + criteria.latency_margin), baseline + criteria.latency_floor)


def latency_tail(canary: Measurement, baseline: Measurement, criteria: Criteria) -> Check:
    name = "latency tail"
    n_c, n_b = sum(canary.latency), sum(baseline.latency)
    short = _too_few(name, n_c, n_b, criteria, least=tail_sample(criteria))
    if short is not None:
        return short
    q = criteria.latency_percentile
    label = f"p{q:g}"
    pooled = [a + b for a, b in zip(canary.latency, baseline.latency, strict=True)]
    index = bucket_of(pooled, q)
    tail_c, tail_b = (
        _required(percentile(canary.latency, q)),
        _required(percentile(baseline.latency, q)),
    )
    if index is None or index >= len(LATENCY_BOUNDS):
        return Check(name, Outcome.PASS, f"{label} past the histogram's last bound")
    bound = LATENCY_BOUNDS[index]
    above_c, above_b = count_above(canary.latency, index), count_above(baseline.latency, index)
    test = upper_scale_greater(canary.latency, baseline.latency)
    p = test.p
    numbers: Numbers = {
        "percentile": q,
        "canary_percentile": tail_c,
        "baseline_percentile": tail_b,
        "bound": bound,
        "canary_above": above_c,
        "canary_responses": n_c,
        "baseline_above": above_b,
        "baseline_responses": n_b,
        "margin": criteria.latency_margin,
        "floor": criteria.latency_floor,
        "p_value": p,
        "alpha": criteria.alpha,
    }
    phrase = (
        f"{label} {_ms(tail_c)} vs {_ms(tail_b)} ({_change(tail_c, tail_b)};"
        f" {_percent(above_c / n_c)} vs {_percent(above_b / n_b)} past {_ms(bound)}, p={p:.2g})"
    )
    worse = tail_c > _allowed(tail_b, criteria)
    return _decide(name, phrase, numbers, worse, p, criteria, n_c, n_b)


def error_rate_limit(canary: Measurement, limit: float, criteria: Criteria) -> Check:
    name = "error rate limit"
    short = _too_few(name, canary.requests, criteria.min_requests, criteria)
    if short is not None:
        return short
    rate = canary.failed / canary.requests
    p = binomial_greater(canary.failed, canary.requests, limit)
    numbers: Numbers = {
        "canary_requests": canary.requests,
        "canary_failed": canary.failed,
        "canary_rate": rate,
        "limit": limit,
        "p_value": p,
        "alpha": criteria.alpha,
    }
    side = "over" if rate > limit else "within"
    phrase = f"error rate {_percent(rate)} {side} the {_percent(limit)} limit (p={p:.2g})"
    return _decide(name, phrase, numbers, rate > limit, p, criteria, canary.requests, 0)


def latency_limit(canary: Measurement, limit: float, criteria: Criteria) -> Check:
    name = "latency limit"
    n_c = sum(canary.latency)
    short = _too_few(name, n_c, criteria.min_requests, criteria)
    if short is not None:
        return short
    q = criteria.latency_percentile
    value = _required(percentile(canary.latency, q))
    above = count_surely_above(canary.latency, limit)
    p = binomial_greater(above, n_c, 1 - q / 100)
    numbers: Numbers = {
        "percentile": q,
        "canary_percentile": value,
        "limit": limit,
        "canary_above": above,
        "canary_responses": n_c,
        "p_value": p,
        "alpha": criteria.alpha,
    }
    side = "over" if value > limit else "within"
    phrase = f"p{q:g} {_ms(value)} {side} the {_ms(limit)} limit (p={p:.2g})"
    return _decide(name, phrase, numbers, value > limit, p, criteria, n_c, 0)


TAIL_COUNT = 5
"""Requests past the percentile a side must be expected to have before its tail is judged."""


def tail_sample(criteria: Criteria) -> int:
    """Responses each side needs for the tail check: enough that `TAIL_COUNT` of them are
    expected past the percentile (500 for p99). Fewer, and a short slow spell of one process
    (its requests are not independent: a pause, a cold cache) reads as a slower tail; B7's
    end-to-end runs raised false alarms on identical builds exactly so."""
    share = 1 - criteria.latency_percentile / 100
    return max(criteria.min_requests, math.ceil(TAIL_COUNT / share - 1e-9))


def _too_few(
    name: str, n_c: int, n_b: int, criteria: Criteria, *, least: int | None = None
) -> Check | None:
    least = criteria.min_requests if least is None else least
    if n_c >= least and n_b >= least:
        return None
    needed = Needed(max(least - n_c, 0), max(least - n_b, 0))
    phrase = f"too few requests ({n_c:,} canary, {n_b:,} baseline; {least:,} each needed)"
    if name.endswith("limit"):
        phrase = f"too few canary requests ({n_c:,} of {least:,})"
    return Check(name, Outcome.INCONCLUSIVE, phrase, {"min_requests": least}, needed)


def _decide(
    name: str,
    phrase: str,
    numbers: Numbers,
    worse: bool,
    p: float,
    criteria: Criteria,
    n_c: int,
    n_b: int,
) -> Check:
    if not worse:
        return Check(name, Outcome.PASS, phrase, numbers)
    if p < criteria.alpha:
        return Check(name, Outcome.FAIL, phrase, numbers)
    growth = growth_to_significance(p, criteria.alpha) - 1
    needed = Needed(math.ceil(n_c * growth), math.ceil(n_b * growth))
    return Check(
        name, Outcome.INCONCLUSIVE, f"{phrase}: worse, not yet significantly", numbers, needed
    )


def _required(value: float | int | None) -> float:
    if value is None:
        raise AssertionError("a percentile of a histogram checked not to be empty")
    return float(value)


def _percent(share: float) -> str:
    return f"{share * 100:.1f}%"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"


def _change(value: float, reference: float) -> str:
    if reference <= 0:
        return "n/a"
    return f"{(value / reference - 1) * 100:+.0f}%"
