"""Scale and restart through the reconciler, on the fake runtime and a fake clock.

A scale is a release served by the live generation: the reconciler starts or stops replicas
of that generation, never a new one. A restart is a release of the same build, config and
counts with a generation of its own, deployed as any deploy is, without the release hook.
"""

from __future__ import annotations

import asyncio

import pytest

from laneway.controllers import runs
from laneway.controllers.harness import Harness, spec
from laneway.core import environments as plans
from laneway.core.environments import RUN_SERVICE
from laneway.core.types import Phase


def running(harness: Harness, text: str | None = None) -> str:
    env = harness.create(build_id=harness.add_build(text) if text else harness.add_build())
    environment = harness.converge(env)
    assert environment is not None and environment.phase == Phase.RUNNING, environment
    return env


def test_scale_up_starts_replicas_of_the_live_generation_only(harness: Harness) -> None:
    env = running(harness)
    release = harness.scale(env, {"web": 3})
    assert release.generation == 1 and release.replicas == {"web": 3}
    environment = harness.converge(env)
    assert environment is not None and environment.phase == Phase.RUNNING
    assert harness.alive(env) == [
        f"{env}/web/0/v1",
        f"{env}/web/1/v1",
        f"{env}/web/2/v1",
        f"{env}/worker/0/v1",
    ]
    assert harness.runtime.starts()[f"{env}/web/0/v1"] == 1  # not restarted
    assert harness.states(env) == {"v1": "superseded", "v2": "live"}
    assert (environment.release, environment.target_generation, environment.live) == (2, 1, 1)
    assert harness.events(env, "switched")[-1] == "v2 is live (on the processes of v1)"
    assert harness.events(env, "hook") == ["release hook: migrate", "release hook succeeded"]
    assert harness.driver.table is not None
    route = harness.driver.table.match(f"staging.shop.{harness.ctx.settings.domain}")
    assert route is not None and len(route.pools[0].backends) == 3


def test_scale_down_stops_a_replica_only_once_it_is_recorded_out(harness: Harness) -> None:
    env = running(harness)
    harness.scale(env, {"web": 2})
    harness.converge(env)
    harness.scale(env, {"web": 1, "worker": 0})
    first = harness.pass_(env)
    # the pass records the replicas without them (so the router drops web/1), stops nothing
    assert not [a for a in first.actions if isinstance(a, plans.StopProcess)]
    assert {(r.service, r.index) for r in harness.environment(env).replicas} == {("web", 0)}
    second = harness.pass_(env)
    stopped = sorted(a.key for a in second.actions if isinstance(a, plans.StopProcess))
    assert stopped == [f"{env}/web/1/v1", f"{env}/worker/0/v1"]
    assert all(
        a.timeout == 5.0 for a in second.actions if isinstance(a, plans.StopProcess)
    )  # the spec's drain
    environment = harness.converge(env)
    assert environment is not None and environment.phase == Phase.RUNNING
    assert harness.alive(env) == [f"{env}/web/0/v1"]


def test_a_deploy_keeps_the_counts_and_a_rollback_restores_the_earlier_ones(
    harness: Harness,
) -> None:
    env = running(harness)
    harness.scale(env, {"web": 2})  # v2
    harness.converge(env)
    new = harness.deploy(env, harness.add_build(spec(hooks="{}")))  # v3, a new generation
    assert new.replicas == {"web": 2}
    harness.converge(env)
    assert harness.alive(env, generation=3) == [
        f"{env}/web/0/v3",
        f"{env}/web/1/v3",
        f"{env}/worker/0/v3",
    ]
    harness.scale(env, {"web": 4})  # v4, served by v3's processes
    harness.converge(env)
    assert len(harness.alive(env, generation=3)) == 5
    back = harness.rollback(env, 2)  # v5: v2's build and counts
    assert back.replicas == {"web": 2}
    environment = harness.converge(env)
    assert environment is not None and environment.phase == Phase.RUNNING
    live = environment.live
    assert len([k for k in harness.alive(env, generation=live) if "/web/" in k]) == 2


def test_a_failed_deploy_leaves_the_live_generation_at_its_counts(harness: Harness) -> None:
    env = running(harness)
    harness.scale(env, {"web": 2})
    harness.converge(env)
    harness.deploy(env, harness.add_build(spec(hooks="{}")))
    for _ in range(3):
        harness.pass_(env)
    harness.runtime.set_healthy(f"{env}/web/0/v3", False)
    harness.clock.advance(5.5)
    environment = harness.converge(env)
    assert environment is not None and environment.live == 1
    assert harness.states(env) == {"v1": "superseded", "v2": "live", "v3": "failed"}
    assert harness.alive(env, generation=3) == []
    assert harness.alive(env, generation=1) == [
        f"{env}/web/0/v1",
        f"{env}/web/1/v1",
        f"{env}/worker/0/v1",
    ]


def test_restart_is_a_new_generation_without_the_release_hook(harness: Harness) -> None:
    env = running(harness)
    harness.scale(env, {"web": 2})
    harness.converge(env)
    harness.restart_all(env)
    environment = harness.converge(env)
    assert environment is not None and environment.phase == Phase.RUNNING
    assert (environment.release, environment.live, environment.warm) == (3, 3, 1)
    assert harness.alive(env, generation=3) == [
        f"{env}/web/0/v3",
        f"{env}/web/1/v3",
        f"{env}/worker/0/v3",
    ]
    assert harness.events(env, "hook") == ["release hook: migrate", "release hook succeeded"]
    assert harness.settle(env, 31) is not None
    assert harness.alive(env, generation=1) == []


def test_a_one_off_process_is_not_taken_for_a_replica(harness: Harness) -> None:
    from laneway.runtime.base import ProcessSpec

    env = running(harness)
    key = harness.runtime.start_process(
        ProcessSpec(
            environment_id=env,
            service=plans.RUN_SERVICE,
            index=1,
            release="v1",
            command="sleep 60",
            cwd=harness.root,
        )
    ).key
    assert harness.pass_(env).actions == ()
    harness.runtime.crash(key, 0)
    assert harness.pass_(env).actions == ()  # its exit is for the API stream to read
    harness.destroy(env)
    assert harness.converge(env) is None
    assert harness.runtime.list_processes(env) == []


def up_web(harness: Harness, env: str) -> list[int]:
    return sorted(
        r.index for r in harness.environment(env).replicas if r.service == "web" and r.state.up
    )


def test_restarting_one_service_replaces_its_replicas_one_at_a_time(harness: Harness) -> None:
    env = running(harness)
    harness.scale(env, {"web": 2})
    harness.converge(env)
    worker = harness.alive(env)[-1]
    harness.clock.advance(1)
    release = harness.restart_service(env, "web")
    assert (release.generation, release.replicas) == (1, {"web": 2})
    seen = []
    for _ in range(60):
        result = harness.pass_(env)
        assert len(up_web(harness, env)) >= 2  # never fewer replicas taking traffic
        seen.append(tuple(up_web(harness, env)))
        if not result.actions and harness.alive(env) == [
            f"{env}/web/64/v1",
            f"{env}/web/65/v1",
            worker,
        ]:
            break
        harness.clock.advance(0.5)
    else:
        raise AssertionError(f"not replaced: {harness.alive(env)}")
    # one at a time: 0 and 1, then 0 and its replacement, then 1 and its replacement
    assert (0, 1, 64) in seen and (1, 64) in seen and (1, 64, 65) in seen
    assert (0, 1, 64, 65) not in seen
    stops = harness.events(env, "stopped")
    assert stops == ["web/0 stopped: replaced (restart)", "web/1 stopped: replaced (restart)"]
    assert harness.runtime.starts()[worker] == 1  # the worker was not restarted
    assert harness.states(env)["v3"] == "live"
    harness.router.refresh_from_store()
    assert harness.driver.table is not None
    route = harness.driver.table.match(f"staging.shop.{harness.ctx.settings.domain}")
    assert route is not None and len(route.pools[0].backends) == 2
    environment = harness.converge(env)
    assert environment is not None and environment.phase == Phase.RUNNING

    # a second restart moves them back; a replacement that crashes is restarted in its place
    harness.clock.advance(1)
    harness.restart_service(env, "web")
    harness.pass_(env)
    harness.runtime.crash(f"{env}/web/0/v1")
    harness.settle(env, 3)  # its backoff
    environment = harness.converge(env)
    assert environment is not None and environment.phase == Phase.RUNNING
    assert harness.alive(env) == [f"{env}/web/0/v1", f"{env}/web/1/v1", worker]


def test_a_run_starts_only_once_followed_and_is_stopped_if_cancelled_while_starting(
    harness: Harness,
) -> None:
    """The API prepares a run (checks, process environment) before it answers, and starts it
    from the stream that follows it: a client gone before its stream begins leaves nothing
    running, and one gone while the process starts gets it stopped once it has started."""
    env = running(harness)
    prepared = runs.prepare(harness.ctx, harness.environment(env), "web", "sleep 60", timeout=60)

    def runs_alive() -> list[str]:
        return [p.key for p in harness.runtime.list_processes(env) if p.service == RUN_SERVICE]

    assert runs_alive() == []

    async def cancelled_while_starting() -> None:
        task = asyncio.ensure_future(runs.launched(harness.ctx, prepared))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(1000):  # a guard: the thread that starts it, then the one that stops it
            started = any(k.startswith(f"{env}/{RUN_SERVICE}/") for k in harness.runtime.started)
            if started and not runs_alive():
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"the run was left running: {runs_alive()}")

    harness.run(cancelled_while_starting())
