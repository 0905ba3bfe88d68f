"""plan_environment as tables: (environment, observation) -> actions, phase."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from laneway.core import environments as plans
from laneway.core.types import Desired, Environment, Kind, Phase, ProcessInfo, ReplicaStatus
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
        release=1,
        hook_release=1,
        failure=None,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        updated_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


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
        key=f"e1/{service}/{index}",
        environment_id="e1",
        service=service,
        index=index,
        release=release,
        pid=pid,
        alive=alive,
        exit_code=exit_code,
        started_at=started_at,
    )


READY = plans.Observed(unpacked=True, resources=frozenset({"db"}))
RUNNING = replace(
    READY,
    processes=(proc("web", 0, pid=10), proc("worker", 0, pid=11)),
    health={10: (True, "GET /healthz -> 200")},
    ports={("web", 0): 20001},
)


@pytest.mark.parametrize(
    ("env", "observed", "actions", "phase"),
    [
        (environment(build_id=None), READY, [plans.Build("feature-x")], Phase.BUILDING),
        (
            environment(),
            replace(READY, unpacked=False),
            [plans.Unpack("sha256:" + "a" * 64, 1)],
            Phase.PROVISIONING,
        ),
        (
            environment(),
            replace(READY, resources=frozenset()),
            [plans.Provision("db", "postgres")],
            Phase.PROVISIONING,
        ),
        (
            environment(hook_release=0),
            READY,
            [plans.RunHook(1, "python -m migrate")],
            Phase.PROVISIONING,
        ),
        (
            environment(),
            READY,
            [plans.StartReplica("web", 0), plans.StartReplica("worker", 0)],
            Phase.STARTING,
        ),
        (environment(), RUNNING, [], Phase.RUNNING),
        (environment(failure="build failed"), READY, [], Phase.FAILED),
    ],
    ids=["build", "unpack", "provision", "hook", "start", "converged", "failed"],
)
def test_create_steps(env, observed, actions, phase):
    plan = plans.plan_environment(env, None if env.build_id is None else SPEC, observed, now=NOW)
    assert plan.actions == actions
    assert plan.phase == phase


def test_unpack_and_provision_are_planned_together():
    fresh = plans.Observed(unpacked=False, resources=frozenset())
    plan = plans.plan_environment(environment(), SPEC, fresh, now=NOW)
    assert plan.actions == [
        plans.Unpack("sha256:" + "a" * 64, 1),
        plans.Provision("db", "postgres"),
    ]
    assert all(isinstance(a, plans.CONCURRENT) for a in plan.actions)


def test_converged_plan_is_empty_and_stable():
    first = plans.plan_environment(environment(), SPEC, RUNNING, now=NOW)
    again = plans.plan_environment(environment(replicas=first.replicas), SPEC, RUNNING, now=NOW)
    assert first.actions == again.actions == []
    assert again.replicas == first.replicas
    web = next(r for r in first.replicas if r.service == "web")
    assert (web.state, web.port, web.pid) == ("healthy", 20001, 10)


def test_unhealthy_replica_is_starting_then_degraded_after_grace():
    observed = replace(RUNNING, health={10: (False, "GET /healthz -> 503")})
    plan = plans.plan_environment(environment(), SPEC, observed, now=NOW)
    assert plan.phase == Phase.STARTING and plan.actions == []
    late = plans.plan_environment(environment(), SPEC, observed, now=NOW + 120)
    assert late.phase == Phase.DEGRADED
    assert "not healthy after 60s: GET /healthz -> 503" in late.message


def test_crash_backs_off_exponentially_then_restarts():
    crashed = replace(
        RUNNING,
        processes=(proc("web", 0, pid=10, alive=False, exit_code=3), proc("worker", 0, pid=11)),
    )
    env = environment(
        replicas=plans.plan_environment(environment(), SPEC, RUNNING, now=NOW).replicas
    )
    plan = plans.plan_environment(env, SPEC, crashed, now=NOW)
    assert plan.actions == [plans.Forget("e1/web/0")]
    assert plan.phase == Phase.DEGRADED
    assert "exited with code 3" in plan.message
    web = next(r for r in plan.replicas if r.service == "web")
    assert (web.state, web.restarts, web.retry_at) == ("backoff", 1, NOW + 0.5)

    gone = replace(RUNNING, processes=(proc("worker", 0, pid=11),))
    waiting = plans.plan_environment(
        replace(env, replicas=plan.replicas), SPEC, gone, now=NOW + 0.2
    )
    assert waiting.actions == []
    due = plans.plan_environment(replace(env, replicas=plan.replicas), SPEC, gone, now=NOW + 0.6)
    assert due.actions == [plans.StartReplica("web", 0)]


def test_adopted_process_that_vanished_counts_as_a_crash():
    before = plans.plan_environment(environment(), SPEC, RUNNING, now=NOW).replicas
    gone = replace(RUNNING, processes=(proc("worker", 0, pid=11),))
    plan = plans.plan_environment(environment(replicas=before), SPEC, gone, now=NOW)
    web = next(r for r in plan.replicas if r.service == "web")
    assert web.state == "backoff" and web.last_exit == "exited"


@pytest.mark.parametrize("restarts,delay", [(1, 0.5), (2, 1), (3, 2), (6, 16), (7, 30), (50, 30)])
def test_backoff(restarts, delay):
    assert plans.backoff(restarts) == delay


def test_replicas_follow_kind_overrides_and_extra_processes_stop():
    prod = environment(kind=Kind.PRODUCTION)
    plan = plans.plan_environment(prod, SPEC, READY, now=NOW)
    assert plans.StartReplica("web", 1) in plan.actions
    extra = replace(RUNNING, processes=(*RUNNING.processes, proc("web", 1, pid=12)))
    plan = plans.plan_environment(environment(), SPEC, extra, now=NOW)
    assert plan.actions == [plans.StopProcess("e1/web/1", "no longer in the spec")]


def test_process_of_another_release_is_replaced():
    old = replace(
        RUNNING, processes=(proc("web", 0, pid=10, release="v0"), proc("worker", 0, pid=11))
    )
    plan = plans.plan_environment(environment(), SPEC, old, now=NOW)
    assert plan.actions == [
        plans.StopProcess("e1/web/0", "runs v0, not v1"),
        plans.StartReplica("web", 0),
    ]


def test_teardown_stops_everything_then_removes():
    dying = environment(desired=Desired.DELETED)
    observed = replace(
        RUNNING, processes=(proc("web", 0, pid=10), proc("worker", 0, pid=11, alive=False))
    )
    plan = plans.plan_environment(dying, SPEC, observed, now=NOW)
    assert plan.actions == [
        plans.StopProcess("e1/web/0", "environment destroyed"),
        plans.Forget("e1/worker/0"),
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
    plan = plans.plan_environment(environment(hook_release=0), SPEC, observed, now=NOW)
    assert plan.actions == actions
    assert plan.phase == Phase.PROVISIONING


def test_hook_processes_are_not_replicas():
    done = replace(
        RUNNING, processes=(*RUNNING.processes, proc("_hook", 1, pid=20, alive=False, exit_code=0))
    )
    plan = plans.plan_environment(environment(), SPEC, done, now=NOW)
    assert plan.actions == [plans.Forget(HOOK)]
    assert {(r.service, r.index) for r in plan.replicas} == {("web", 0), ("worker", 0)}


def test_redact_hides_resource_addresses_and_their_passwords():
    from laneway.core.redaction import redact

    url = "postgresql://lw_x_e1_db:s3cretpassw0rd@127.0.0.1:5432/lw_x_e1_db"
    text = f"connecting to {url}\nauth failed for password s3cretpassw0rd"
    out = redact(text, [url, "sqlite:////tmp/x.db"])
    assert "s3cretpassw0rd" not in out and url not in out
    assert out.count("***") == 2
