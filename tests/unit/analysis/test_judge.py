"""Verdicts on deterministic samples: canary against baseline."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from laneway.analysis.criteria import Criteria
from laneway.analysis.judge import judge
from laneway.analysis.types import Needed, Outcome, Verdict
from laneway.core.measurements import Measurement

from .samples import lognormal, measurement, tail_stretched

BASELINE = measurement(30_000)


def outcomes(verdict: Verdict) -> dict[str, Outcome]:
    return {check.name: check.outcome for check in verdict.checks}


@pytest.mark.parametrize(
    ("canary", "criteria", "outcome", "deciding"),
    [
        (measurement(3_000), Criteria(), Outcome.PASS, set()),
        (measurement(3_000, 0.03), Criteria(), Outcome.FAIL, {"error rate"}),
        (measurement(3_000, 0.012), Criteria(), Outcome.PASS, set()),
        (
            measurement(3_000, quantile=lognormal(0.065)),
            Criteria(),
            Outcome.FAIL,
            {"latency", "latency tail"},
        ),
        (
            measurement(3_000, quantile=tail_stretched(1.3)),
            Criteria(),
            Outcome.FAIL,
            {"latency tail"},
        ),
        (measurement(3_000, quantile=tail_stretched(1.05)), Criteria(), Outcome.PASS, set()),
        (
            measurement(3_000, 0.07),
            Criteria(max_error_rate=0.05, error_rate_margin=0.1),
            Outcome.FAIL,
            {"error rate limit"},
        ),
        (
            measurement(3_000, 0.04),
            Criteria(max_error_rate=0.05, error_rate_margin=0.1),
            Outcome.PASS,
            set(),
        ),
        (
            measurement(3_000),
            Criteria(max_latency=0.1, latency_margin=1),
            Outcome.FAIL,
            {"latency limit"},
        ),
        (measurement(3_000), Criteria(max_latency=0.5), Outcome.PASS, set()),
    ],
)
def test_verdicts(
    canary: Measurement, criteria: Criteria, outcome: Outcome, deciding: set[str]
) -> None:
    verdict = judge(canary, BASELINE, criteria)
    assert verdict.outcome is outcome, verdict.summary
    failed = {name for name, result in outcomes(verdict).items() if result is Outcome.FAIL}
    assert failed == deciding
    assert verdict.summary.startswith(f"{outcome}: ")
    assert "\n" not in verdict.summary
    assert verdict.needed_requests is None


def test_a_tail_regression_leaves_the_rank_test_of_the_whole_quiet() -> None:
    verdict = judge(measurement(3_000, quantile=tail_stretched(1.3)), BASELINE)
    latency = next(check for check in verdict.checks if check.name == "latency")
    tail = next(check for check in verdict.checks if check.name == "latency tail")
    assert latency.outcome is Outcome.PASS
    assert latency.numbers["cles"] is not None and latency.numbers["cles"] < 0.53
    assert tail.outcome is Outcome.FAIL
    assert "p99" in tail.summary


def test_too_few_requests_are_inconclusive_and_say_how_many_more() -> None:
    verdict = judge(measurement(120, 0.03), BASELINE)
    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert verdict.needed_requests == Needed(canary=380, baseline=0), "p99's tail needs 500"
    assert "380 more canary requests" in verdict.summary
    verdict = judge(measurement(500), measurement(150), Criteria(min_requests=200))
    assert verdict.needed_requests == Needed(canary=0, baseline=350)
    p90 = Criteria(min_requests=200, latency_percentile=90.0)
    assert judge(measurement(120, 0.03), BASELINE, p90).needed_requests == Needed(80, 0)


def test_the_tail_is_judged_only_with_five_requests_expected_past_its_percentile() -> None:
    """A slow spell of one process (not independent requests) is 2-4% of a window of 50:
    B7's end-to-end runs failed identical builds on it, so a p99 waits for 500."""
    short = judge(measurement(499, quantile=tail_stretched(1.3)), BASELINE)
    tail = next(check for check in short.checks if check.name == "latency tail")
    assert tail.outcome is Outcome.INCONCLUSIVE and tail.needed == Needed(1, 0)


def test_nothing_measured_is_inconclusive() -> None:
    verdict = judge(Measurement(), Measurement())
    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert verdict.needed_requests == Needed(canary=500, baseline=500)
    assert {check.outcome for check in verdict.checks} == {Outcome.INCONCLUSIVE}


def test_failures_without_latencies_fail_on_errors_and_wait_on_latency() -> None:
    only_errors = Measurement(requests=1_000, errors=1_000)
    verdict = judge(only_errors, BASELINE)
    assert verdict.outcome is Outcome.FAIL
    assert outcomes(verdict)["error rate"] is Outcome.FAIL
    assert outcomes(verdict)["latency"] is Outcome.INCONCLUSIVE


def test_worse_but_not_yet_significant_waits_for_more() -> None:
    verdict = judge(measurement(300, 0.03), measurement(5_700))
    assert verdict.outcome is Outcome.INCONCLUSIVE, verdict.summary
    assert "not yet significantly" in verdict.summary
    needed = verdict.needed_requests
    assert needed is not None and 0 < needed.canary <= 8 * 300
    more = judge(measurement(300 + needed.canary, 0.03), measurement(5_700 + needed.baseline))
    assert more.outcome is Outcome.FAIL, more.summary


def test_identical_zero_error_builds_pass() -> None:
    canary, baseline = measurement(1_000, 0.0), measurement(10_000, 0.0)
    assert judge(canary, baseline).outcome is Outcome.PASS


def test_a_verdict_is_json() -> None:
    verdict = judge(measurement(3_000, 0.03), BASELINE)
    data = json.loads(json.dumps(verdict.to_json()))
    assert data["outcome"] == "fail"
    assert [check["name"] for check in data["checks"]] == ["error rate", "latency", "latency tail"]
    assert data["checks"][0]["numbers"]["canary_failed"] == 90


def test_importing_the_analysis_does_not_import_scipy() -> None:
    code = (
        "import sys, laneway.analysis, laneway.analysis.judge, laneway.analysis.criteria;"
        "assert 'scipy' not in sys.modules, 'scipy imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_slower_fast_app_within_the_floor_is_no_regression() -> None:
    """25% slower at a 1 ms median is a quarter of a millisecond: under the 2 ms floor, it
    passes; the same 25% at 50 ms fails, and with no floor the 1 ms one fails too."""
    fast = measurement(20_000, quantile=lognormal(median=0.001))
    slower = measurement(5_000, quantile=lognormal(median=0.00125))
    assert outcomes(judge(slower, fast))["latency"] is Outcome.PASS
    no_floor = Criteria(latency_floor=0.0)
    assert outcomes(judge(slower, fast, no_floor))["latency"] is Outcome.FAIL
    at_50 = measurement(5_000, quantile=lognormal(median=0.0625))
    assert outcomes(judge(at_50, measurement(20_000)))["latency"] is Outcome.FAIL
