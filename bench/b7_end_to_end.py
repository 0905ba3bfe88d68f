"""B7 (end-to-end part): canary rollouts through the real router and two generations of the
example app whose error rate and latency are set per run, against what the analysis alone
predicts on the same traffic (bench/b7_judgement.py is the simulated part).

Starts one laneway server (ports chosen at run time, LANEWAY_HOME in a temporary directory)
with the example app (packages vendored as bench/b1_preview.py does: no network), and
`staging` (kind staging) from branch `base`, whose spec sets `SHOP_ERROR_RATE` (--base-errors,
percent of answers that are 500s) and `SHOP_DELAY_MS` (--base-delay, ms added to every
answer) and a `canary:` section (--steps, --interval, --min-requests, failure_limit 0).
Branches, one commit each on top of the app, each built once:

- **identical**: the same settings (another commit: a new build that behaves the same);
- **errors**: `SHOP_ERROR_RATE` --bad-errors;
- **latency**: `SHOP_DELAY_MS` --slow-delay (every answer slower: the median and the tail).

Under a steady load of fresh clients (--threads threads, --rate requests/s in all, paced,
`GET /api/info`, no cookie kept: every request is a new client, so the share of requests the
canary gets is its weight), each run is `laneway canary start staging --ref CASE --wait
--json`, timed from the command's start to its end; a run still going after --run-timeout
is aborted and counted undecided. After a promoted run, `laneway rollback staging` puts the
base back (its processes are still warm), so every run starts from the same baseline.
Recorded per run: promoted or aborted, the deciding verdict, the time, every verdict's
numbers (requests and failures per side, window), and the router's counts for both sides
(read from `/metrics` before and after).

Then, per case, the same rollouts simulated `--simulated` times: the verdicts of
`laneway.analysis.judge` with the same criteria on Poisson counts at the measured request
rate and the verdicts' mean window, each request drawn from the distributions the router
measured for that case (each side's error rate and latency histogram, pooled over the
case's runs), the rollout walking the steps as core/rollouts.py does (a pass: next step;
a fail: abort; inconclusive: the window goes on) until the same time limit. The table
compares the aborted share (95% Wilson intervals) and the verdicts to a decision.

`--warmup-probe N` then holds the identical build at 5% (no verdict) and forces N requests
onto each side in turn (`X-Laneway-Canary: always` / `never`, 4 per second), printing the
client-side median and p90 per 25: a fresh canary process against the warm stable one.

    python bench/b7_end_to_end.py [--runs identical=8,errors=6,latency=6] [--rate 80]
        [--interval 10] [--steps 5,25,50] [--min-requests 40] [--simulated 2000]

Everything it started (server, router, app processes, databases, roles, files) is stopped
and dropped at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from b1_preview import make_repo  # bench/ is on sys.path when this runs as a script
from b7_judgement import wilson
from prometheus_client.parser import text_string_to_metric_families

from laneway.analysis.criteria import Criteria
from laneway.analysis.judge import judge
from laneway.analysis.percentiles import percentile
from laneway.analysis.types import Outcome
from laneway.core.measurements import LATENCY_BOUNDS, Measurement
from laneway.testing import Server, git, make_server, owned_databases, step

HOST = "staging.shop.localhost"
LOOKS = 12  # what core/canary.py gives a rollout of three judged steps


# -- the app and its branches ---------------------------------------------------------------


def branch(repo: Path, name: str, env: dict[str, str], canary: str) -> None:
    """A branch off main whose spec adds `env` to every service and the `canary:` section."""
    git(repo, "checkout", "-q", "-b", name, "main")
    spec = (repo / "laneway.yaml").read_text()
    extra = "".join(f"\n  {key}: {value!r}" for key, value in env.items())
    if "PYTHONPATH: .deps" not in spec:
        raise SystemExit("the example's laneway.yaml no longer sets PYTHONPATH: .deps")
    spec = spec.replace("PYTHONPATH: .deps", f"PYTHONPATH: .deps{extra}", 1)
    (repo / "laneway.yaml").write_text(spec + canary)
    (repo / "CASE").write_text(f"{name}\n")
    git(repo, "add", "-A", "-f")
    git(repo, "commit", "-q", "-m", name)
    git(repo, "checkout", "-q", "main")


def canary_section(args: argparse.Namespace) -> str:
    steps = ", ".join(s for s in args.steps.split(","))
    return (
        "\ncanary:\n"
        f"  steps: [{steps}]\n"
        f"  interval: {args.interval:g}s\n"
        "  failure_limit: 0\n"
        f"  min_requests: {args.min_requests}\n"
        f"  latency_percentile: {args.percentile:g}\n"
        f"  warmup: {args.warmup}s\n"
    )


def case_env(args: argparse.Namespace) -> dict[str, dict[str, str]]:
    base = {"SHOP_ERROR_RATE": f"{args.base_errors:g}", "SHOP_DELAY_MS": f"{args.base_delay:g}"}
    return {
        "base": base,
        "identical": base,
        "errors": base | {"SHOP_ERROR_RATE": f"{args.bad_errors:g}"},
        "latency": base | {"SHOP_DELAY_MS": f"{args.slow_delay:g}"},
    }


# -- load ----------------------------------------------------------------------------------


class FreshClients:
    """`GET /api/info` through the router, each request from a new client (no cookie kept),
    paced to `rate` requests/s in all over `threads` threads; answers counted by status."""

    def __init__(self, server: Server, rate: float, threads: int) -> None:
        self.url = f"{server.router_url}/api/info"
        self.gap = threads / rate
        self.answers: Counter[int] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self) -> FreshClients:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _run(self) -> None:
        with httpx.Client(headers={"Host": HOST}, timeout=10) as http:
            due = time.monotonic()
            while not self._stop.is_set():
                http.cookies.clear()
                try:
                    code = http.get(self.url).status_code
                except httpx.HTTPError:
                    code = 0
                with self._lock:
                    self.answers[code] += 1
                due += self.gap
                self._stop.wait(max(due - time.monotonic(), 0.0))


# -- one run -------------------------------------------------------------------------------


@dataclass
class Run:
    case: str
    outcome: str  # promoted | aborted | undecided
    seconds: float
    deciding: str
    verdicts: list[dict[str, Any]]
    canary: Measurement
    baseline: Measurement


def router_counts(server: Server) -> dict[str, Measurement]:
    """The router's counts per release label of staging, from `/metrics`."""
    with server.http() as http:
        text = http.get("/metrics").text
    found: dict[str, dict[str, Any]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if labels.get("environment") != "staging":
                continue
            side = found.setdefault(labels["release"], {"statuses": [0] * 5, "le": {}})
            if sample.name == "laneway_router_requests_total":
                side["requests"] = int(sample.value)
            elif sample.name == "laneway_router_errors_total":
                side["errors"] = int(sample.value)
            elif sample.name == "laneway_router_responses_total":
                side["statuses"][int(labels["code_class"][0]) - 1] = int(sample.value)
            elif sample.name == "laneway_router_request_duration_seconds_bucket":
                side["le"][labels["le"]] = int(sample.value)
            elif sample.name == "laneway_router_request_duration_seconds_sum":
                side["latency_sum"] = sample.value
    return {release: _measurement(side) for release, side in found.items()}


def _measurement(side: dict[str, Any]) -> Measurement:
    bounds = [repr(b) for b in LATENCY_BOUNDS] + ["+Inf"]
    cumulative = [side["le"].get(bound, 0) for bound in bounds]
    latency = tuple(b - a for a, b in zip([0, *cumulative[:-1]], cumulative, strict=True))
    return Measurement(
        requests=side.get("requests", 0),
        statuses=tuple(side["statuses"]),
        errors=side.get("errors", 0),
        latency=latency,
        latency_sum=side.get("latency_sum", 0.0),
    )


def canary_status(server: Server) -> dict[str, Any]:
    with server.http() as http:
        response = http.get("/api/v1/apps/shop/environments/staging/canary")
    response.raise_for_status()
    return dict(response.json())


def serving(server: Server) -> str:
    """The label the router counts the stable release under: its processes' generation."""
    shown = server.show("staging")
    assert shown is not None
    return str(shown["serving"])


class Counts:
    """The router's counts of staging read every half second while a rollout runs: an
    aborted canary's counts leave `/metrics` with its route, so the last reading is kept."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.last: dict[str, Measurement] = router_counts(server)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Counts:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self._read()

    def _read(self) -> None:
        for label, counts in router_counts(self.server).items():
            if counts.requests >= self.last.get(label, Measurement()).requests:
                self.last[label] = counts

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self._read()


def one_run(server: Server, repo: Path, case: str, timeout: float) -> Run:
    before = router_counts(server)
    stable = serving(server)
    started = time.monotonic()
    with Counts(server) as counts:
        done = server.cli(
            "canary", "start", "staging", "--ref", case, "--wait", "--json",
            "--timeout", f"{timeout:g}", cwd=repo, check=False, timeout=timeout + 120,
        )  # fmt: skip
        seconds = time.monotonic() - started
    status = canary_status(server)
    outcome = status["phase"] if status["canary"] is None else "undecided"
    if outcome == "undecided":
        mark = server.last_event("staging")
        server.cli("canary", "abort", "staging", "--reason", "bench: time limit", cwd=repo)
        server.wait_for("staging", step("deploy.failed"), what="the abort's end", after=mark)
    elif done.returncode not in (0, 1):
        raise SystemExit(f"canary start exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    verdicts = status["verdicts"]
    release = verdicts[-1]["release"] if verdicts else "?"
    empty = Measurement()
    canary = counts.last.get(release, empty)
    baseline = counts.last.get(stable, empty).minus(before.get(stable, empty)) or empty
    deciding = verdicts[-1]["summary"] if verdicts else status["message"]
    return Run(case, outcome, seconds, deciding, verdicts, canary, baseline)


def back_to_base(server: Server, repo: Path, run: Run) -> None:
    if run.outcome == "promoted":
        server.cli("rollback", "staging", cwd=repo)


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


def warmup_probe(server: Server, repo: Path, count: int) -> None:
    """A fresh canary's latency over its first requests against the warm stable's: the
    identical build at 5% held (interval 1h: no verdict), `count` requests forced onto each
    side (`X-Laneway-Canary: always` / `never`, alternating, 4 per second), then aborted."""
    mark = server.last_event("staging")
    server.cli(
        "canary", "start", "staging", "--ref", "identical", "--steps", "5,50",
        "--interval", "1h", cwd=repo,
    )  # fmt: skip
    server.wait_for("staging", step("rollout", "5% of clients"), what="5% served", after=mark)
    times: dict[str, list[float]] = {"always": [], "never": []}
    with httpx.Client(timeout=10) as http:
        for index in range(2 * count):
            side = "always" if index % 2 == 0 else "never"
            http.cookies.clear()
            started = time.perf_counter()
            http.get(
                f"{server.router_url}/api/info",
                headers={"Host": HOST, "X-Laneway-Canary": side},
            )
            times[side].append((time.perf_counter() - started) * 1e3)
            time.sleep(0.125)
    mark = server.last_event("staging")
    server.cli("canary", "abort", "staging", "--reason", "bench: probe", cwd=repo)
    server.wait_for("staging", step("deploy.failed"), what="the probe's abort", after=mark)
    print("\nwarm-up probe: client-side ms, median / p90, per block of the requests forced")
    for side, name in (("always", "fresh canary"), ("never", "warm stable")):
        values = times[side]
        blocks = [values[i : i + 25] for i in range(0, len(values), 25)]
        print(
            f"  {name:<13}"
            + "  ".join(f"{statistics.median(b):5.1f}/{np.percentile(b, 90):5.1f}" for b in blocks)
        )


def save_runs(path: Path, cases: dict[str, list[Run]]) -> None:
    runs = [
        asdict(run) | {"canary": run.canary.to_json(), "baseline": run.baseline.to_json()}
        for runs in cases.values()
        for run in runs
    ]
    path.write_text(json.dumps(runs, indent=1))


def load_runs(path: Path) -> dict[str, list[Run]]:
    cases: dict[str, list[Run]] = {}
    for data in json.loads(path.read_text()):
        data["canary"] = Measurement.from_json(data["canary"])
        data["baseline"] = Measurement.from_json(data["baseline"])
        cases.setdefault(data["case"], []).append(Run(**data))
    return cases


# -- main ----------------------------------------------------------------------------------


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", default="identical=8,errors=6,latency=6")
    parser.add_argument("--rate", type=float, default=80.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--steps", default="5,25,50")
    parser.add_argument("--min-requests", type=int, default=40)
    parser.add_argument(
        "--percentile", type=float, default=99.0, help="the spec's latency_percentile"
    )
    parser.add_argument("--warmup", type=int, default=0, help="the spec's warmup, whole seconds")
    parser.add_argument("--base-errors", type=float, default=1.0)
    parser.add_argument("--bad-errors", type=float, default=5.0)
    parser.add_argument("--base-delay", type=float, default=10.0)
    parser.add_argument("--slow-delay", type=float, default=14.0)
    parser.add_argument("--run-timeout", type=float, default=120.0)
    parser.add_argument("--simulated", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--warmup-probe", type=int, default=0, help="Requests per side of a warm-up probe."
    )
    parser.add_argument("--save", type=Path, help="Write the runs to this JSON file.")
    parser.add_argument("--replay", type=Path, help="Report on runs saved by --save; no run.")
    return parser.parse_args()


def setup(root: Path, args: argparse.Namespace) -> tuple[Path, Server]:
    repo = make_repo(root, "vendored")
    section = canary_section(args)
    for name, env in case_env(args).items():
        branch(repo, name, env, section)
    server = make_server(root / "lw")
    server.start()
    started = time.monotonic()
    for name in case_env(args):
        server.cli("build", name, cwd=repo, timeout=300)
    server.cli("env", "create", "staging", "--kind", "staging", "--branch", "base", cwd=repo)
    print(f"server, builds and staging ready in {time.monotonic() - started:.0f} s")
    return repo, server


def main() -> None:
    args = parse()
    order = [(c, int(k)) for c, k in (item.split("=") for item in args.runs.split(","))]
    cases: dict[str, list[Run]] = {case: [] for case, _ in order}
    plan = [case for case, count in order for _ in range(count)]
    # interleaved, so that a change in the machine's load falls on every case alike
    plan = [c for i in range(max(k for _, k in order)) for c, k in order if i < k]
    if args.replay is not None:
        report(load_runs(args.replay), args)
        return
    if not plan and not args.warmup_probe:
        raise SystemExit("nothing to do: --runs is empty and there is no --warmup-probe")
    with tempfile.TemporaryDirectory(prefix="b7e2e-") as tmp:
        root = Path(tmp)
        server: Server | None = None
        try:
            repo, server = setup(root, args)
            print(f"{len(plan)} rollouts: {canary_section(args).strip()}; env {case_env(args)}")
            started = time.monotonic()
            with FreshClients(server, args.rate, args.threads) as load:
                for case in plan:
                    run = one_run(server, repo, case, args.run_timeout)
                    cases[case].append(run)
                    print(describe(run), flush=True)
                    back_to_base(server, repo, run)
                elapsed = time.monotonic() - started
                if args.warmup_probe:
                    warmup_probe(server, repo, args.warmup_probe)
            sent = sum(load.answers.values())
            print(
                f"\nload: {sent} requests in {elapsed:.0f} s ({sent / elapsed:.0f}/s), "
                f"answers by status {dict(sorted(load.answers.items()))}"
            )
            if args.save is not None:
                save_runs(args.save, cases)
            report(cases, args)
        finally:
            if server is not None:
                owner = server.owner()
                server.teardown()
                left = owned_databases(owner)
                if left:
                    print(f"left behind: {left}")


if __name__ == "__main__":
    main()
