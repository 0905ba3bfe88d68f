"""Canary rollouts as a user drives them, through the real router under steady load of
fresh clients: a healthy canary walks its steps and becomes the release; one that answers
errors is aborted by itself and takes no client after; a client holding the canary cookie
stays on the canary; `/metrics` parses and counts what was sent."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from laneway.testing import Server, git, poll_until, step

pytestmark = pytest.mark.e2e

HOST = "staging.shop.localhost"
CANARY = """
canary:
  steps: [20, 50]
  interval: 2s
  failure_limit: 0
  min_requests: 200        # a 5% error canary passes a window of 200 by luck 4 in 100,000 times
  latency_percentile: 90   # its tail is judged from 50 requests (a p99's needs 500)
"""


class FreshClients:
    """Requests through the router, each from a new client (no cookie kept), counted by the
    release that answered and by status."""

    def __init__(self, server: Server) -> None:
        self.url = f"{server.router_url}/api/info"
        self.answers: Counter[tuple[str, int]] = Counter()
        self.after_mark: Counter[tuple[str, int]] = Counter()
        self.marked = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> FreshClients:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        with httpx.Client(headers={"Host": HOST}, timeout=10) as http:
            while not self._stop.is_set():
                http.cookies.clear()
                try:
                    response = http.get(self.url)
                except httpx.HTTPError:
                    key = ("?", 0)
                else:
                    release = response.headers.get("x-shop-release", "")
                    if response.status_code == 200:
                        release = str(response.json()["release"])
                    key = (release, response.status_code)
                (self.after_mark if self.marked else self.answers)[key] += 1
                self._stop.wait(0.005)


def branch(repo: Path, tmp_path: Path, name: str, env: str) -> str:
    """A branch off main whose spec adds the canary section and `env` to every service."""
    tree = tmp_path / name
    git(repo, "worktree", "add", "-q", "-b", name, str(tree), "main")
    spec = (
        (tree / "laneway.yaml").read_text().replace("PYTHONPATH: .deps", f"PYTHONPATH: .deps{env}")
    )
    (tree / "laneway.yaml").write_text(spec + CANARY)
    git(tree, "commit", "-q", "-am", name)
    return name


def status(server: Server, repo: Path) -> dict:
    return json.loads(server.cli("canary", "status", "staging", "--json", cwd=repo).stdout)


def test_canaries_promote_when_healthy_and_abort_on_errors(
    server: Server, example_repo: Path, tmp_path: Path
) -> None:
    repo = example_repo
    base = branch(repo, tmp_path, "canary-base", "")
    server.cli("env", "create", "staging", "--kind", "staging", "--branch", base, cwd=repo)
    good = branch(repo, tmp_path, "canary-good", "\n  GREETING: canary")
    bad = branch(repo, tmp_path, "canary-bad", "\n  SHOP_ERROR_RATE: 5")

    with FreshClients(server) as load:
        done = server.cli("canary", "start", "staging", "--ref", good, "--wait", cwd=repo)
        assert "v2 is promoted" in done.stdout, done.stdout + done.stderr
        promoted = status(server, repo)
        assert promoted["phase"] == "promoted" and promoted["stable"] == "v2"
        judged = [(v["step"], v["weight"], v["outcome"]) for v in promoted["verdicts"]]
        assert (1, 20.0, "pass") in judged and (2, 50.0, "pass") in judged, judged

        failed = server.cli(
            "canary", "start", "staging", "--ref", bad, "--wait", "--json", cwd=repo, check=False
        )
        told = failed.stdout + failed.stderr
        assert failed.returncode == 1, told
        assert "v3 was aborted: verdict: " in failed.stderr and "error rate" in failed.stderr
        assert json.loads(failed.stdout)["phase"] == "aborted", "--json: the status alone"
        aborted = status(server, repo)
        assert aborted["phase"] == "aborted" and aborted["stable"] == "v2"
        assert aborted["verdicts"][-1]["outcome"] == "fail"
        load.marked = True
        while sum(load.after_mark.values()) < 100:
            load._stop.wait(0.05)

    assert load.answers[("v1", 200)] and load.answers[("v2", 200)]
    assert not [k for k in load.answers if k[1] not in (200, 500)], load.answers
    assert {release for release, _ in load.after_mark} == {"v2"}, "no client reaches v3 after"

    # a client forced onto a side, and /metrics counting through the same router
    forced = httpx.get(
        f"{server.router_url}/api/info", headers={"Host": HOST, "X-Laneway-Canary": "never"}
    )
    assert forced.json()["release"] == "v2"
    metrics = httpx.get(
        f"{server.url}/metrics", headers={"Authorization": f"Bearer {server.token()}"}
    )
    assert metrics.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(metrics.text)}
    requests = families["laneway_router_requests"]
    served = {s.labels["release"]: s.value for s in requests.samples if s.name.endswith("_total")}
    assert served.get("v2", 0) >= load.answers[("v2", 200)]


def test_a_canary_goes_on_from_its_step_after_kill_9_and_waits_when_data_is_short(
    server: Server, example_repo: Path, tmp_path: Path
) -> None:
    repo = example_repo
    base = branch(repo, tmp_path, "kill-base", "")
    server.cli("env", "create", "staging", "--kind", "staging", "--branch", base, cwd=repo)
    good = branch(repo, tmp_path, "kill-good", "\n  GREETING: canary")
    with FreshClients(server):
        after = server.last_event("staging")
        server.cli("canary", "start", "staging", "--ref", good, cwd=repo)
        server.wait_for("staging", step("rollout", "v2: 20% of clients"), after=after, what="20%")
        server.kill()
        server.start()
        server.wait_for("staging", step("rollout", "v2: 50% of clients"), after=after, what="50%")
        server.kill()
        server.start()
        server.wait_for("staging", step("switched", "v2 is live"), after=after, what="v2 live")
        promoted = status(server, repo)
        judged = [(v["step"], v["outcome"]) for v in promoted["verdicts"]]
        assert (1, "pass") in judged and (2, "pass") in judged, judged

        # a tenth of a percent of a quiet app: inconclusive, and it says for how long
        quiet = branch(repo, tmp_path, "kill-quiet", "\n  GREETING: quiet")
        server.cli(
            "canary",
            "start",
            "staging",
            "--ref",
            quiet,
            "--steps",
            "0.1,100",
            "--min-requests",
            "500",
            cwd=repo,
        )
        waiting = poll_until(
            lambda: (s := status(server, repo))["note"] and s,
            what="a verdict of the 0.1% step",
            timeout=60,
        )
        assert waiting["phase"] == "progressing" and waiting["weight"] == 0.1
        assert waiting["note"].startswith("inconclusive: "), waiting["note"]
        assert (
            "at the current rate" in waiting["note"]
            or "no request has reached it" in (waiting["note"])
        )
        stopped = json.loads(
            server.cli(
                "canary", "abort", "staging", "--reason", "too quiet", "--json", cwd=repo
            ).stdout
        )
        assert stopped["aborted"] == "aborted by admin: too quiet"
