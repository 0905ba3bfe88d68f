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

The live rollouts are in bench/b7_rollouts.py, the simulation and the report in
bench/b7_report.py.

Everything it started (server, router, app processes, databases, roles, files) is stopped
and dropped at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from b1_preview import make_repo  # bench/ is on sys.path when this runs as a script
from b7_report import describe, report
from b7_rollouts import HOST, FreshClients, Run, back_to_base, load_runs, one_run, save_runs

from laneway.testing import Server, git, make_server, owned_databases, step

# -- the app and its branches --------------------------------------------------------------


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


# -- warm-up probe -------------------------------------------------------------------------


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
