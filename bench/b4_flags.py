"""B4 (in-process part): flag evaluations per second on one core, through `laneway.flags.evaluate`.

Three kinds of flag, as DESIGN.md's B4 asks: a static flag (no targeting), a targeting rule
(`ends_with` on the context's email) and a fractional rollout (10% on, bucketed by the
targeting key). Each is timed through laneway's `evaluate`, and, as a baseline from the same
run, through the reference evaluator laneway builds on (openfeature-flagd-core's `FlagdCore`,
what flagd's Python in-process provider runs). Contexts rotate over 1,000 users, so nothing
is answered from a cache. One more row times a static answer turned into its OFREP body and
JSON, the work an OFREP request adds before HTTP.

Figures are the best of `--repeat` rounds of about `--seconds` each, in evaluations per
second and microseconds per evaluation. `--cpu N` pins the process to core N first.

    python bench/b4_flags.py [--seconds 0.5] [--repeat 5] [--cpu 0]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable

from openfeature.contrib.tools.flagd.core import FlagdCore
from openfeature.evaluation_context import EvaluationContext

from laneway.flags import evaluate, ofrep, parse_flag_set

ON_OFF = {"on": True, "off": False}
DOCUMENT = {
    "flags": {
        "static": {"state": "ENABLED", "variants": ON_OFF, "defaultVariant": "on"},
        "targeting": {
            "state": "ENABLED",
            "variants": ON_OFF,
            "defaultVariant": "off",
            "targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on", None]},
        },
        "fractional": {
            "state": "ENABLED",
            "variants": ON_OFF,
            "defaultVariant": "off",
            "targeting": {"fractional": [["on", 10], ["off", 90]]},
        },
    }
}
USERS = 1_000


def rate(run: Callable[[int], None], *, seconds: float, repeat: int) -> float:
    """Best evaluations per second over `repeat` rounds of about `seconds`."""
    loops = 1
    while True:  # grow a round until it lasts a tenth of the budget, then scale it up to all of it
        started = time.perf_counter()
        run(loops)
        elapsed = time.perf_counter() - started
        if elapsed > seconds / 10:
            break
        loops *= 2
    loops = max(1, int(loops * seconds / elapsed))
    best = 0.0
    for _ in range(repeat):
        started = time.perf_counter()
        run(loops)
        best = max(best, loops / (time.perf_counter() - started))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cpu", type=int, default=None)
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})

    flag_set = parse_flag_set(DOCUMENT)
    core = FlagdCore()
    core.set_flags(json.loads(json.dumps(DOCUMENT)))
    contexts = [
        {
            "targetingKey": f"user-{i}",
            "email": f"user-{i}@{'example.com' if i % 3 else 'elsewhere.org'}",
        }
        for i in range(USERS)
    ]
    sdk_contexts = [EvaluationContext(c["targetingKey"], {"email": c["email"]}) for c in contexts]
    now = time.time()

    def laneway(key: str) -> Callable[[int], None]:
        def run(loops: int) -> None:
            for i in range(loops):
                evaluate(flag_set, key, contexts[i % USERS], now=now)

        return run

    def reference(key: str) -> Callable[[int], None]:
        def run(loops: int) -> None:
            for i in range(loops):
                core.resolve_boolean_value(key, False, sdk_contexts[i % USERS])

        return run

    def ofrep_static(loops: int) -> None:
        for i in range(loops):
            status, body = ofrep.evaluation(
                "static", evaluate(flag_set, "static", contexts[i % USERS], now=now)
            )
            json.dumps(body).encode()

    print(
        f"B4 in-process, one core (pid {os.getpid()}, affinity {sorted(os.sched_getaffinity(0))})"
    )
    print(f"{'flag':<12}{'laneway evaluate':>22}{'reference FlagdCore':>26}{'ratio':>8}")
    for key in ("static", "targeting", "fractional"):
        ours = rate(laneway(key), seconds=args.seconds, repeat=args.repeat)
        theirs = rate(reference(key), seconds=args.seconds, repeat=args.repeat)
        print(
            f"{key:<12}{ours:>12,.0f}/s {1e6 / ours:5.2f} µs"
            f"{theirs:>16,.0f}/s {1e6 / theirs:5.2f} µs{ours / theirs:>8.2f}"
        )
    body = rate(ofrep_static, seconds=args.seconds, repeat=args.repeat)
    print(f"{'static, as an OFREP body + JSON':<34}{body:>10,.0f}/s {1e6 / body:5.2f} µs")


if __name__ == "__main__":
    main()
