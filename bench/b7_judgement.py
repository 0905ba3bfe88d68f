"""B7 (simulated part): how well `laneway.analysis.judge` tells a regressed canary from a
healthy one, on synthetic traffic counted exactly as the router counts it.

Traffic: 100 requests/s in all (Poisson counts per interval), the canary's share at its
step's weight; `--interval` seconds per verdict (60 by default; the spec's default should be
120, docs/analysis.md). The baseline fails 1% of requests; its latency is lognormal with a
median of `--median` (50 ms) and a log-sd of `--sigma` (0.5: p90 95 ms, p99 160 ms). Each latency is drawn, then put in
the histogram bucket `measurements.latency_bucket` would pick (checked on the first draws).

Cases, `--rollouts` simulated rollouts each (1,000 by default):

- **errors**: the canary fails 3% (2 points more), at 5% weight;
- **tail**: the canary's p99 is 30% slower with its median unchanged, at 5% weight: every
  quantile below the median as the baseline's, those above stretched (the log-latency's upper
  half scaled so that p99 is 1.3 times the baseline's: p90 +16%, p95 +20%, p99.9 +42%);
- **shift** (not a goal of B7's): every latency 30% slower, at 5% weight;
- **identical**: canary and baseline the same, over a whole rollout.

A regression case is caught if any of the first 3 verdicts at 5% fails (each verdict on the
data accumulated since the step began). A rollout of identical builds runs steps of 1, 5,
25 and 50%: each step has a verdict per interval and ends at its third interval or after,
at the first verdict that is not inconclusive, at the latest at its tenth interval; any
failed verdict is a false alarm. Rates come with 95% Wilson intervals.

    python bench/b7_judgement.py [--rollouts 1000] [--interval 60] [--seed 7] [--sigma 0.5]
        [--median 0.05] [--cases errors,tail,shift,identical]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from laneway.analysis.criteria import Criteria
from laneway.analysis.judge import judge
from laneway.analysis.types import Outcome
from laneway.core.measurements import LATENCY_BOUNDS, Measurement, latency_bucket

BOUNDS = np.array(LATENCY_BOUNDS)
Z99 = 2.3263478740408408
RATE = 100.0
STEPS = (0.01, 0.05, 0.25, 0.50)


@dataclass(frozen=True)
class Side:
    error_rate: float
    median: float
    sigma: float
    upper_sigma: float

    def draw(self, rng: np.random.Generator, n: int) -> Measurement:
        z = rng.standard_normal(n)
        seconds = self.median * np.exp(np.where(z > 0, self.upper_sigma, self.sigma) * z)
        buckets = np.searchsorted(BOUNDS, seconds, side="left")
        failed = int(rng.binomial(n, self.error_rate))
        return Measurement(
            requests=n,
            statuses=(0, n - failed, 0, 0, failed),
            latency=tuple(int(c) for c in np.bincount(buckets, minlength=len(BOUNDS) + 1)),
            latency_sum=float(seconds.sum()),
        )


def check_buckets(rng: np.random.Generator, side: Side) -> None:
    """The vectorized bucketing agrees with the router's `latency_bucket`."""
    seconds = side.median * np.exp(side.sigma * rng.standard_normal(20_000) * 3)
    ours = np.searchsorted(BOUNDS, seconds, side="left")
    theirs = [latency_bucket(float(s)) for s in seconds]
    if list(ours) != theirs:
        raise SystemExit("bucketing differs from measurements.latency_bucket")


def step_verdicts(
    rng: np.random.Generator,
    canary: Side,
    baseline: Side,
    weight: float,
    interval: float,
    intervals: int,
    criteria: Criteria,
) -> list[Outcome]:
    """The verdicts of `intervals` intervals of one step, on the data accumulated since it began."""
    c, b = Measurement(), Measurement()
    outcomes = []
    for _ in range(intervals):
        c = c.plus(canary.draw(rng, int(rng.poisson(RATE * weight * interval))))
        b = b.plus(baseline.draw(rng, int(rng.poisson(RATE * (1 - weight) * interval))))
        outcomes.append(judge(c, b, criteria).outcome)
    return outcomes


def caught(
    rng: np.random.Generator, canary: Side, baseline: Side, args: argparse.Namespace, c: Criteria
) -> int:
    """The interval (1-3) of the first failed verdict at 5%; 0 if none failed."""
    outcomes = step_verdicts(rng, canary, baseline, 0.05, args.interval, 3, c)
    return outcomes.index(Outcome.FAIL) + 1 if Outcome.FAIL in outcomes else 0


def false_alarm(
    rng: np.random.Generator, canary: Side, baseline: Side, args: argparse.Namespace, c: Criteria
) -> int:
    """The step (1-4) of the first failed verdict of a rollout; 0 if none failed."""
    for step, weight in enumerate(STEPS, 1):
        outcomes = step_verdicts(rng, canary, baseline, weight, args.interval, 10, c)
        for index, outcome in enumerate(outcomes):
            if outcome is Outcome.FAIL:
                return step
            if index >= 2 and outcome is Outcome.PASS:
                break
    return 0


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    share = hits / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(centre - half, 0.0), min(centre + half, 1.0)


def timing(baseline: Side) -> None:
    rng = np.random.default_rng(1)
    c, b = baseline.draw(rng, 100_000), baseline.draw(rng, 100_000)
    started = time.perf_counter()
    judge(c, b)
    first = time.perf_counter() - started
    rounds = 200
    started = time.perf_counter()
    for _ in range(rounds):
        judge(c, b)
    each = (time.perf_counter() - started) / rounds
    print(
        f"one judgement, 100k requests per side: {each * 1e3:.2f} ms"
        f" (the first, which imports scipy.stats: {first * 1e3:.0f} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rollouts", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=60.0)
    parser.add_argument("--median", type=float, default=0.050)
    parser.add_argument("--sigma", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cases", default="errors,tail,shift,identical")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    criteria = Criteria()
    s = args.sigma
    baseline = Side(0.01, args.median, s, s)
    check_buckets(rng, baseline)
    timing(baseline)
    cases: list[tuple[str, Side, Callable[..., int], str]] = [
        ("errors", Side(0.03, args.median, s, s), caught, ">= 95%"),
        (
            "tail",
            Side(0.01, args.median, s, s + math.log(1.3) / Z99),
            caught,
            ">= 95%",
        ),
        ("shift", Side(0.01, args.median * 1.3, s, s), caught, "-"),
        ("identical", baseline, false_alarm, "<= 1%"),
    ]
    print(
        f"{args.rollouts} rollouts per case, interval {args.interval:g} s, latency median"
        f" {args.median * 1e3:g} ms sigma {s:g}, alpha per check and look {criteria.alpha:.2g}"
    )
    print(f"{'case':<24} {'failed':>7} {'share':>7}  {'95% interval':<15} {'goal':<7} when")
    labels = {
        "errors": "errors 1% -> 3%",
        "tail": "p99 +30%, median same",
        "shift": "all latency +30%",
        "identical": "identical builds",
    }
    chosen = args.cases.split(",")
    for name, canary, run, goal in cases:
        if name not in chosen:
            continue
        label = labels[name]
        started = time.perf_counter()
        when = [run(rng, canary, baseline, args, criteria) for _ in range(args.rollouts)]
        hits = sum(1 for w in when if w)
        low, high = wilson(hits, args.rollouts)
        unit = "step" if run is false_alarm else "interval"
        spread = ", ".join(f"{unit} {k}: {when.count(k)}" for k in sorted(set(when) - {0}))
        print(
            f"{label:<24} {hits:>7} {hits / args.rollouts:>7.1%}  {low:>5.1%} - {high:<6.1%}"
            f"  {goal:<7} {spread} ({time.perf_counter() - started:.0f} s)"
        )


if __name__ == "__main__":
    main()
