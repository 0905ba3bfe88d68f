"""B7 (end-to-end part), the report: the measured rollouts beside simulated ones.

Per case, the rollouts are simulated `--simulated` times: `laneway.analysis.judge` with the
runs' criteria on Poisson counts at the request rates and windows the runs had, each request
drawn from a side's measured error rate and latency histogram (`Observed`), the rollout
walking its steps as core/rollouts.py does (`simulate_rollout`) up to the same time limit;
once with the canary as the run set it (`as_set`: the baseline's requests with the case's
error rate and added delay, `shifted`) and once as the router measured it. `report` prints the
aborted shares with 95% Wilson intervals, the time and the verdicts to a decision; `describe`
is one run's line. Used by bench/b7_end_to_end.py.
"""

from __future__ import annotations

import argparse
import math
import statistics
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from b7_judgement import wilson  # bench/ is on sys.path when this runs as a script
from b7_rollouts import Run

from laneway.analysis.criteria import Criteria
from laneway.analysis.judge import judge
from laneway.analysis.percentiles import percentile
from laneway.analysis.types import Outcome
from laneway.core.measurements import LATENCY_BOUNDS, Measurement

LOOKS = 12  # what core/canary.py gives a rollout of three judged steps


# -- the simulation ------------------------------------------------------------------------


@dataclass(frozen=True)
class Observed:
    """One side's requests as the router measured them over a case's runs."""

    error_rate: float
    latency: np.ndarray  # each bucket's share

    @classmethod
    def of(cls, m: Measurement) -> Observed:
        counts = np.array(m.latency, dtype=float)
        return cls(m.failed / max(m.requests, 1), counts / max(counts.sum(), 1.0))

    def draw(self, rng: np.random.Generator, n: int) -> Measurement:
        failed = int(rng.binomial(n, self.error_rate))
        latency = tuple(int(c) for c in rng.multinomial(n, self.latency))
        return Measurement(requests=n, statuses=(0, n - failed, 0, 0, failed), latency=latency)


@dataclass
class Simulated:
    aborted: int = 0
    promoted: int = 0
    undecided: int = 0
    verdicts: list[int] = field(default_factory=list)


def simulate_rollout(
    rng: np.random.Generator,
    canary: Observed,
    baseline: Observed,
    rates: dict[float, tuple[float, float]],
    window: float,
    looks_left: int,
    criteria: Criteria,
) -> tuple[str, int]:
    """One rollout as core/rollouts.py walks it (failure_limit 0); its end and verdicts."""
    made = 0
    for canary_rate, baseline_rate in rates.values():
        c, b = Measurement(), Measurement()
        while True:
            if made >= looks_left:
                return "undecided", made
            c = c.plus(canary.draw(rng, int(rng.poisson(canary_rate * window))))
            b = b.plus(baseline.draw(rng, int(rng.poisson(baseline_rate * window))))
            outcome = judge(c, b, criteria).outcome
            made += 1
            if outcome is Outcome.FAIL:
                return "aborted", made
            if outcome is Outcome.PASS:
                break
    return "promoted", made


def simulate(
    canary: Observed,
    baseline: Observed,
    runs: list[Run],
    args: argparse.Namespace,
    rng: np.random.Generator,
) -> Simulated:
    """The case's rollouts simulated: `canary` against `baseline` at the request rates and
    windows its runs had, with their criteria and time limit."""
    rates, windows = _rates(runs, args)
    window = statistics.mean(windows) if windows else args.interval
    looks_left = max(int(args.run_timeout // window), 1)
    criteria = Criteria(
        min_requests=args.min_requests, looks=LOOKS, latency_percentile=args.percentile
    )
    result = Simulated()
    for _ in range(args.simulated):
        end, made = simulate_rollout(rng, canary, baseline, rates, window, looks_left, criteria)
        setattr(result, end, getattr(result, end) + 1)
        if end != "undecided":
            result.verdicts.append(made)
    return result


def as_set(case: str, baseline: Observed, args: argparse.Namespace) -> Observed:
    """The canary as the run set it: the baseline's measured requests, with the case's error
    rate, and every latency later by the added delay."""
    rate = (args.bad_errors if case == "errors" else args.base_errors) / 100
    delay = (args.slow_delay - args.base_delay) / 1000 if case == "latency" else 0.0
    return Observed(rate, shifted(baseline.latency, delay) if delay else baseline.latency)


def shifted(shares: np.ndarray, seconds: float) -> np.ndarray:
    """A histogram's shares with every request `seconds` later: each bucket's requests
    spread evenly in the logarithm over it (as `percentiles` reads them), then moved."""
    lowers = np.array([LATENCY_BOUNDS[0] / 2, *LATENCY_BOUNDS])
    uppers = np.array([*LATENCY_BOUNDS, LATENCY_BOUNDS[-1] * 1.2])
    spots = np.linspace(0.025, 0.975, 20)
    moved = np.zeros_like(shares)
    for index, share in enumerate(shares):
        if share == 0:
            continue
        points = lowers[index] * (uppers[index] / lowers[index]) ** spots + seconds
        for bucket in np.searchsorted(np.array(LATENCY_BOUNDS), points, side="left"):
            moved[bucket] += share / len(points)
    return moved


def _pooled(sides: Any) -> Measurement:
    total = Measurement()
    for side in sides:
        total = total.plus(side)
    return total


def _rates(
    runs: list[Run], args: argparse.Namespace
) -> tuple[dict[float, tuple[float, float]], list[float]]:
    """Each step's request rates per side (requests/s over the verdicts' windows), measured;
    a step no verdict reached gets the total rate split by its weight."""
    seen: dict[float, list[tuple[float, float]]] = {}
    windows = []
    total = []
    for run in runs:
        for verdict in run.verdicts:
            d = verdict["detail"]
            seen.setdefault(verdict["weight"], []).append(
                (d["canary"]["rate"], d["baseline"]["rate"])
            )
            total.append(d["canary"]["rate"] + d["baseline"]["rate"])
            windows.append(_interval_of(verdict, run))
    rate = statistics.median(total) if total else args.rate
    rates = {}
    for weight in (float(s) for s in args.steps.split(",")):
        got = seen.get(weight)
        if got:
            rates[weight] = (statistics.mean(c for c, _ in got), statistics.mean(b for _, b in got))
        else:
            rates[weight] = (rate * weight / 100, rate * (1 - weight / 100))
    return rates, windows


def _interval_of(verdict: dict[str, Any], run: Run) -> float:
    """The time one verdict added to its window: the window's length less the previous
    verdict's at the same step (the windows accumulate)."""
    same = [v for v in run.verdicts if v["step"] == verdict["step"] and v["time"] < verdict["time"]]
    earlier = max((v["detail"]["window_seconds"] for v in same), default=0.0)
    return float(verdict["detail"]["window_seconds"]) - float(earlier)


# -- report --------------------------------------------------------------------------------


def describe(run: Run) -> str:
    trail = " ".join(
        f"{v['weight']:g}%:{v['outcome'][0]}"
        f"({v['detail']['canary']['requests']}/{v['detail']['canary']['failed']}"
        f" vs {v['detail']['baseline']['requests']}/{v['detail']['baseline']['failed']})"
        for v in run.verdicts
    )
    return f"{run.case:<10} {run.outcome:<9} {run.seconds:6.1f}s  {trail}\n{'':>29}{run.deciding}"


def side_summary(name: str, m: Measurement) -> str:
    if not m.requests:
        return f"{name}: no requests"
    p50, p99 = percentile(m.latency, 50) or 0.0, percentile(m.latency, 99) or 0.0
    return (
        f"{name}: {m.requests} requests, {m.failed / m.requests:.2%} failed, "
        f"p50 {p50 * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms"
    )


def report(cases: dict[str, list[Run]], args: argparse.Namespace) -> None:
    rng = np.random.default_rng(args.seed)
    print(
        f"\n{'case':<10} {'runs':>4} {'abort':>5} {'prom.':>5} {'undec':>5} "
        f"{'e2e aborted (95%)':<18} {'sim, as set':<20} {'sim, as measured':<20} "
        f"{'time p50':>8} {'verdicts e2e/set/meas.':>22}"
    )
    notes = []
    for case, runs in cases.items():
        if not runs:
            continue
        n = len(runs)
        aborted = sum(r.outcome == "aborted" for r in runs)
        promoted = sum(r.outcome == "promoted" for r in runs)
        low, high = wilson(aborted, n)
        canary = _pooled(r.canary for r in runs)
        baseline = _pooled(r.baseline for r in runs)
        measured = Observed.of(baseline)
        sims = [
            simulate(as_set(case, measured, args), measured, runs, args, rng),
            simulate(Observed.of(canary), measured, runs, args, rng),
        ]
        columns = []
        for sim, how in zip(sims, ("as set", "as measured"), strict=True):
            s_low, s_high = wilson(sim.aborted, args.simulated)
            columns.append(f"{sim.aborted / args.simulated:>5.1%} ({s_low:.1%}-{s_high:.1%})")
            if sim.undecided:
                notes.append(f"{case}, sim {how}: {sim.undecided} rollouts undecided")
        looks = [
            statistics.median(len(r.verdicts) for r in runs),
            *(statistics.median(sim.verdicts) if sim.verdicts else math.nan for sim in sims),
        ]
        print(
            f"{case:<10} {n:>4} {aborted:>5} {promoted:>5} {n - aborted - promoted:>5} "
            f"{aborted / n:>4.0%} ({low:.0%}-{high:.0%})    {columns[0]:<20} {columns[1]:<20} "
            f"{statistics.median(r.seconds for r in runs):>7.1f}s "
            f"{' / '.join(f'{x:g}' for x in looks):>22}"
        )
        print("   " + side_summary("canary", canary))
        print("   " + side_summary("baseline", baseline))
    for note in notes:
        print(note)
