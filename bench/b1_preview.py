"""B1: a preview environment from an already-built artifact to its first 200 through the router.

Starts a laneway server on ports chosen at run time, builds the example app once, then creates
and destroys a preview from that build N times. For each run it measures the time from the
API request to the first 200 answered through the router, and breaks it down with the
environment's own event timestamps (unpack, database provisioning, release hook, process
start, health). Loopback only; everything it starts is stopped and dropped at the end.

    python bench/b1_preview.py [--runs 15]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx

from laneway.demo import example_source
from laneway.testing import git, make_server, wait_until


def make_repo(root: Path) -> Path:
    repo = root / "shop"
    shutil.copytree(example_source(), repo, ignore=shutil.ignore_patterns("__pycache__", ".deps"))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "shop")
    return repo


def stamp(events: list[dict], kind: str, contains: str = "") -> float | None:
    for event in events:
        if event["type"] == kind and contains in event["message"]:
            return datetime.fromisoformat(event["time"]).timestamp()
    return None


def one_run(http: httpx.Client, router: str, build: str, name: str) -> dict[str, float]:
    t0 = time.time()
    response = http.post(
        "/api/v1/apps/shop/environments", json={"name": name, "kind": "preview", "build": build}
    )
    response.raise_for_status()
    host = {"Host": f"{name}.shop.localhost"}
    with httpx.Client(base_url=router, timeout=5) as probe:
        wait_until(
            lambda: probe.get("/", headers=host).status_code == 200,
            timeout=60,
            interval=0.005,
            what=f"{name} to answer 200",
        )
    t1 = time.time()
    events = http.get(f"/api/v1/apps/shop/environments/{name}/events").json()
    unpacked = stamp(events, "unpacked") or t0
    provisioned = stamp(events, "provisioned") or unpacked
    hooked = stamp(events, "hook", "succeeded") or provisioned
    started = max(filter(None, [stamp(events, "started", "web/"), hooked]))
    http.delete(f"/api/v1/apps/shop/environments/{name}").raise_for_status()
    wait_until(
        lambda: http.get(f"/api/v1/apps/shop/environments/{name}").status_code == 404,
        timeout=60,
        what=f"{name} to be destroyed",
    )
    return {
        "total": t1 - t0,
        "unpack": unpacked - t0,
        "provision": provisioned - unpacked,
        "release hook": hooked - provisioned,
        "process start": started - hooked,
        "health + route": t1 - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="laneway-b1-") as tmp:
        root = Path(tmp)
        repo = make_repo(root)
        server = make_server(root / "home")
        server.start()
        try:
            server.cli("build", "main", cwd=repo, timeout=600)
            build = server.http().get("/api/v1/apps/shop/builds").json()[0]["id"]
            results = []
            with server.http() as http:
                for i in range(args.runs):
                    results.append(one_run(http, server.router_url, build, f"b1-{i}"))
        finally:
            server.teardown()
    print(f"B1: preview from a cached build to its first 200 through the router ({args.runs} runs)")
    print(f"{'step':<16}{'median ms':>11}{'p90 ms':>9}{'min ms':>9}{'max ms':>9}")
    for key in results[0]:
        values = sorted(r[key] * 1000 for r in results)
        p90 = values[min(len(values) - 1, int(round(0.9 * (len(values) - 1))))]
        print(
            f"{key:<16}{statistics.median(values):>11.0f}{p90:>9.0f}{values[0]:>9.0f}{values[-1]:>9.0f}"
        )


if __name__ == "__main__":
    main()
