"""The Prometheus query client (controllers/prometheus.py) against a small local HTTP server
answering Prometheus's query API (tests/prometheus_server.py): values per release, no data,
Prometheus's errors, answers of the wrong shape or size, no answer, no server."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.prometheus_server import FakePrometheus, serving

from laneway.analysis.external import Reading
from laneway.analysis.types import Outcome
from laneway.controllers import prometheus
from laneway.core import rollouts
from laneway.core.rollouts import Analysis, Metric, RolloutStatus, Side, Strategy
from laneway.core.types import Desired, Environment, Kind, Phase
from laneway.settings import Settings, load_settings

ERRORS = Metric(
    name="checkout-errors",
    query='sum(rate(http_requests_total{status=~"5..",release="{{release}}",'
    'env="{{environment}}",app="{{app}}"}[{{interval}}]))',
    relative=0.1,
)


@pytest.fixture
def server() -> Iterator[FakePrometheus]:
    with serving(FakePrometheus()) as running:
        yield running


def settings_for(tmp_path: Path, url: str, **more: str) -> Settings:
    return load_settings(
        environ={"LANEWAY_HOME": str(tmp_path), "LANEWAY_PROMETHEUS_URL": url} | more
    )


def read(settings: Settings, expression: str = 'up{release="v2"}') -> Reading:
    async def go() -> Reading:
        async with prometheus.client(settings) as http:
            return await prometheus.query(
                http, expression, 1_700_000_000.0, timeout=settings.prometheus_timeout
            )

    return asyncio.run(go())


def test_a_value_per_release_with_the_time_of_the_judgement(
    server: FakePrometheus, tmp_path: Path
) -> None:
    server.values = {"v2": 0.25, "v1": 0.125}
    settings = settings_for(tmp_path, server.url, LANEWAY_PROMETHEUS_TOKEN="s3cret")
    assert read(settings, 'x{release="v2"}') == Reading(0.25)
    assert read(settings, 'x{release="v1"}') == Reading(0.125)
    assert server.queries[0]["time"] == "1700000000.000"
    assert server.queries[0]["authorization"] == "Bearer s3cret"


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ({"values": {}}, Reading()),
        ({"values": {"v2": "NaN"}}, None),
        ({"values": {"v2": "+Inf"}}, Reading(float("inf"))),
        (
            {"values": {"v2": 1.0}, "series": 3},
            Reading(
                problem="the query answers 3 series, not one: aggregate them (`sum(...)`, `max(...)`)"
            ),
        ),
        (
            {"error": (400, "bad_data", 'parse error: unexpected "}"')},
            Reading(problem='Prometheus refused the query (bad_data): parse error: unexpected "}"'),
        ),
        (
            {"error": (503, "unavailable", "")},
            Reading(problem="Prometheus refused the query (unavailable): no reason given"),
        ),
        (
            {"body": b"<html>proxy error</html>"},
            Reading(problem="Prometheus answered HTTP 200 without JSON"),
        ),
        (
            {"body": b'{"status":"success","data":{"resultType":"matrix","result":[]}}'},
            Reading(
                problem="the query answers a range vector: take `rate(...)` or "
                "`avg_over_time(...)` of it for one number"
            ),
        ),
        (
            {"body": b'{"status":"success","data":{"resultType":"scalar","result":[1,"7.5"]}}'},
            Reading(7.5),
        ),
    ],
)
def test_answers_become_a_value_no_data_or_the_problem(
    server: FakePrometheus, tmp_path: Path, setup: dict[str, object], expected: Reading | None
) -> None:
    for key, value in setup.items():
        setattr(server, key, value)
    reading = read(settings_for(tmp_path, server.url))
    if expected is None:  # NaN
        assert reading.value is not None and reading.value != reading.value
    else:
        assert reading == expected


def test_an_answer_too_large_is_not_read(server: FakePrometheus, tmp_path: Path) -> None:
    server.body = b"[" + b"0," * prometheus.MAX_ANSWER + b"0]"
    reading = read(settings_for(tmp_path, server.url))
    assert reading.problem is not None and "answered more than 1,048,576 bytes" in reading.problem


def test_no_answer_in_time_is_a_problem_named(server: FakePrometheus, tmp_path: Path) -> None:
    server.hold = threading.Event()
    settings = settings_for(tmp_path, server.url, LANEWAY_PROMETHEUS_TIMEOUT="0.2")
    reading = read(settings)
    server.hold.set()
    assert reading.problem == f"Prometheus at {server.url} did not answer within 0.2s"


def test_no_server_is_a_problem_that_shows_no_password(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago, and nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    reading = read(settings_for(tmp_path, f"http://admin:hunter2@127.0.0.1:{port}/prom"))
    assert reading.problem is not None
    assert reading.problem.startswith(
        f"Prometheus at http://127.0.0.1:{port}/prom could not be reached: "
    )
    assert "hunter2" not in reading.problem


def test_the_api_under_a_path(tmp_path: Path) -> None:
    with serving(FakePrometheus(values={"v2": 3.0}, prefix="/prom")) as server:
        assert read(settings_for(tmp_path, server.url + "/")) == Reading(3.0)
        assert server.queries[0]["path"] == "/prom/api/v1/query"


def environment() -> Environment:
    now = datetime.now(UTC)
    return Environment(
        id="e1",
        app="shop",
        name="production",
        kind=Kind.PRODUCTION,
        branch=None,
        ref=None,
        build_id=None,
        commit=None,
        desired=Desired.RUNNING,
        phase=Phase.RUNNING,
        message="",
        hook_release=0,
        failure=None,
        created_at=now,
        updated_at=now,
    )


def canary(*metrics: Metric) -> RolloutStatus:
    return RolloutStatus(
        stable=Side(1, 1),
        canary=Side(2, 2),
        strategy=Strategy(
            steps=(rollouts.SetWeight(500),), analysis=Analysis(interval=60, metrics=metrics)
        ),
    )


def test_each_metric_is_asked_for_both_sides_over_the_window(
    server: FakePrometheus, tmp_path: Path
) -> None:
    server.values = {"v2": 0.5, "v1": 0.2}
    latency = Metric(name="p99", query='q{release="{{release}}"}', absolute=0.5)
    checks = asyncio.run(
        prometheus.metric_checks(
            settings_for(tmp_path, server.url),
            environment(),
            canary(ERRORS, latency),
            1000.0,
            1150.4,
        )
    )
    assert [(c.name, c.outcome) for c in checks] == [
        ("checkout-errors", Outcome.FAIL),
        ("p99", Outcome.PASS),
    ]
    assert checks[0].summary == "checkout-errors 0.5 vs 0.2 (+150.0%): higher by more than 10%"
    errors = 'sum(rate(http_requests_total{status=~"5..",release="%s",env="production",app="shop"}[150s]))'
    assert sorted(q["query"] for q in server.queries) == sorted(
        [errors % "v2", errors % "v1", 'q{release="v2"}', 'q{release="v1"}']
    )


def test_without_a_url_every_metric_is_inconclusive_and_says_why(tmp_path: Path) -> None:
    settings = load_settings(environ={"LANEWAY_HOME": str(tmp_path)})
    checks = asyncio.run(prometheus.metric_checks(settings, environment(), canary(ERRORS), 0, 60))
    assert [(c.outcome, c.summary) for c in checks] == [
        (
            Outcome.INCONCLUSIVE,
            "checkout-errors: no value for v2: LANEWAY_PROMETHEUS_URL is not set on the server",
        )
    ]
