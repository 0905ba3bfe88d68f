"""A canary judged also by the team's own PromQL metric: the fake runtime, router and clock
of the harness, and a small local server answering Prometheus's query API."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from tests.controllers.test_canary import counts, pools, serve
from tests.prometheus_server import FakePrometheus, serving

from laneway.controllers.harness import Harness
from laneway.core import rollouts
from laneway.core.rollouts import Analysis, Metric, SetWeight, Strategy

ERRORS = Metric(
    name="checkout-errors",
    query='sum(rate(checkout_failed_total{release="{{release}}"}[{{interval}}]))',
    relative=0.1,
)
STRATEGY = Strategy(
    steps=(SetWeight(100), SetWeight(2_500)),
    analysis=Analysis(
        interval=60.0, failure_limit=0, criteria={"min_requests": 100}, metrics=(ERRORS,)
    ),
)


@pytest.fixture
def prometheus(harness: Harness) -> Iterator[FakePrometheus]:
    with serving(FakePrometheus()) as server:
        use(harness, server.url)
        yield server


def use(harness: Harness, url: str) -> None:
    settings = harness.ctx.settings
    harness.ctx.settings = settings.model_copy(update={"prometheus_url": url})


def running_canary(harness: Harness) -> str:
    serve(harness, canary=counts(0), stable=counts(0))
    env = harness.create(build_id=harness.add_build())
    harness.converge(env)
    harness.deploy(env, harness.add_build(files={"v": "2"}), strategy=STRATEGY)
    harness.settle(env, 5)
    status = harness.environment(env).rollout
    assert (status.canary, status.weight, status.served) == (rollouts.Side(2, 2), 100, 100)
    return env


def test_the_metric_fails_a_canary_the_routers_counts_pass(
    harness: Harness, prometheus: FakePrometheus
) -> None:
    env = running_canary(harness)
    prometheus.values = {"v2": 0.5, "v1": 0.2}
    serve(harness, canary=counts(600, 3), stable=counts(60_000, 300))
    harness.settle(env, 61)
    environment = harness.converge(env)
    assert environment is not None and environment.rollout.canary is None
    assert harness.states(env) == {"v1": "live", "v2": "failed"}
    assert pools(harness) == [("v1", 10_000, "stable")]
    verdict = harness.store.verdicts(env)[-1]
    assert verdict.outcome == "fail"
    outcomes = {check["name"]: check["outcome"] for check in verdict.detail["checks"]}
    assert outcomes == {
        "error rate": "pass",
        "latency": "pass",
        "latency tail": "pass",
        "checkout-errors": "fail",
    }
    failed = harness.store.releases(env)[0]
    assert failed.message.startswith(
        "verdict: checkout-errors 0.5 vs 0.2 (+150.0%): higher by more than 10%"
    ), failed.message
    asked = {q["query"] for q in prometheus.queries}
    assert 'sum(rate(checkout_failed_total{release="v2"}[60s]))' in asked
    assert 'sum(rate(checkout_failed_total{release="v1"}[60s]))' in asked


def test_no_data_in_prometheus_keeps_it_inconclusive_until_there_is(
    harness: Harness, prometheus: FakePrometheus
) -> None:
    env = running_canary(harness)
    prometheus.values = {"v1": 0.2}
    serve(harness, canary=counts(600, 3), stable=counts(60_000, 300))
    harness.settle(env, 61)
    status = harness.environment(env).rollout
    assert (status.step_index, status.weight, status.aborted) == (0, 100, None)
    assert status.note == (
        "inconclusive: checkout-errors: Prometheus has no data for v2 "
        "(no values found: never a pass)"
    )
    prometheus.values = {"v2": 0.21, "v1": 0.2}
    harness.settle(env, 61)
    status = harness.environment(env).rollout
    assert (status.step_index, status.weight) == (1, 2_500)
    assert [v.outcome for v in harness.store.verdicts(env)] == ["inconclusive", "pass"]


def test_an_unreachable_prometheus_keeps_it_inconclusive_and_says_so(harness: Harness) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago, and nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    use(harness, f"http://127.0.0.1:{port}")
    env = running_canary(harness)
    serve(harness, canary=counts(600, 3), stable=counts(60_000, 300))
    harness.settle(env, 61)
    status = harness.environment(env).rollout
    assert (status.step_index, status.aborted) == (0, None)
    assert status.note is not None
    assert status.note.startswith(
        f"inconclusive: checkout-errors: no value for v2: Prometheus at http://127.0.0.1:{port} "
        "could not be reached: "
    ), status.note
