"""plan_environment as tables: (environment, observation) -> actions, phase."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from laneway.core import environments as plans
from laneway.core.rollouts import RolloutStatus, Side
from laneway.core.types import (
    Desired,
    Environment,
    Kind,
    Phase,
    ProcessInfo,
    ReplicaState,
    ReplicaStatus,
)
from laneway.errors import SpecError
from laneway.spec.loader import load_spec_text

SPEC = load_spec_text(
    """
app: shop
services:
  web: {command: python -m web, health: /healthz}
  worker: {command: python -m worker}
resources:
  db: {type: postgres}
hooks:
  release: python -m migrate
environments:
  production: {replicas: {web: 2}}
"""
)
NOW = 1_000_000.0


def environment(**changes: object) -> Environment:
    """An environment; `release`, `target`, `live`, `warm` and `warm_until` (the numbers it
    carried before rollouts) make its rollout status: a release beside a live generation
    rolls out over it, one whose target is live is stable."""
    release = int(changes.pop("release", 1))  # type: ignore[call-overload]
    target = int(changes.pop("target", release))  # type: ignore[call-overload]
    live = int(changes.pop("live", 1))  # type: ignore[call-overload]
    warm = int(changes.pop("warm", 0))  # type: ignore[call-overload]
    warm_until = float(changes.pop("warm_until", 0.0))  # type: ignore[arg-type]
    if live == target:
        stable, canary = Side(release, live), None
    else:
        stable = Side(live, live) if live else None
        canary = Side(release, target)
    status = RolloutStatus(
        stable=stable,
        canary=canary,
        warm=Side(warm, warm) if warm else None,
        warm_until=warm_until,
    )
    base = Environment(
        id="e1",
        app="shop",
        name="feature-x",
        kind=Kind.PREVIEW,
        branch="feature-x",
        ref="feature-x",
        build_id="sha256:" + "a" * 64,
        commit="c" * 40,
        desired=Desired.RUNNING,
        phase=Phase.PENDING,
        message="",
        hook_release=1,
        failure=None,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        updated_at=datetime(2026, 1, 1, tzinfo=UTC),
        rollout=status,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


BUILD = "sha256:" + "a" * 64
NEW_BUILD = "sha256:" + "b" * 64


def plan_for(env: Environment, observed: plans.Observed, *, now: float = NOW, spec=None):
    """The plan with the generations a controller would hand over: each of target, live and
    warm with a build (the target's is the environment's build)."""
    generations = {}
    for number in {env.target_generation, env.live, env.warm} - {0}:
        build = env.build_id if number == env.target_generation else BUILD
        if build:
            generations[number] = plans.Generation(number, build, spec or SPEC)
    return plans.plan_environment(env, generations, observed, now=now)


def proc(
    service: str,
    index: int,
    *,
    pid: int,
    alive: bool = True,
    release: str = "v1",
    exit_code: int | None = None,
    started_at: float = NOW - 1,
) -> ProcessInfo:
    return ProcessInfo(
        key=f"e1/{service}/{index}" + ("" if service == "_hook" else f"/{release}"),
        environment_id="e1",
        service=service,
        index=index,
        release=release,
        pid=pid,
        alive=alive,
        exit_code=exit_code,
        started_at=started_at,
    )


READY = plans.Observed(unpacked=frozenset({1}), resources=frozenset({"db"}))
RUNNING = replace(
    READY,
    processes=(proc("web", 0, pid=10), proc("worker", 0, pid=11)),
    health={10: (True, "GET /healthz -> 200")},
    ports={(1, "web", 0): 20001},
)
NEW = environment(live=0)


@pytest.mark.parametrize(
    ("env", "observed", "actions", "phase"),
    [
        (replace(NEW, build_id=None), READY, [plans.Build("feature-x")], Phase.BUILDING),
        (NEW, replace(READY, unpacked=frozenset()), [plans.Unpack(BUILD, 1)], Phase.PROVISIONING),
        (
            NEW,
            replace(READY, resources=frozenset()),
            [plans.Provision("db", "postgres")],
            Phase.PROVISIONING,
        ),
        (
            replace(NEW, hook_release=0),
            READY,
            [plans.RunHook(1, "python -m migrate")],
            Phase.PROVISIONING,
        ),
        (
            NEW,
            READY,
            [plans.StartReplica("web", 0, 1), plans.StartReplica("worker", 0, 1)],
            Phase.STARTING,
        ),
        (NEW, RUNNING, [], Phase.STARTING),
        (environment(), RUNNING, [], Phase.RUNNING),
        (environment(failure="build failed"), READY, [], Phase.FAILED),
    ],
    ids=["build", "unpack", "provision", "hook", "start", "switch", "converged", "failed"],
)
def test_create_steps(env, observed, actions, phase):
    plan = plan_for(env, observed)
    assert plan.actions == actions
    assert plan.phase == phase


def test_unpack_and_provision_are_planned_together():
    fresh = plans.Observed(unpacked=frozenset(), resources=frozenset())
    plan = plan_for(NEW, fresh)
    assert plan.actions == [
        plans.Unpack("sha256:" + "a" * 64, 1),
        plans.Provision("db", "postgres"),
    ]
    assert all(isinstance(a, plans.CONCURRENT) for a in plan.actions)


def test_converged_plan_is_empty_and_stable():
    first = plan_for(environment(), RUNNING)
    again = plan_for(environment(replicas=first.replicas), RUNNING)
    assert first.actions == again.actions == []
    assert again.replicas == first.replicas
    web = next(r for r in first.replicas if r.service == "web")
    assert (web.state, web.port, web.pid) == ("healthy", 20001, 10)


def test_unhealthy_replica_is_starting_then_degraded_after_grace():
    observed = replace(RUNNING, health={10: (False, "GET /healthz -> 503")})
    plan = plan_for(environment(), observed)
    assert plan.phase == Phase.STARTING and plan.actions == []
    late = plan_for(environment(), observed, now=NOW + 120)
    assert late.phase == Phase.DEGRADED
    assert "not healthy after 60s: GET /healthz -> 503" in late.message


def test_crash_backs_off_exponentially_then_restarts():
    crashed = replace(
        RUNNING,
        processes=(proc("web", 0, pid=10, alive=False, exit_code=3), proc("worker", 0, pid=11)),
    )
    env = environment(replicas=plan_for(environment(), RUNNING).replicas)
    plan = plan_for(env, crashed)
    assert plan.actions == [plans.Forget("e1/web/0/v1")]
    assert plan.phase == Phase.DEGRADED
    assert "exited with code 3" in plan.message
    web = next(r for r in plan.replicas if r.service == "web")
    assert (web.state, web.restarts, web.retry_at) == ("backoff", 1, NOW + 0.5)

    gone = replace(RUNNING, processes=(proc("worker", 0, pid=11),))
    waiting = plan_for(replace(env, replicas=plan.replicas), gone, now=NOW + 0.2)
    assert waiting.actions == []
    due = plan_for(replace(env, replicas=plan.replicas), gone, now=NOW + 0.6)
    assert due.actions == [plans.StartReplica("web", 0, 1)]


def test_adopted_process_that_vanished_counts_as_a_crash():
    before = plan_for(environment(), RUNNING).replicas
    gone = replace(RUNNING, processes=(proc("worker", 0, pid=11),))
    plan = plan_for(environment(replicas=before), gone)
    web = next(r for r in plan.replicas if r.service == "web")
    assert web.state == "backoff" and web.last_exit == "exited"


@pytest.mark.parametrize("restarts,delay", [(1, 0.5), (2, 1), (3, 2), (6, 16), (7, 30), (50, 30)])
def test_backoff(restarts, delay):
    assert plans.backoff(restarts) == delay


def test_replicas_follow_kind_overrides_and_extra_processes_stop():
    prod = environment(kind=Kind.PRODUCTION)
    plan = plan_for(prod, READY)
    assert plans.StartReplica("web", 1, 1) in plan.actions
    extra = replace(RUNNING, processes=(*RUNNING.processes, proc("web", 1, pid=12)))
    plan = plan_for(environment(), extra)
    assert plan.actions == [
        plans.StopProcess("e1/web/1/v1", "no longer wanted (scaled down)", timeout=30.0)
    ]


def test_scale_overrides_the_spec_and_a_replica_scaled_down_stops_once_recorded_out():
    gen = plans.Generation(1, BUILD, SPEC, {"web": 2, "worker": 0})
    # worker/0 is still recorded: the router may still route to it (had it a port), so it
    # stops on the pass after the one that records it out
    recorded = environment(replicas=plan_for(environment(), RUNNING).replicas)
    plan = plans.plan_environment(recorded, {1: gen}, RUNNING, now=NOW)
    assert plan.actions == [plans.StartReplica("web", 1, 1)]
    assert [(r.service, r.index) for r in plan.replicas] == [("web", 0), ("web", 1)]
    after = environment(replicas=plan.replicas)
    stops = plans.plan_environment(after, {1: gen}, RUNNING, now=NOW).actions
    assert plans.StopProcess("e1/worker/0/v1", "no longer wanted (scaled down)", 30.0) in stops


def test_a_one_off_process_is_left_alone_alive_or_ended():
    for alive in (True, False):
        run = proc(plans.RUN_SERVICE, 7, pid=30, alive=alive, release="v1")
        observed = replace(RUNNING, processes=(*RUNNING.processes, run))
        settled = environment(replicas=plan_for(environment(), RUNNING).replicas)
        assert plan_for(settled, observed).actions == []
        old = replace(run, release="v0")
        observed = replace(RUNNING, processes=(*RUNNING.processes, old))
        assert plan_for(settled, observed).actions == []


def test_a_generation_is_retired_only_once_its_one_off_processes_ended():
    settled = environment(replicas=plan_for(environment(), RUNNING).replicas)
    run = proc(plans.RUN_SERVICE, 7, pid=30, release="v0")
    old = replace(RUNNING, unpacked=frozenset({0, 1}) | {9}, leased=frozenset({9}))
    running = replace(old, processes=(*RUNNING.processes, replace(run, release="v9")))
    assert plan_for(settled, running).actions == []
    ended = replace(
        running, processes=(*RUNNING.processes, replace(run, release="v9", alive=False))
    )
    assert plan_for(settled, ended).actions == [plans.Retire(9)]


def test_process_of_a_generation_no_longer_wanted_is_stopped_then_retired():
    old = replace(
        RUNNING,
        processes=(*RUNNING.processes, proc("web", 0, pid=9, release="v0")),
        unpacked=frozenset({1, 7}),
        leased=frozenset({1, 7}),
    )
    plan = plan_for(environment(), old)
    assert plan.actions == [
        plans.StopProcess("e1/web/0/v0", "v0 is no longer live", timeout=30.0),
        plans.Retire(7),
    ]


def test_teardown_stops_everything_then_removes():
    dying = environment(desired=Desired.DELETED)
    observed = replace(
        RUNNING, processes=(proc("web", 0, pid=10), proc("worker", 0, pid=11, alive=False))
    )
    plan = plan_for(dying, observed)
    assert plan.actions == [
        plans.StopProcess("e1/web/0/v1", "environment destroyed"),
        plans.Forget("e1/worker/0/v1"),
        plans.DestroyResources(),
        plans.RemoveFiles(),
        plans.DeleteRecord(),
    ]
    assert plan.phase == Phase.DELETING


def test_compose_env_precedence():
    spec = load_spec_text(
        """
app: shop
env: {A: spec, B: spec}
services:
  web: {command: x, env: {B: service}}
resources:
  db: {type: postgres}
  cache: {type: sqlite}
environments:
  preview: {env: {A: preview}}
"""
    )
    env = plans.compose_env(
        environment(),
        spec,
        service="web",
        port=20005,
        resources={"db": "postgresql://x", "cache": "sqlite:////tmp/c"},
        base={"PATH": "/bin", "A": "base"},
    )
    assert env["A"] == "preview" and env["B"] == "service" and env["PORT"] == "20005"
    assert env["DATABASE_URL"] == "postgresql://x" and env["CACHE_URL"] == "sqlite:////tmp/c"
    assert env["LANEWAY_ENV"] == "feature-x" and env["LANEWAY_RELEASE"] == "v1"
    assert env["LANEWAY_BRANCH"] == "feature-x" and env["LANEWAY_COMMIT"] == "c" * 40
    assert env["PATH"] == "/bin"


@pytest.mark.parametrize(
    "kind, spec_env, expected",
    [
        (Kind.DEVELOPMENT, "", "1"),
        (Kind.DEVELOPMENT, "env: {PYTHONUNBUFFERED: ''}\n", ""),
        (Kind.PREVIEW, "", None),
        (Kind.PRODUCTION, "", None),
    ],
)
def test_development_output_is_unbuffered_unless_the_spec_says_otherwise(kind, spec_env, expected):
    spec = load_spec_text(f"app: a\n{spec_env}services: {{web: {{command: x}}}}\n")
    env = plans.compose_env(
        environment(kind=kind), spec, service="web", port=1, resources={}, base={}
    )
    assert env.get("PYTHONUNBUFFERED") == expected


def test_build_path_goes_in_front_of_path():
    spec = load_spec_text(
        "app: a\nbuild: {command: x, path: [.deps/bin, node_modules/.bin]}\nservices: {web: {command: x}}\n"
    )
    env = plans.compose_env(
        environment(),
        spec,
        service="web",
        port=1,
        resources={},
        base={"PATH": "/usr/bin"},
        app_dir="/app/v1",
    )
    assert env["PATH"] == "/app/v1/.deps/bin:/app/v1/node_modules/.bin:/usr/bin"


@pytest.mark.parametrize("bad", ["/usr/bin", "../x", "a/../../b", "a:b"])
def test_build_path_must_stay_inside_the_build(bad):
    with pytest.raises(SpecError, match="build.path"):
        load_spec_text(f"app: a\nbuild: {{path: ['{bad}']}}\nservices: {{web: {{command: x}}}}\n")


def test_replica_status_roundtrip_defaults():
    assert ReplicaStatus("web", 0).state == "pending"


HOOK = "e1/_hook/1"


@pytest.mark.parametrize(
    ("observed", "actions"),
    [
        (READY, [plans.RunHook(1, "python -m migrate")]),
        (replace(READY, processes=(proc("_hook", 1, pid=20),)), []),
        (
            replace(READY, processes=(proc("_hook", 1, pid=20, alive=False, exit_code=0),)),
            [plans.HookDone(1, HOOK, 0)],
        ),
        (
            replace(READY, processes=(proc("_hook", 1, pid=20, alive=False, exit_code=2),)),
            [plans.HookDone(1, HOOK, 2)],
        ),
        (replace(READY, hook_exit=0), [plans.HookDone(1, HOOK, 0)]),
        (
            replace(READY, processes=(proc("_hook", 1, pid=20, started_at=NOW - 601),)),
            [plans.StopProcess(HOOK, "release hook timed out"), plans.HookDone(1, HOOK, None)],
        ),
    ],
    ids=["start", "running", "succeeded", "failed", "ended-while-away", "timed-out"],
)
def test_release_hook_runs_as_a_job(observed, actions):
    plan = plan_for(environment(hook_release=0, live=0), observed)
    assert plan.actions == actions
    assert plan.phase == Phase.PROVISIONING


def test_hook_processes_are_not_replicas():
    done = replace(
        RUNNING, processes=(*RUNNING.processes, proc("_hook", 1, pid=20, alive=False, exit_code=0))
    )
    plan = plan_for(environment(), done)
    assert plan.actions == [plans.Forget(HOOK)]
    assert {(r.service, r.index) for r in plan.replicas} == {("web", 0), ("worker", 0)}


def test_redact_hides_resource_addresses_and_their_passwords():
    from laneway.core.redaction import redact

    url = "postgresql://lw_x_e1_db:s3cretpassw0rd@127.0.0.1:5432/lw_x_e1_db"
    text = f"connecting to {url}\nauth failed for password s3cretpassw0rd"
    out = redact(text, [url, "sqlite:////tmp/x.db"])
    assert "s3cretpassw0rd" not in out and url not in out
    assert out.count("***") == 2


# deploys: a new generation beside the live one --------------------------------------------

DEPLOYING = environment(release=2, target=2, live=1, build_id=NEW_BUILD, hook_release=1)
UP = NOW - 10  # long enough for a replica without a health check to count as running
V1 = (proc("web", 0, pid=10, started_at=UP), proc("worker", 0, pid=11, started_at=UP))
V2 = (
    proc("web", 0, pid=20, release="v2", started_at=UP),
    proc("worker", 0, pid=21, release="v2", started_at=UP),
)
BOTH = replace(
    RUNNING,
    unpacked=frozenset({1, 2}),
    processes=V1 + V2,
    health={10: (True, "200"), 20: (True, "200")},
    ports={(1, "web", 0): 20001, (2, "web", 0): 20002},
)


def test_deploy_unpacks_beside_the_live_generation_which_keeps_serving():
    plan = plan_for(DEPLOYING, RUNNING)
    assert plan.actions == [plans.Unpack(NEW_BUILD, 2)]
    assert plan.phase == Phase.DEPLOYING and "v1 serves meanwhile" in plan.message
    assert {r.release for r in plan.replicas} == {"v1"}


def test_deploy_runs_the_hook_of_the_new_release_then_starts_its_replicas():
    ready = replace(RUNNING, unpacked=frozenset({1, 2}))
    hook = plan_for(DEPLOYING, ready)
    assert hook.actions == [plans.RunHook(2, "python -m migrate")]
    assert hook.phase == Phase.DEPLOYING
    start = plan_for(replace(DEPLOYING, hook_release=2), ready)
    assert start.actions == [plans.StartReplica("web", 0, 2), plans.StartReplica("worker", 0, 2)]
    assert start.phase == Phase.DEPLOYING


def test_a_first_release_is_ready_once_its_replicas_are_up():
    assert not plan_for(NEW, READY).ready
    plan = plan_for(NEW, RUNNING)
    assert plan.ready and plan.message == "switching traffic to v1"


def test_deploy_is_ready_once_every_new_replica_is_healthy():
    env = replace(DEPLOYING, hook_release=2)
    plan = plan_for(env, BOTH)
    assert plan.actions == [] and plan.ready and plan.failing is None
    assert {(r.release, r.state) for r in plan.replicas} >= {("v1", "healthy"), ("v2", "healthy")}


def test_deploy_that_never_becomes_healthy_is_aborted_and_traffic_stays():
    env = replace(DEPLOYING, hook_release=2)
    sick = replace(BOTH, health={10: (True, "200"), 20: (False, "GET /healthz -> 500")})
    early = plan_for(env, sick)
    assert not early.ready and early.failing is None
    late = plan_for(env, sick, now=NOW + 61)
    assert late.failing == plans.Failing(
        "v2 did not become healthy: web/0 not healthy after 60s: GET /healthz -> 500", "web", 0
    )
    assert not late.ready


def test_deploy_that_crash_loops_is_aborted():
    env = replace(
        DEPLOYING,
        hook_release=2,
        replicas=(ReplicaStatus("web", 0, release="v2", restarts=2, pid=20),),
    )
    crashed = replace(
        BOTH, processes=V1 + (proc("web", 0, pid=20, release="v2", alive=False, exit_code=1),)
    )
    plan = plan_for(env, crashed)
    assert plan.failing is not None and "exited with code 1" in plan.failing.reason


def test_the_previous_generation_is_kept_warm_then_stopped_then_retired():
    env = environment(release=2, target=2, live=2, warm=1, warm_until=NOW + 10, hook_release=2)
    warm = replace(BOTH, leased=frozenset({1, 2}))
    assert plan_for(env, warm).actions == []
    later = plan_for(env, warm, now=NOW + 11)
    assert later.actions == [
        plans.StopProcess("e1/web/0/v1", "v1 retired after its warm time", timeout=30.0),
        plans.StopProcess("e1/worker/0/v1", "v1 retired after its warm time", timeout=30.0),
    ]
    gone = replace(warm, processes=V2)
    assert plan_for(env, gone, now=NOW + 12).actions == [plans.Retire(1)]


def test_rollback_inside_the_warm_window_is_ready_at_once():
    env = environment(release=3, target=1, live=2, warm=1, warm_until=NOW + 10, hook_release=3)
    plan = plan_for(env, BOTH)
    assert plan.actions == [] and plan.ready


def test_a_warm_process_that_dies_is_forgotten_not_restarted():
    env = environment(release=2, target=2, live=2, warm=1, warm_until=NOW + 10, hook_release=2)
    died = replace(BOTH, processes=(proc("web", 0, pid=10, alive=False, exit_code=1),) + V2)
    assert plan_for(env, died).actions == [plans.Forget("e1/web/0/v1")]


def test_a_deploy_counts_on_a_replica_without_health_check_only_once_it_stays_up():
    env = replace(DEPLOYING, hook_release=2)
    young = replace(
        BOTH,
        processes=V1
        + (
            proc("web", 0, pid=20, release="v2"),
            proc("worker", 0, pid=21, release="v2", started_at=NOW - 1),
        ),
    )
    plan = plan_for(env, young)
    assert not plan.ready
    worker = next(r for r in plan.replicas if r.release == "v2" and r.service == "worker")
    assert worker.state == "starting" and "once up 3s" in worker.message
    later = plan_for(env, young, now=NOW + 1.5)
    assert (later.phase, later.message) == (plan.phase, plan.message), "one event, not one a pass"
    assert plan_for(env, young, now=NOW + 2.5).ready


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({}, "building feature-x"),
        ({"ref": "1a2b3c4d5e6f" + "0" * 28}, "building commit 1a2b3c4d5e6f"),
        ({"branch": None, "ref": "v1.2"}, "building v1.2"),
        ({"ref": None}, "building feature-x"),
    ],
)
def test_the_build_step_names_what_it_builds(changes: dict[str, object], says: str) -> None:
    """A deploy of another ref to a branch's environment builds that ref's commit, and says
    so, not the branch's name."""
    plan = plan_for(replace(NEW, build_id=None, **changes), READY)  # type: ignore[arg-type]
    assert plan.message == says


@pytest.mark.parametrize(("count", "says"), [(1, "1 replica running"), (2, "2 replicas running")])
def test_the_running_message_counts_in_words(count: int, says: str) -> None:
    statuses = [
        ReplicaStatus("web", i, "v1", pid=10 + i, port=20000 + i, state=ReplicaState.RUNNING)
        for i in range(count)
    ]
    assert plans.replicas_phase(statuses) == (Phase.RUNNING, says)
