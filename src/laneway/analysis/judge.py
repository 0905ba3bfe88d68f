"""A canary's verdict: its measurement against the baseline's over the same window.

Checks, each pass, fail or inconclusive:

- **error rate**: the canary's share of failed requests against the baseline's, Fisher's
  exact test as a mid-p (one-sided: the canary worse);
- **latency**: Mann-Whitney U of the two latency histograms (one-sided), with the
  common-language effect size, and the medians;
- **latency tail**: a rank test of the upper half's spread (`significance.py`), and each
  side's `latency_percentile` (p99 by default). A slower tail with the median unchanged
  barely moves U; this test is made for it;
- **thresholds**, if set: the canary's error rate and percentile against absolute limits,
  by exact binomial tests.

One rule decides each check: *pass* if the canary is not worse by more than the practical
margin (`error_rate_margin`, `latency_margin`, or the threshold); *fail* if it is, and the
test finds it significant at `Criteria.alpha`; *inconclusive* if it is, but not yet
significantly (with the requests an effect of the size seen needs to become significant),
or if either side has fewer than `min_requests`. So too little data is never a pass.

**Repeated looks.** A verdict may use the data accumulated since its step began, and a
rollout makes several verdicts per step over several steps, each of which could raise a
false alarm. The bound chosen is the plainest one that holds whatever the looks' overlap
and timing: Bonferroni, each check at each look tested at `false_alarm_rate / (looks x
checks)`. Alpha-spending (O'Brien-Fleming) or a sequential test would spend it better, but
need the number or the information of the looks planned ahead, which inconclusive waits
and the controller's failure limit make unknown. The strict level costs power, but less
than it seems: with 60 s intervals B7's error case is held back by its 900 requests, not by
this choice, and with 2-minute intervals every B7 goal is met (docs/benchmarks.md, B7, also
gives the false alarms this makes in fact: about 0.7%, under the 1% bound, since
accumulated looks overlap).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from laneway.analysis.checks import (
    error_rate,
    error_rate_limit,
    latency,
    latency_limit,
    latency_tail,
)
from laneway.analysis.criteria import Criteria
from laneway.analysis.types import Check, Needed, Outcome, Verdict
from laneway.core.measurements import Measurement


def judge(canary: Measurement, baseline: Measurement, criteria: Criteria | None = None) -> Verdict:
    """The verdict on `canary` against `baseline` (the same window, or the same windows
    accumulated since the step began)."""
    criteria = criteria or Criteria()
    checks = [
        error_rate(canary, baseline, criteria),
        latency(canary, baseline, criteria),
        latency_tail(canary, baseline, criteria),
    ]
    if criteria.max_error_rate is not None:
        checks.append(error_rate_limit(canary, criteria.max_error_rate, criteria))
    if criteria.max_latency is not None:
        checks.append(latency_limit(canary, criteria.max_latency, criteria))
    return _verdict(tuple(checks), canary, baseline)


def combined(
    verdict: Verdict, checks: Sequence[Check], canary: Measurement, baseline: Measurement
) -> Verdict:
    """`verdict` with more checks (a team's own metrics: `external.py`), by the same rule."""
    if not checks:
        return verdict
    return _verdict((*verdict.checks, *checks), canary, baseline)


def _verdict(checks: tuple[Check, ...], canary: Measurement, baseline: Measurement) -> Verdict:
    outcomes = {check.outcome for check in checks}
    sizes = f"{canary.requests:,} canary and {baseline.requests:,} baseline requests"
    if Outcome.FAIL in outcomes:
        failed = [check.summary for check in checks if check.outcome is Outcome.FAIL]
        return Verdict(Outcome.FAIL, checks, f"fail: {'; '.join(failed)} ({sizes})")
    if Outcome.INCONCLUSIVE in outcomes:
        needed: Needed | None = None
        for check in checks:
            if check.needed is not None:
                needed = check.needed.most(needed)
        waiting = _unique(c.summary for c in checks if c.outcome is Outcome.INCONCLUSIVE)
        more = ""
        if needed is not None:
            more = f"; the next verdict needs {needed.canary:,} more canary"
            more += f" and {needed.baseline:,} more baseline requests" if needed.baseline else ""
            more += " requests" if not needed.baseline else ""
        return Verdict(Outcome.INCONCLUSIVE, checks, f"inconclusive: {waiting}{more}", needed)
    passed = "; ".join(check.summary for check in checks)
    return Verdict(Outcome.PASS, checks, f"pass: {passed} ({sizes})")


def _unique(phrases: Iterable[str]) -> str:
    seen: list[str] = []
    for phrase in phrases:
        if phrase not in seen:
            seen.append(phrase)
    return "; ".join(seen)
