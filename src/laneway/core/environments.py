"""What to do next for one environment: `plan_environment(desired, observed, now)`. Pure: no I/O.

The controller observes the store and the runtime, asks this module for a plan, applies its
actions in order, and writes the returned replica statuses and phase. A converged environment
plans no action, so a second pass (or a pass after a crash at any point) does nothing twice.

Create:  Build -> Unpack with Provision (each resource) -> RunHook -> StartReplica (each) -> healthy

Actions of one plan that `CONCURRENT` names may run at the same time; the rest run in order.
Destroy: StopProcess (each) -> DestroyResources -> RemoveFiles -> DeleteRecord
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from laneway.core.types import Desired, Environment, Phase, ProcessInfo, ReplicaStatus
from laneway.spec.model import Spec

RESTART_BACKOFF_MAX = 30.0
HOOK_SERVICE = "_hook"  # not a DNS label, so no service of a spec can be named so
HOOK_TIMEOUT = 600.0
HEALTHY_RESETS_BACKOFF_AFTER = 60.0


@dataclass(frozen=True)
class Build:
    ref: str


@dataclass(frozen=True)
class Unpack:
    build_id: str
    release: int


@dataclass(frozen=True)
class Provision:
    name: str
    type: str


@dataclass(frozen=True)
class RunHook:
    release: int
    command: str


@dataclass(frozen=True)
class HookDone:
    """The hook of `release` ended: record success, or fail the environment."""

    release: int
    key: str
    exit_code: int | None
    """None: it did not finish in time (it has been stopped)."""


@dataclass(frozen=True)
class StartReplica:
    service: str
    index: int


@dataclass(frozen=True)
class StopProcess:
    key: str
    reason: str


@dataclass(frozen=True)
class Forget:
    key: str


@dataclass(frozen=True)
class DestroyResources:
    pass


@dataclass(frozen=True)
class RemoveFiles:
    pass


@dataclass(frozen=True)
class DeleteRecord:
    pass


CONCURRENT = (Unpack, Provision)

Action = (
    Build
    | Unpack
    | Provision
    | RunHook
    | HookDone
    | StartReplica
    | StopProcess
    | Forget
    | DestroyResources
    | RemoveFiles
    | DeleteRecord
)


@dataclass(frozen=True)
class Observed:
    unpacked: bool
    resources: frozenset[str]
    processes: tuple[ProcessInfo, ...] = ()
    health: dict[int, tuple[bool, str]] = field(default_factory=dict)
    """Latest probe per pid: (healthy, detail)."""
    ports: dict[tuple[str, int], int] = field(default_factory=dict)
    """Leased port per (service, index)."""
    hook_exit: int | None = None
    """Exit status the current release's hook left in its exit file, if it has ended."""


@dataclass(frozen=True)
class Plan:
    actions: list[Action]
    replicas: tuple[ReplicaStatus, ...]
    phase: Phase
    message: str


def backoff(restarts: int) -> float:
    return min(0.5 * 2 ** max(restarts - 1, 0), RESTART_BACKOFF_MAX)


def desired_replicas(spec: Spec, kind: str) -> list[tuple[str, int]]:
    return [
        (service, index)
        for service in spec.services
        for index in range(spec.replicas_for(service, kind))
    ]


def plan_environment(
    environment: Environment, spec: Spec | None, observed: Observed, *, now: float
) -> Plan:
    if environment.desired == Desired.DELETED:
        return _plan_teardown(environment, observed)
    if environment.failure:
        return Plan([], environment.replicas, Phase.FAILED, environment.failure)
    if environment.build_id is None or spec is None:
        return Plan(
            [Build(environment.ref or environment.branch or "HEAD")],
            environment.replicas,
            Phase.BUILDING,
            f"building {_source(environment)}",
        )
    missing: list[Action] = [
        Provision(name, resource.type)
        for name, resource in spec.resources.items()
        if name not in observed.resources
    ]
    if not observed.unpacked:
        return Plan(
            [Unpack(environment.build_id, environment.release), *missing],
            environment.replicas,
            Phase.PROVISIONING,
            "unpacking the build" + ("" if not missing else " and provisioning resources"),
        )
    if missing:
        return Plan(
            missing,
            environment.replicas,
            Phase.PROVISIONING,
            "provisioning " + ", ".join(a.name for a in missing if isinstance(a, Provision)),
        )
    if spec.hooks.release and environment.hook_release < environment.release:
        return _plan_hook(environment, spec.hooks.release, observed, now=now)
    return _plan_replicas(environment, spec, observed, now=now)


def hook_key(environment_id: str, release: int) -> str:
    return f"{environment_id}/{HOOK_SERVICE}/{release}"


def _plan_hook(environment: Environment, command: str, observed: Observed, *, now: float) -> Plan:
    """The hook runs as a process of its own (a job): started once, waited for across
    control-plane restarts, its exit status read from the file it leaves behind."""
    release = environment.release
    key = hook_key(environment.id, release)
    process = next((p for p in observed.processes if p.key == key), None)
    waiting = Plan([], environment.replicas, Phase.PROVISIONING, "running the release hook")
    if process is not None and process.alive:
        if now - process.started_at > HOOK_TIMEOUT:
            return replace(
                waiting,
                actions=[StopProcess(key, "release hook timed out"), HookDone(release, key, None)],
            )
        return waiting
    code = (
        observed.hook_exit
        if observed.hook_exit is not None
        else (process.exit_code if process is not None else None)
    )
    if code is not None:
        return replace(waiting, actions=[HookDone(release, key, code)])
    # never started, or it vanished with no word of how it ended: run it (hooks are idempotent)
    return replace(waiting, actions=[RunHook(release, command)])


def _source(environment: Environment) -> str:
    ref = environment.ref or ""
    if environment.branch and ref != environment.branch:
        return f"{environment.branch} at {ref[:12]}"
    return environment.branch or ref or "HEAD"


def _plan_teardown(environment: Environment, observed: Observed) -> Plan:
    actions: list[Action] = [
        StopProcess(p.key, "environment destroyed") for p in observed.processes if p.alive
    ]
    actions += [Forget(p.key) for p in observed.processes if not p.alive]
    actions += [DestroyResources(), RemoveFiles(), DeleteRecord()]
    return Plan(actions, (), Phase.DELETING, "destroying")


def _plan_replicas(environment: Environment, spec: Spec, observed: Observed, *, now: float) -> Plan:
    release = environment.release_name
    previous = {(r.service, r.index): r for r in environment.replicas}
    by_slot = {(p.service, p.index): p for p in observed.processes if p.service != HOOK_SERVICE}
    wanted = desired_replicas(spec, str(environment.kind))
    actions: list[Action] = []
    statuses: list[ReplicaStatus] = []

    for slot in wanted:
        service, index = slot
        status = previous.get(slot, ReplicaStatus(service=service, index=index))
        process = by_slot.get(slot)
        checked = spec.services[service].health is not None
        if process is not None and process.alive and process.release == release:
            healthy, detail = observed.health.get(process.pid, (not checked, "not probed yet"))
            restarts = status.restarts
            if healthy and now - process.started_at > HEALTHY_RESETS_BACKOFF_AFTER:
                restarts = 0
            state = "healthy" if checked else "running"
            message = ""
            if not healthy:
                grace = spec.services[service].health.grace  # type: ignore[union-attr]
                overdue = now - process.started_at > grace
                state = "unhealthy" if overdue else "starting"
                message = f"not healthy after {grace:g}s: {detail}" if overdue else detail
            statuses.append(
                replace(
                    status,
                    pid=process.pid,
                    port=observed.ports.get(slot),
                    state=state,
                    restarts=restarts,
                    retry_at=None,
                    message=message,
                )
            )
            continue
        if process is not None and process.alive:
            actions.append(StopProcess(process.key, f"runs {process.release}, not {release}"))
            actions.append(StartReplica(service, index))
            statuses.append(replace(status, pid=None, state="starting", retry_at=None))
            continue
        crashed = process is not None or status.pid is not None
        if process is not None:
            actions.append(Forget(process.key))
        if crashed:
            restarts = status.restarts + 1
            code = process.exit_code if process is not None else None
            exit_text = f"exited with code {code}" if code is not None else "exited"
            statuses.append(
                replace(
                    status,
                    pid=None,
                    state="backoff",
                    restarts=restarts,
                    retry_at=now + backoff(restarts),
                    last_exit=exit_text,
                    message=f"{exit_text}; restarting in {backoff(restarts):g}s",
                )
            )
            continue
        if status.retry_at is not None and status.retry_at > now:
            statuses.append(status)
            continue
        actions.append(StartReplica(service, index))
        statuses.append(replace(status, state="starting", retry_at=None, message="starting"))

    wanted_slots = set(wanted)
    for process in observed.processes:
        if process.service == HOOK_SERVICE:
            if not process.alive:
                actions.append(Forget(process.key))
            continue
        if (process.service, process.index) not in wanted_slots:
            if process.alive:
                actions.append(StopProcess(process.key, "no longer in the spec"))
            else:
                actions.append(Forget(process.key))

    phase, message = replicas_phase(statuses)
    return Plan(actions, tuple(statuses), phase, message)


def replicas_phase(statuses: list[ReplicaStatus]) -> tuple[Phase, str]:
    troubled = [s for s in statuses if s.state in ("backoff", "unhealthy")]
    if troubled:
        return Phase.DEGRADED, "; ".join(
            f"{s.service}/{s.index} {s.message}"
            + (f" ({s.restarts} restarts)" if s.restarts else "")
            for s in troubled
        )
    starting = [s for s in statuses if s.state == "starting"]
    if starting:
        return Phase.STARTING, "; ".join(
            f"{s.service}/{s.index} {s.message or 'starting'}" for s in starting
        )
    return Phase.RUNNING, f"{len(statuses)} replicas running"


def compose_env(
    environment: Environment,
    spec: Spec,
    *,
    service: str | None,
    port: int | None,
    resources: dict[str, str],
    base: dict[str, str],
    app_dir: str | None = None,
) -> dict[str, str]:
    """A process's environment: base < spec env < kind overrides < service env < laneway's own.

    `build.path` entries, resolved in `app_dir`, go in front of the base PATH.
    """
    env = dict(base)
    if app_dir is not None and spec.build.path:
        front = [f"{app_dir.rstrip('/')}/{p.strip('/')}" for p in spec.build.path]
        env["PATH"] = ":".join([*front, env["PATH"]] if env.get("PATH") else front)
    env.update(spec.env_for(str(environment.kind)))
    if service is not None:
        env.update(spec.services[service].env)
    names = spec.resource_env_names()
    for name, value in resources.items():
        if name in names:
            env[names[name]] = value
    env.update(
        {
            "LANEWAY_APP": environment.app,
            "LANEWAY_ENV": environment.name,
            "LANEWAY_ENV_KIND": str(environment.kind),
            "LANEWAY_RELEASE": environment.release_name,
            "LANEWAY_BUILD": environment.build_id or "",
            "LANEWAY_COMMIT": environment.commit or "",
            "LANEWAY_BRANCH": environment.branch or "",
        }
    )
    if port is not None:
        env["PORT"] = str(port)
    return env
