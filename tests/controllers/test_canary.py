"""Canary rollouts on the fake runtime, the fake router and a fake clock: steps, verdicts from
the router's counters, waiting when data is short, abort on a regression."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import httpx
import pytest

from laneway.controllers.harness import Harness
from laneway.core import rollouts, signing
from laneway.core.config import ConfigEntry
from laneway.core.measurements import LATENCY_BOUNDS, Measurement, latency_bucket
from laneway.core.rollouts import Analysis, SetWeight, Strategy
from laneway.store.audit import AuditLog

STRATEGY = Strategy(
    steps=(SetWeight(100), SetWeight(2_500)),
    analysis=Analysis(interval=60.0, failure_limit=0, criteria={"min_requests": 100}),
)


def counts(requests: int, failed: int = 0) -> Measurement:
    """`requests` answered, `failed` of them with a 5xx, all in about 50 ms."""
    latency = [0] * (len(LATENCY_BOUNDS) + 1)
    latency[latency_bucket(0.05)] = requests
    return Measurement(
        requests=requests, statuses=(0, requests - failed, 0, 0, failed), latency=tuple(latency)
    )


def running_canary(harness: Harness) -> str:
    env = harness.create(build_id=harness.add_build())
    harness.converge(env)
    harness.deploy(env, harness.add_build(files={"v": "2"}), strategy=STRATEGY)
    harness.settle(env, 5)
    status = harness.environment(env).rollout
    assert (status.canary, status.weight, status.served) == (rollouts.Side(2, 2), 100, 100)
    return env


def host(harness: Harness) -> str:
    return f"staging.shop.{harness.ctx.settings.domain}"


def serve(harness: Harness, *, canary: Measurement, stable: Measurement) -> None:
    harness.driver.counters = {(host(harness), "v2"): canary, (host(harness), "v1"): stable}


def pools(harness: Harness) -> list[tuple[str, int, str]]:
    assert harness.driver.table is not None
    route = harness.driver.table.match(host(harness))
    assert route is not None
    return [(p.release, p.weight, p.role) for p in route.pools]


def test_a_healthy_canary_walks_its_steps_on_verdicts_and_becomes_the_release(
    harness: Harness,
) -> None:
    serve(harness, canary=counts(0), stable=counts(0))
    env = running_canary(harness)
    assert pools(harness) == [("v2", 100, "canary"), ("v1", 9_900, "stable")]
    assert harness.events(env, "rollout")[-1] == "v2: 1% of clients (step 1 of 3)"
    serve(harness, canary=counts(600, 3), stable=counts(60_000, 300))
    harness.settle(env, 61)
    status = harness.environment(env).rollout
    assert (status.step_index, status.weight) == (1, 2_500)
    verdicts = harness.store.verdicts(env)
    assert [(v.step, v.weight, v.outcome) for v in verdicts] == [(1, 100, "pass")]
    assert verdicts[0].detail["canary"]["requests"] == 600
    assert pools(harness) == [("v2", 2_500, "canary"), ("v1", 7_500, "stable")]
    serve(harness, canary=counts(20_600, 103), stable=counts(120_000, 600))
    harness.settle(env, 61)
    environment = harness.converge(env)
    assert environment is not None and environment.live == 2
    assert harness.states(env) == {"v1": "superseded", "v2": "live"}
    assert pools(harness) == [("v2", 10_000, "stable")]
    assert rollouts.phase(environment.rollout)[0] is rollouts.RolloutPhase.PROMOTED


def test_a_canary_with_more_errors_is_aborted_and_takes_no_more_clients(harness: Harness) -> None:
    serve(harness, canary=counts(0), stable=counts(0))
    env = running_canary(harness)
    serve(harness, canary=counts(1_000, 50), stable=counts(100_000, 1_000))
    harness.settle(env, 61)
    environment = harness.converge(env)
    assert environment is not None
    assert (environment.live, environment.release, environment.rollout.canary) == (1, 1, None)
    assert harness.states(env) == {"v1": "live", "v2": "failed"}
    assert pools(harness) == [("v1", 10_000, "stable")]
    assert harness.alive(env, generation=2) == []
    failed = harness.store.releases(env)[0]
    assert failed.message.startswith("verdict: error rate"), failed.message
    assert harness.store.verdicts(env)[-1].outcome == "fail"
    assert rollouts.phase(environment.rollout)[0] is rollouts.RolloutPhase.ABORTED


def test_what_the_controller_changes_by_itself_is_in_the_audit_log(harness: Harness) -> None:
    harness.ctx.audit = AuditLog(harness.store.engine, b"k" * 32)
    serve(harness, canary=counts(0), stable=counts(0))
    env = running_canary(harness)
    serve(harness, canary=counts(1_000, 50), stable=counts(100_000, 1_000))
    harness.settle(env, 61)
    harness.converge(env)
    mine = [r for r in harness.ctx.audit.all() if r.principal == "laneway"]
    assert [(r.action, r.outcome, r.source) for r in mine] == [
        ("rollout promoted", "ok", "controller"),  # v1, the first release, went live
        ("rollout step", "ok", "controller"),
        ("canary verdict", "failed", "controller"),
        ("rollout aborted", "failed", "controller"),
    ]
    assert mine[0].detail == {"release": "v1"}
    assert mine[1].detail == {"release": "v2", "step": 1, "weight": "1%"}
    assert mine[2].detail["summary"].startswith("fail: error rate")
    assert harness.ctx.audit.verify().ok


def test_too_little_traffic_waits_inconclusive_and_says_how_much_more(harness: Harness) -> None:
    serve(harness, canary=counts(0), stable=counts(0))
    env = running_canary(harness)
    serve(harness, canary=counts(10), stable=counts(1_000))
    harness.settle(env, 61)
    status = harness.environment(env).rollout
    assert (status.step_index, status.weight, status.aborted) == (0, 100, None)
    assert status.note is not None and status.note.startswith("inconclusive: ")
    assert "needs 490 more canary" in status.note and "at the current rate" in status.note
    harness.settle(env, 30)
    assert len(harness.store.verdicts(env)) == 1, "the next look waits an interval"
    serve(harness, canary=counts(600), stable=counts(60_000))
    harness.settle(env, 31)
    assert harness.environment(env).rollout.step_index == 1


@pytest.mark.parametrize("intent", ["pause", "abort"])
def test_intents_take_effect_on_the_next_pass(harness: Harness, intent: str) -> None:
    serve(harness, canary=counts(0), stable=counts(0))
    env = running_canary(harness)
    if intent == "pause":
        harness.store.change_rollout(env, lambda s: rollouts.pause(s, "paused by test"))
        serve(harness, canary=counts(400), stable=counts(40_000))
        harness.settle(env, 61)
        status = harness.environment(env).rollout
        assert (status.weight, status.paused) == (100, ("paused by test",))
        assert harness.store.verdicts(env) == []
    else:
        harness.store.change_rollout(env, lambda s: rollouts.abort(s, "aborted by test"))
        environment = harness.converge(env)
        assert environment is not None and environment.rollout.canary is None
        assert harness.states(env)["v2"] == "failed"
        assert pools(harness) == [("v1", 10_000, "stable")]


class Hook:
    """A real HTTP endpoint for webhooks on a port chosen at run time: answers `code`,
    keeps each request's JSON."""

    def __init__(self) -> None:
        self.code = 503
        self.calls: list[dict[str, object]] = []
        self.raw: list[tuple[dict[str, str], bytes]] = []
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                hook.raw.append(({k.lower(): v for k, v in self.headers.items()}, body))
                hook.calls.append(json.loads(body))
                self.send_response(hook.code)
                self.end_headers()
                self.wfile.write(b"not now\n" if hook.code != 200 else b"ok\n")

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hooked(harness: Harness) -> Iterator[tuple[Hook, str]]:
    """A webhook receiver (answering 503 until a test sets `code`) and an environment
    whose first release runs, the harness's rollouts calling webhooks over real HTTP."""
    hook = Hook()
    client = httpx.AsyncClient()
    harness.reconciler.rolling.http = client
    try:
        serve(harness, canary=counts(0), stable=counts(0))
        env = harness.create(build_id=harness.add_build())
        harness.converge(env)
        yield hook, env
    finally:
        harness.run(client.aclose())
        hook.close()


def test_a_failing_pre_step_webhook_holds_the_step_until_it_answers_yes(
    harness: Harness, hooked: tuple[Hook, str]
) -> None:
    hook, env = hooked
    hooks = (
        rollouts.Webhook(hook.url, ("pre-step",), 5.0),
        rollouts.Webhook(hook.url, ("promoted", "aborted"), 5.0),
    )
    strategy = Strategy(steps=(SetWeight(100),), webhooks=hooks)
    harness.deploy(env, harness.add_build(files={"v": "2"}), strategy=strategy)
    harness.settle(env, 5)
    status = harness.environment(env).rollout
    assert (status.weight, status.canary) == (0, rollouts.Side(2, 2)), "held before 1%"
    assert status.note == f"step 1 held: webhook {hook.url} answered 503 Service Unavailable"
    asked = len(hook.calls)
    assert hook.calls[0] == {
        "event": "pre-step",
        "app": "shop",
        "environment": "staging",
        "release": "v2",
        "step": 1,
        "weight": 1.0,
    }
    harness.settle(env, 5)
    assert len(hook.calls) == asked, "asked again only after a while"
    hook.code = 200
    harness.settle(env, 11)
    environment = harness.converge(env)
    assert environment is not None and environment.live == 2
    events = [c["event"] for c in hook.calls]
    assert events.count("promoted") == 1 and events[-1] == "promoted"
    assert any(
        m == f"webhook {hook.url} (promoted) answered 200 OK"
        for m in harness.events(env, "rollout")
    )


def test_a_step_held_past_its_hold_limit_is_aborted_and_says_why(
    harness: Harness, hooked: tuple[Hook, str]
) -> None:
    hook, env = hooked
    hooks = (
        rollouts.Webhook(hook.url, ("pre-step",), 5.0),
        rollouts.Webhook(hook.url, ("aborted",), 5.0),
    )
    strategy = Strategy(steps=(SetWeight(100),), webhooks=hooks, hold_limit=30.0)
    harness.deploy(env, harness.add_build(files={"v": "2"}), strategy=strategy)
    harness.settle(env, 25)
    assert harness.environment(env).rollout.aborted is None, "held, within the limit"
    harness.settle(env, 20)
    environment = harness.converge(env)
    assert environment is not None and environment.live == 1
    status = environment.rollout
    assert status.ended == "aborted" and status.aborted is not None
    assert status.aborted.startswith("step 1 held for 30s, over the hold limit of 30s: ")
    assert [c["event"] for c in hook.calls][-1] == "aborted"


def test_a_webhook_naming_a_secret_is_signed_with_its_value(
    harness: Harness, hooked: tuple[Hook, str]
) -> None:
    hook, env = hooked
    hook.code = 200
    hooks = (
        rollouts.Webhook(hook.url, ("pre-step",), 5.0, secret="GATE_KEY"),
        rollouts.Webhook(hook.url, ("promoted",), 5.0, secret="NOT_SET"),
    )
    sealed = harness.ctx.vault.seal(
        {"GATE_KEY": ConfigEntry("gate-secret-1234", secret=True), "PLAIN": ConfigEntry("x")}
    )
    strategy = Strategy(steps=(SetWeight(100),), webhooks=hooks)
    harness.deploy(
        env, harness.add_build(files={"v": "2"}), strategy=strategy, config_sealed=sealed
    )
    environment = harness.converge(env)
    assert environment is not None and environment.live == 2
    headers, body = hook.raw[0]
    assert headers["x-laneway-event"] == "pre-step"
    assert signing.verify(
        "gate-secret-1234",
        headers["x-laneway-timestamp"],
        body,
        headers["x-laneway-signature"],
        now=harness.clock(),
    )
    assert [c["event"] for c in hook.calls] == ["pre-step", "pre-step"], (
        "the promoted hook's secret is not set: not called"
    )
    events = harness.events(env, "rollout")
    refused = "answered not called: NOT_SET is not a secret of this environment"
    assert f"webhook {hook.url} (promoted) {refused}" in events
    assert not any("gate-secret-1234" in e for e in events)


def test_a_webhooks_credentials_and_answer_never_reach_events() -> None:
    from laneway.controllers.webhooks import shown_url

    assert shown_url("https://user:pw@ci.example:8443/gate/x?token=abc") == (
        "https://ci.example:8443/gate/x"
    )
    assert shown_url("http://[::1") == "(an unreadable URL)"
