"""B5: how long the `laneway` command takes, as whole processes.

    python bench/b5_cli_startup.py [--runs 11] [--src LABEL=PATH ...]

Starts a laneway server (its own LANEWAY_HOME, ports chosen at run time) with one app, then
runs each command below --runs times, round robin so that a burst of load on the machine
falls on all of them alike, and prints per command the median, min and max wall time and the
median CPU time (user + system, from the kernel's accounting of the child): on a shared,
loaded machine the CPU time moves far less than the wall time.

- `python -c pass`: the interpreter alone, the floor under every other line;
- `laneway --help`;
- `laneway env list --app bench`: one API request to the running server;
- `laneway env list`: the same in the app's repository, which reads the app's name from its
  laneway.yaml;
- `laneway spec check`: a local command that loads a spec (pydantic, YAML).

`laneway` is the console script installed beside this Python (as `pip install` writes it),
or `python -m laneway.cli` where there is none. With `--src before=/tmp/old/src --src
after=src` each laneway command runs once per source tree (its PYTHONPATH), in the
same round robin, so that two versions are compared side by side. The commands run with
byte code written (PYTHONDONTWRITEBYTECODE unset) and a first run that is not counted, so
modules load from byte code as they do once installed. Everything it started is stopped at
the end.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from laneway.testing import started_with_app

LANEWAY_COMMANDS = {
    "laneway --help": ["--help"],
    "laneway env list --app bench": ["env", "list", "--app", "bench"],
    "laneway env list": ["env", "list"],
    "laneway spec check": ["spec", "check"],
}
SPEC = "app: bench\nservices:\n  web: {command: python3 -m http.server $PORT --bind 127.0.0.1}\n"


def laneway_command() -> list[str]:
    script = Path(sys.executable).parent / "laneway"
    return [str(script)] if script.exists() else [sys.executable, "-m", "laneway.cli"]


def run_once(argv: list[str], *, env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(wall ms, CPU ms) of one run; fails loudly if the command does."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    wall = (time.perf_counter() - start) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {result.returncode}:\n{result.stderr}")
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--src", action="append", default=[], metavar="LABEL=PATH")
    args = parser.parse_args()
    runs = args.runs
    trees = dict(item.split("=", 1) for item in args.src) or {"": os.environ.get("PYTHONPATH", "")}
    laneway = laneway_command()
    with tempfile.TemporaryDirectory() as tmp:
        repo, server = started_with_app(Path(tmp), SPEC)
        try:
            # byte code written and then read, as for an installed package (pip compiles it)
            base = {k: v for k, v in server.env.items() if k != "PYTHONDONTWRITEBYTECODE"}
            commands: dict[str, tuple[list[str], dict[str, str]]] = {
                "python -c pass": ([sys.executable, "-c", "pass"], base)
            }
            for label, tree in trees.items():
                path = ":".join(str(Path(part).resolve()) for part in tree.split(":") if part)
                env = {**base, "PYTHONPATH": path}
                tag = f"{label}: " if label else ""
                for what, args_ in LANEWAY_COMMANDS.items():
                    commands[f"{tag}{what}"] = ([*laneway, *args_], env)
            for argv, env in commands.values():  # warm the page cache; write the byte code
                run_once(argv, env=env, cwd=repo)
            times: dict[str, list[tuple[float, float]]] = {what: [] for what in commands}
            for _ in range(runs):
                for what, (argv, env) in commands.items():
                    times[what].append(run_once(argv, env=env, cwd=repo))
        finally:
            server.teardown()
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'command':40} {'median':>7} {'min':>7} {'max':>7} {'CPU':>7}   (ms, {runs} runs)")
    for what, pairs in times.items():
        wall = [w for w, _ in pairs]
        cpu = statistics.median(c for _, c in pairs)
        print(
            f"{what:40} {statistics.median(wall):7.0f} {min(wall):7.0f} {max(wall):7.0f} {cpu:7.0f}"
        )


if __name__ == "__main__":
    main()
