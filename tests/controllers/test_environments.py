"""The environment reconciler, one pass at a time, on the fake runtime and a fake clock.

Each test writes intent as the API does (a record, a release), then drives passes and checks
what the reconciler planned and recorded. Every convergence ends with a pass that plans
nothing (`Harness.converge`), so each test is also a run-twice test.
"""

from __future__ import annotations

import pytest

from laneway.controllers.harness import STEP, Harness, spec
from laneway.core import environments as plans
from laneway.core.types import Environment, Kind, Phase


def kinds(actions: tuple[plans.Action, ...]) -> list[str]:
    return [type(a).__name__ for a in actions]


def passes(harness: Harness, env: str, count: int) -> list[list[str]]:
    out = []
    for _ in range(count):
        result = harness.pass_(env)
        out.append(kinds(result.actions))
        harness.finish_hooks(0)
    return out


def running(harness: Harness, build: str | None = None) -> str:
    env = harness.create(build_id=build or harness.add_build())
    environment = harness.converge(env)
    assert environment is not None and environment.phase == Phase.RUNNING, environment
    return env


# create ----------------------------------------------------------------------------------


def test_create_converges_and_a_second_pass_does_nothing(harness: Harness) -> None:
    env = harness.create(build_id=harness.add_build())
    environment = harness.converge(env)
    assert environment is not None
    assert environment.phase == Phase.RUNNING, environment.message
    assert harness.states(env) == {"v1": "live"}
    assert harness.alive(env) == [f"{env}/web/0/v1", f"{env}/worker/0/v1"]
    assert harness.postgres.instances == {(env, "db")}
    again = harness.pass_(env)
    assert again.actions == ()
    assert harness.environment(env) == environment


def test_create_steps_in_order(harness: Harness) -> None:
    env = harness.create(build_id=harness.add_build())
    assert passes(harness, env, 6) == [
        ["Unpack", "Provision"],
        ["RunHook"],
        ["HookDone"],
        ["StartReplica", "StartReplica"],
        ["WeightSet", "Promoted"],
        [],
    ]
    assert harness.environment(env).phase == Phase.RUNNING
    assert harness.driver.table is not None
    route = harness.driver.table.match(f"staging.shop.{harness.ctx.settings.domain}")
    assert route is not None and [p.release for p in route.pools] == ["v1"]


def test_a_replica_without_health_check_counts_at_once_for_a_first_release(
    harness: Harness,
) -> None:
    env = harness.create(build_id=harness.add_build(spec(hooks="{}")))
    assert passes(harness, env, 3) == [
        ["Unpack", "Provision"],
        ["StartReplica", "StartReplica"],
        ["WeightSet", "Promoted"],
    ]


def test_a_web_that_is_not_healthy_yet_holds_the_first_switch(harness: Harness) -> None:
    env = harness.create(build_id=harness.add_build())
    passes(harness, env, 4)
    harness.runtime.set_healthy(f"{env}/web/0/v1", False)
    result = harness.pass_(env)
    assert kinds(result.actions) == []
    assert harness.environment(env).phase == Phase.STARTING
    harness.runtime.set_healthy(f"{env}/web/0/v1", True)
    assert kinds(harness.pass_(env).actions) == ["WeightSet", "Promoted"]


def test_a_failing_hook_fails_a_first_release(harness: Harness) -> None:
    env = harness.create(build_id=harness.add_build())
    environment = harness.converge(env, hooks_exit=3)
    assert environment is not None
    assert environment.phase == Phase.FAILED
    assert "release hook `migrate` exited with code 3" in environment.message
    assert harness.states(env) == {"v1": "failed"}
    assert harness.alive(env) == []


def test_an_unreachable_resource_server_is_retried_with_one_event_per_error(
    harness: Harness,
) -> None:
    env = harness.create(build_id=harness.add_build())
    harness.postgres.failing = "PostgreSQL at 127.0.0.1:5432 is unreachable"
    for _ in range(3):
        result = harness.pass_(env)
        assert result.outcome.value == "retry"
    environment = harness.environment(env)
    assert environment.message.endswith("; retrying: PostgreSQL at 127.0.0.1:5432 is unreachable")
    assert len(harness.events(env, "error")) == 1
    harness.postgres.failing = None
    environment = harness.converge(env)
    assert environment is not None and environment.phase == Phase.RUNNING
    assert "retrying" not in environment.message


# supervision -----------------------------------------------------------------------------


def test_a_crashed_replica_backs_off_then_restarts_and_the_environment_says_degraded(
    harness: Harness,
) -> None:
    env = running(harness)
    key = f"{env}/worker/0/v1"
    harness.runtime.crash(key, 7)
    result = harness.pass_(env)
    assert kinds(result.actions) == ["Forget"]
    environment = harness.environment(env)
    assert environment.phase == Phase.DEGRADED
    assert "worker/0 exited with code 7; restarting in 0.5s" in environment.message
    assert kinds(harness.pass_(env).actions) == []  # still backing off
    harness.clock.advance(0.5)
    assert kinds(harness.pass_(env).actions) == ["StartReplica"]
    worker = next(r for r in harness.environment(env).replicas if r.service == "worker")
    assert worker.restarts == 1
    assert harness.runtime.starts()[key] == 2


def test_the_backoff_doubles_with_each_crash(harness: Harness) -> None:
    env = running(harness)
    key = f"{env}/worker/0/v1"
    waits = []
    for _ in range(4):
        harness.runtime.crash(key)
        harness.pass_(env)
        worker = next(r for r in harness.environment(env).replicas if r.service == "worker")
        assert worker.retry_at is not None
        waits.append(worker.retry_at - harness.clock())
        harness.clock.advance(waits[-1])
        harness.pass_(env)
    assert waits == [0.5, 1.0, 2.0, 4.0]


# deploy ----------------------------------------------------------------------------------


def test_deploy_starts_beside_the_live_release_switches_then_retires_it(
    harness: Harness,
) -> None:
    env = running(harness)
    harness.deploy(env, harness.add_build(files={"v": "2"}))
    steps = passes(harness, env, 5)
    assert steps[:4] == [["Unpack"], ["RunHook"], ["HookDone"], ["StartReplica", "StartReplica"]]
    assert harness.environment(env).phase == Phase.DEPLOYING
    assert harness.alive(env, generation=1) and harness.alive(env, generation=2)
    # the worker has no health check: it counts after 3 s up
    environment = harness.converge(env)
    assert environment is not None
    assert (environment.live, environment.warm) == (2, 1)
    assert harness.states(env) == {"v1": "superseded", "v2": "live"}
    assert harness.alive(env, generation=1), "kept warm"
    assert any(m.startswith("v2 is live (traffic on v2") for m in harness.events(env, "switched"))
    harness.clock.advance(30)
    assert kinds(harness.pass_(env).actions) == ["StopProcess", "StopProcess"]
    assert kinds(harness.pass_(env).actions) == ["Retire"]
    environment = harness.converge(env)
    assert environment is not None and environment.warm == 0
    assert harness.alive(env) == [f"{env}/web/0/v2", f"{env}/worker/0/v2"]


def test_a_release_that_never_gets_healthy_is_aborted_and_traffic_stays(
    harness: Harness,
) -> None:
    env = running(harness)
    harness.deploy(env, harness.add_build(files={"v": "2"}))
    passes(harness, env, 4)
    harness.runtime.set_healthy(f"{env}/web/0/v2", False)
    harness.clock.advance(5.5)
    result = harness.pass_(env)
    assert kinds(result.actions)[-1] == "Aborted"
    environment = harness.converge(env)
    assert environment is not None
    assert environment.live == 1 and environment.release == 1
    assert harness.states(env) == {"v1": "live", "v2": "failed"}
    assert harness.alive(env) == [f"{env}/web/0/v1", f"{env}/worker/0/v1"]
    assert any("did not become healthy: web/0" in m for m in harness.events(env, "deploy.failed"))


def test_a_crash_looping_new_replica_aborts_the_deploy(harness: Harness) -> None:
    env = running(harness)
    harness.deploy(env, harness.add_build(files={"v": "2"}))
    passes(harness, env, 4)
    for _ in range(3):
        harness.runtime.crash(f"{env}/worker/0/v2", 1)
        harness.pass_(env)
        worker = next(
            r
            for r in harness.environment(env).replicas
            if r.service == "worker" and r.release == "v2"
        )
        harness.clock.advance((worker.retry_at or harness.clock()) - harness.clock())
        harness.pass_(env)
    environment = harness.converge(env)
    assert environment is not None and environment.live == 1
    assert harness.states(env)["v2"] == "failed"


def test_a_failing_hook_aborts_a_deploy_and_traffic_stays(harness: Harness) -> None:
    env = running(harness)
    harness.deploy(env, harness.add_build(files={"v": "2"}))
    environment = harness.converge(env, hooks_exit=2)
    assert environment is not None
    assert environment.live == 1 and environment.phase == Phase.RUNNING
    assert harness.states(env) == {"v1": "live", "v2": "failed"}
    assert harness.alive(env, generation=2) == []


def test_a_rollback_to_the_warm_release_is_a_switch_alone(harness: Harness) -> None:
    env = running(harness)
    harness.deploy(env, harness.add_build(files={"v": "2"}))
    harness.converge(env)
    started = len(harness.runtime.started)
    release = harness.rollback(env, to=1)
    assert release.generation == 1
    assert kinds(harness.pass_(env).actions) == ["WeightSet", "Promoted"]
    environment = harness.converge(env)
    assert environment is not None and (environment.live, environment.warm) == (1, 2)
    assert len(harness.runtime.started) == started, "no process started for a rollback"
    assert harness.states(env) == {"v1": "superseded", "v2": "superseded", "v3": "live"}


def test_the_same_release_twice_plans_nothing_new(harness: Harness) -> None:
    env = running(harness)
    before = harness.runtime.starts()
    for _ in range(3):
        harness.clock.advance(STEP)
        assert harness.pass_(env).actions == ()
    assert harness.runtime.starts() == before


# release confirmation ---------------------------------------------------------------------


def test_a_release_is_live_only_once_the_router_says_it_serves_it(harness: Harness) -> None:
    env = running(harness)
    harness.driver.confirming = False
    harness.deploy(env, harness.add_build(files={"v": "2"}))
    harness.settle(env, 5)
    environment = harness.environment(env)
    assert environment.rollout.weight == 10_000, "traffic was moved"
    assert harness.driver.table is not None
    route = harness.driver.table.match(f"staging.shop.{harness.ctx.settings.domain}")
    assert route is not None and [p.release for p in route.pools] == ["v2"]
    assert environment.live == 1, "v1 is still the stable release"
    assert harness.states(env)["v2"] == "pending", "and v2 is not called live"
    assert environment.phase == Phase.DEPLOYING
    assert environment.message == "waiting for the router to serve v2"
    assert harness.events(env, "switching")
    harness.driver.confirm()
    environment = harness.converge(env)
    assert environment is not None and environment.phase == Phase.RUNNING
    assert harness.states(env) == {"v1": "superseded", "v2": "live"}
    assert any("v2 is live" in m for m in harness.events(env, "switched"))


def test_a_first_release_waits_for_the_router_too(harness: Harness) -> None:
    harness.driver.confirming = False
    env = harness.create(build_id=harness.add_build())
    harness.settle(env, 5)
    environment = harness.environment(env)
    assert environment.phase == Phase.STARTING
    assert harness.states(env) == {"v1": "pending"}
    harness.driver.confirm()
    environment = harness.converge(env)
    assert environment is not None and environment.phase == Phase.RUNNING
    assert harness.states(env) == {"v1": "live"}


# destroy ---------------------------------------------------------------------------------


def test_destroy_removes_processes_resources_files_and_the_record(harness: Harness) -> None:
    env = running(harness)
    harness.destroy(env)
    result = harness.pass_(env)
    assert kinds(result.actions) == [
        "StopProcess",
        "StopProcess",
        "DestroyResources",
        "RemoveFiles",
        "DeleteRecord",
    ]
    assert result.environment is None
    assert harness.store.get_environment_by_id(env) is None
    assert harness.runtime.list_processes(env) == []
    assert harness.postgres.instances == set()
    assert not (harness.ctx.settings.environments_dir / env).exists()
    assert harness.store.leases(env) == []


def test_destroy_while_a_hook_runs_stops_it(harness: Harness) -> None:
    env = harness.create(build_id=harness.add_build())
    harness.pass_(env)
    harness.pass_(env)  # the hook runs now
    assert harness.alive(env) == [f"{env}/_hook/1"]
    harness.destroy(env)
    assert harness.converge(env) is None
    assert harness.runtime.list_processes() == []


@pytest.mark.parametrize("kind", [Kind.PREVIEW, Kind.PRODUCTION])
def test_replicas_follow_the_kind(harness: Harness, kind: Kind) -> None:
    text = spec(environments="production: {replicas: {web: 2}}")
    env = harness.create("x", build_id=harness.add_build(text), kind=kind)
    harness.converge(env)
    webs = [k for k in harness.alive(env) if "/web/" in k]
    assert len(webs) == (2 if kind == Kind.PRODUCTION else 1)


def test_a_release_made_while_a_pass_plans_waits_for_a_pass_of_its_own(
    harness: Harness,
) -> None:
    """A plan's `ready` speaks of the release it was made for: a deploy recorded while the
    pass runs is not rolled out on it (it would take traffic before it ever started)."""
    env = running(harness)
    build = harness.add_build(files={"v": "2"})
    show = harness.reconciler._show
    made: list[int] = []

    def deploy_meanwhile(environment: Environment, plan: plans.Plan) -> Environment:
        if not made:
            made.append(harness.deploy(env, build).number)
            environment = harness.environment(env)  # as a write later in the pass reads it
        return show(environment, plan)

    harness.reconciler._show = deploy_meanwhile  # type: ignore[method-assign]
    harness.clock.advance(STEP)
    result = harness.pass_(env)
    assert made == [2] and kinds(result.actions) == []
    environment = harness.environment(env)
    assert (environment.live, environment.release) == (1, 2)
    assert harness.states(env) == {"v1": "live", "v2": "pending"}
