"""B7 (end-to-end part), the live rollouts: the load and one canary run against the server.

`FreshClients` keeps a steady, paced load of fresh clients (`GET /api/info` through the
router, no cookie kept) over threads; `one_run` starts one `laneway canary start --wait`,
follows the router's counts per release from `/metrics` while it runs (`Counts`: an aborted
canary's counts leave with its route, so the last reading is kept), aborts a run over its
time limit and returns a `Run`; `back_to_base` rolls a promoted run back; `save_runs` and
`load_runs` write and read runs as JSON for `--save` and `--replay`. Used by
bench/b7_end_to_end.py and bench/b7_report.py.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from laneway.core.measurements import LATENCY_BOUNDS, Measurement
from laneway.testing import Server, step

HOST = "staging.shop.localhost"


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


# -- saved runs ----------------------------------------------------------------------------


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
