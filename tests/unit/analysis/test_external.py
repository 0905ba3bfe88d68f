"""A team's own metric, canary against baseline (analysis/external.py), as tables; and its
checks in the verdict by the rule the router's checks follow (judge.combined)."""

from __future__ import annotations

import json

import pytest

from laneway.analysis.external import Reading, compare
from laneway.analysis.judge import combined, judge
from laneway.analysis.types import Check, Outcome
from laneway.core.rollouts import Metric

from .samples import measurement

NAN = float("nan")
LOWER = {"name": "errors", "query": 'e{release="{{release}}"}'}
HIGHER = {"name": "orders", "query": 'o{release="{{release}}"}', "higher_is_better": True}


def metric(base: dict[str, object], **limits: float) -> Metric:
    return Metric(**base, **limits)  # type: ignore[arg-type]


def check(m: Metric, canary: Reading, baseline: Reading) -> Check:
    return compare(m, canary, baseline, sides=("v8", "v7"))


@pytest.mark.parametrize(
    ("m", "canary", "baseline", "outcome", "summary"),
    [
        # lower is better, a relative margin
        (metric(LOWER, relative=0.1), 1.05, 1.0, Outcome.PASS, "errors 1.05 vs 1 (+5.0%)"),
        (metric(LOWER, relative=0.1), 1.1, 1.0, Outcome.PASS, "errors 1.1 vs 1 (+10.0%)"),
        (
            metric(LOWER, relative=0.1),
            1.2,
            1.0,
            Outcome.FAIL,
            "errors 1.2 vs 1 (+20.0%): higher by more than 10%",
        ),
        (metric(LOWER, relative=0.1), 0.2, 1.0, Outcome.PASS, "errors 0.2 vs 1 (-80.0%)"),
        (
            metric(LOWER, relative=0.1),
            0.001,
            0.0,
            Outcome.FAIL,
            "errors 0.001 vs 0 (+0.001): higher by more than 10%",
        ),
        (metric(LOWER, relative=0.1), 0.0, 0.0, Outcome.PASS, "errors 0 vs 0 (+0)"),
        # lower is better, an absolute margin: a zero baseline is no trap
        (metric(LOWER, absolute=0.01), 0.005, 0.0, Outcome.PASS, "errors 0.005 vs 0 (+0.005)"),
        (
            metric(LOWER, absolute=0.01),
            0.02,
            0.0,
            Outcome.FAIL,
            "errors 0.02 vs 0 (+0.02): higher by more than 0.01",
        ),
        # a bound alone: the baseline is not needed
        (metric(LOWER, limit=0.5), 0.4, None, Outcome.PASS, "errors 0.4 on v8, within 0.5"),
        (metric(LOWER, limit=0.5), 0.6, 0.1, Outcome.FAIL, "errors 0.6 on v8, past its max of 0.5"),
        # a bound fails even when the margin cannot be judged
        (
            metric(LOWER, relative=0.1, limit=0.5),
            0.6,
            None,
            Outcome.FAIL,
            "errors 0.6 on v8, past its max of 0.5",
        ),
        # higher is better
        (metric(HIGHER, relative=0.05), 96.0, 100.0, Outcome.PASS, "orders 96 vs 100 (-4.0%)"),
        (
            metric(HIGHER, relative=0.05),
            90.0,
            100.0,
            Outcome.FAIL,
            "orders 90 vs 100 (-10.0%): lower by more than 5%",
        ),
        (metric(HIGHER, relative=0.05), 150.0, 100.0, Outcome.PASS, "orders 150 vs 100 (+50.0%)"),
        (metric(HIGHER, limit=10), 9.0, 100.0, Outcome.FAIL, "orders 9 on v8, past its min of 10"),
        # what is missing is never a pass
        (
            metric(LOWER, relative=0.1),
            None,
            1.0,
            Outcome.INCONCLUSIVE,
            "errors: Prometheus has no data for v8 (no values found: never a pass)",
        ),
        (
            metric(LOWER, relative=0.1),
            1.0,
            None,
            Outcome.INCONCLUSIVE,
            "errors: Prometheus has no data for v7 (no values found: never a pass)",
        ),
        (
            metric(LOWER, limit=0.5),
            None,
            None,
            Outcome.INCONCLUSIVE,
            "errors: Prometheus has no data for v8 (no values found: never a pass)",
        ),
        (
            metric(LOWER, relative=0.1),
            NAN,
            1.0,
            Outcome.INCONCLUSIVE,
            "errors: the value for v8 is nan (a ratio of no requests?)",
        ),
        (
            metric(LOWER, relative=0.1),
            1.0,
            float("inf"),
            Outcome.INCONCLUSIVE,
            "errors: the value for v7 is inf (a ratio of no requests?)",
        ),
    ],
)
def test_the_canary_against_the_baseline(
    m: Metric,
    canary: float | None,
    baseline: float | None,
    outcome: Outcome,
    summary: str,
) -> None:
    result = check(m, Reading(canary), Reading(baseline))
    assert (result.outcome, result.summary) == (outcome, summary)


def test_a_problem_reading_is_inconclusive_and_named() -> None:
    down = Reading(problem="Prometheus at http://p:9090 could not be reached: refused")
    result = check(metric(LOWER, relative=0.1), down, down)
    assert result.outcome is Outcome.INCONCLUSIVE
    assert result.summary == (
        "errors: no value for v8: Prometheus at http://p:9090 could not be reached: refused"
    )


def test_the_numbers_behind_it() -> None:
    result = check(metric(LOWER, relative=0.1, limit=5.0), Reading(1.2), Reading(1.0))
    assert result.numbers == {
        "canary": 1.2,
        "baseline": 1.0,
        "relative_margin": 0.1,
        "absolute_margin": None,
        "limit": 5.0,
        "allowed": 1.1,
    }


CANARY, BASELINE = measurement(3_000), measurement(30_000)


@pytest.mark.parametrize(
    ("outcomes", "verdict"),
    [
        ((), Outcome.PASS),
        ((Outcome.PASS,), Outcome.PASS),
        ((Outcome.PASS, Outcome.INCONCLUSIVE), Outcome.INCONCLUSIVE),
        ((Outcome.INCONCLUSIVE, Outcome.FAIL), Outcome.FAIL),
    ],
)
def test_external_checks_join_the_verdict_by_the_same_rule(
    outcomes: tuple[Outcome, ...], verdict: Outcome
) -> None:
    router = judge(CANARY, BASELINE)
    assert router.outcome is Outcome.PASS
    extra = [Check(f"m{i}", outcome, f"m{i} {outcome}") for i, outcome in enumerate(outcomes)]
    joined = combined(router, extra, CANARY, BASELINE)
    assert joined.outcome is verdict
    assert [c.name for c in joined.checks] == [c.name for c in router.checks] + [
        c.name for c in extra
    ]
    if verdict is Outcome.FAIL:
        assert joined.summary.startswith("fail: m1 fail (")
    if verdict is Outcome.INCONCLUSIVE:
        assert joined.summary == "inconclusive: m1 inconclusive"
        assert joined.needed_requests is None


def test_a_failing_router_check_is_not_hidden_by_external_passes() -> None:
    router = judge(measurement(3_000, 0.03), BASELINE)
    joined = combined(router, [Check("m", Outcome.PASS, "m fine")], CANARY, BASELINE)
    assert joined.outcome is Outcome.FAIL and "m fine" not in joined.summary


def test_the_numbers_are_json_without_nan_or_infinity() -> None:
    result = check(metric(LOWER, relative=0.1), Reading(NAN), Reading(float("inf")))
    assert json.loads(json.dumps(result.to_json(), allow_nan=False))["numbers"]["canary"] is None
