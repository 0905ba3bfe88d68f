"""What to do next for one environment: `plan_environment(environment, generations, observed)`.

Pure: no I/O. The controller observes the store and the runtime, asks this module for a plan,
applies its actions in order, and writes the returned replica statuses and phase. A converged
environment plans no action, so a second pass (or a pass after a crash at any point) does
nothing twice.

Processes belong to a **generation**: the number of the release that started them (`v3`).
A deploy (new build or new config) starts a new generation beside the live one:

    Build -> Unpack with Provision (each resource) -> RunHook -> StartReplica (each, new
    generation) -> all healthy: `Plan.ready` -> (core.rollouts moves traffic: the new
    generation becomes stable) -> the old one is kept warm for the spec's `keep_warm`,
    then StopProcess (each) -> Retire

Traffic is not this module's: it says whether the generation being rolled out may take
traffic (`ready`) or cannot (`failing`, with the replica to blame), and `core.rollouts`
decides the weights. A rollback inside the warm window targets the warm generation, whose
replicas are healthy already, so it is ready at once.

Destroy: StopProcess (each) -> DestroyResources -> RemoveFiles -> DeleteRecord
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from laneway.core import scaling, slots
from laneway.core.actions import (
    CONCURRENT,
    Action,
    Build,
    DeleteRecord,
    DestroyResources,
    Forget,
    HookDone,
    Provision,
    RemoveFiles,
    Retire,
    RunHook,
    StartReplica,
    StopProcess,
    Unpack,
)
from laneway.core.process_env import compose_env
from laneway.core.types import (
    Desired,
    Environment,
    Phase,
    ProcessInfo,
    ReplicaState,
    ReplicaStatus,
    ResourceType,
)
from laneway.spec.model import Spec

__all__ = [
    "CONCURRENT",
    "Action",
    "Build",
    "DeleteRecord",
    "DestroyResources",
    "Forget",
    "Generation",
    "HookDone",
    "Observed",
    "Plan",
    "Provision",
    "RemoveFiles",
    "Retire",
    "RunHook",
    "StartReplica",
    "StopProcess",
    "Unpack",
    "compose_env",
    "plan_environment",
]

RESTART_BACKOFF_MAX = 30.0
COMMIT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
HOOK_SERVICE = "_hook"  # not a DNS label, so no service of a spec can be named so
RUN_SERVICE = "_run"
"""The service label of a one-off process (`laneway run`): a job, never a replica. The API
that started it watches and stops it; the reconciler leaves it alone."""
JOBS = (HOOK_SERVICE, RUN_SERVICE)
HOOK_TIMEOUT = 600.0
HEALTHY_RESETS_BACKOFF_AFTER = 60.0
DEPLOY_CRASH_LIMIT = 3
"""Restarts of one new replica after which a deploy gives up (traffic stays where it is)."""
RUNNING_AFTER = 3.0
"""Seconds a replica without a health check must stay up before a deploy counts on it: one
that crashes at start would otherwise look ready, and take traffic from a good release."""
SETTLE = 2.0
"""Seconds the previous generation keeps running after a switch even with `keep_warm: 0s`,
so requests the router sent it just before the switch are served."""


@dataclass(frozen=True)
class Generation:
    """What the processes of one generation run: the build, its spec, and the drain time."""

    number: int
    build_id: str
    spec: Spec
    replicas: Mapping[str, int] = field(default_factory=dict)
    """Counts set by `laneway scale` for the release this generation serves, over the spec's."""
    restarts: Mapping[str, float] = field(default_factory=dict)
    """Service -> time: its replicas started before then are replaced one at a time."""


@dataclass(frozen=True)
class Observed:
    unpacked: frozenset[int]
    """Generations whose directory holds their unpacked build."""
    resources: frozenset[str]
    processes: tuple[ProcessInfo, ...] = ()
    health: dict[int, tuple[bool, str]] = field(default_factory=dict)
    """Latest probe per pid: (healthy, detail)."""
    ports: dict[tuple[int, str, int], int] = field(default_factory=dict)
    """Leased port per (generation, service, index)."""
    hook_exit: int | None = None
    """Exit status the current release's hook left in its exit file, if it has ended."""
    leased: frozenset[int] = frozenset()
    """Generations holding port leases."""


@dataclass(frozen=True)
class Failing:
    """Why the generation being rolled out cannot take traffic, and whose log explains it."""

    reason: str
    service: str | None = None
    index: int = 0


@dataclass(frozen=True)
class Plan:
    actions: list[Action]
    replicas: tuple[ReplicaStatus, ...]
    phase: Phase
    message: str
    ready: bool = False
    """The wanted generation's replicas may take traffic."""
    failing: Failing | None = None
    """It cannot, while another generation serves: the rollout is to be aborted."""


def backoff(restarts: int) -> float:
    return min(0.5 * 2.0 ** max(restarts - 1, 0), RESTART_BACKOFF_MAX)


def generation_of(release_label: str) -> int:
    """`v3` -> 3; anything else -> 0 (no generation)."""
    digits = release_label[1:]
    return int(digits) if release_label.startswith("v") and digits.isdigit() else 0


def plan_environment(
    environment: Environment,
    generations: dict[int, Generation],
    observed: Observed,
    *,
    now: float,
) -> Plan:
    """`generations` holds the target's, the live one's and the warm one's (when they have a
    build); a target without one is built first."""
    if environment.desired == Desired.DELETED:
        return _plan_teardown(environment, observed)
    if environment.failure:
        return Plan([], environment.replicas, Phase.FAILED, environment.failure)
    target_no = environment.target_generation
    live_no = environment.live
    previous = {(r.release, r.service, r.index): r for r in environment.replicas}

    actions: list[Action] = []
    statuses: list[ReplicaStatus] = []
    live = generations.get(live_no) if live_no != target_no else None
    if live is not None:
        # the live generation keeps being supervised while the next one is prepared
        live_actions, live_statuses = _plan_generation(
            environment, live, observed, previous, now=now
        )
        actions += live_actions
        statuses += live_statuses

    if environment.rollout.aborted is not None and live is not None:
        # an abort under way: the canary is brought no further; its processes stay until
        # the router sends it no client (core.rollouts), then they are leftovers
        message = f"aborting v{environment.release}; v{environment.live} serves"
        step = Plan([], (), Phase.DEPLOYING, message)
    else:
        step = _plan_target(environment, generations.get(target_no), observed, previous, now=now)
    actions += step.actions
    statuses += step.replicas
    newest = generations.get(target_no) or live
    drain = newest.spec.drain_for(str(environment.kind)) if newest else 10.0
    actions += _plan_leftovers(
        environment, observed, keep={target_no, live_no}, now=now, drain=drain
    )
    return Plan(
        actions, tuple(statuses), step.phase, step.message, ready=step.ready, failing=step.failing
    )


def _plan_target(
    environment: Environment,
    target: Generation | None,
    observed: Observed,
    previous: dict[tuple[str, str, int], ReplicaStatus],
    *,
    now: float,
) -> Plan:
    """The steps that bring the target generation up, then switch traffic to it."""
    serving = environment.live != 0 and environment.live != environment.target_generation
    busy = Phase.DEPLOYING if serving else Phase.PROVISIONING
    after = f"; v{environment.live} serves meanwhile" if serving else ""
    if target is None:
        return Plan(
            [Build(environment.ref or environment.branch or "HEAD")],
            (),
            Phase.DEPLOYING if serving else Phase.BUILDING,
            f"building {_source(environment)}{after}",
        )
    spec = target.spec
    missing: list[Action] = [
        Provision(name, ResourceType(resource.type))
        for name, resource in spec.resources.items()
        if name not in observed.resources
    ]
    if target.number not in observed.unpacked:
        return Plan(
            [Unpack(target.build_id, target.number), *missing],
            (),
            busy,
            "unpacking the build" + ("" if not missing else " and provisioning resources") + after,
        )
    if missing:
        names = ", ".join(a.name for a in missing if isinstance(a, Provision))
        return Plan(missing, (), busy, f"provisioning {names}{after}")
    if (
        spec.hooks.release
        and environment.hook_release < environment.release
        and target.number == environment.release
    ):
        hook = _plan_hook(environment, spec.hooks.release, observed, now=now)
        return replace(hook, phase=busy, message=hook.message + after)

    actions, statuses = _plan_generation(
        environment, target, observed, previous, now=now, settle=RUNNING_AFTER if serving else 0.0
    )
    ready = _ready(statuses, spec, first=not serving)
    if target.number == environment.live and not environment.rollout.rolling:
        phase, message = replicas_phase(statuses)
        return Plan(actions, tuple(statuses), phase, message, ready=ready)
    if ready:
        phase = Phase.DEPLOYING if serving else Phase.STARTING
        return Plan(
            actions, tuple(statuses), phase, f"switching traffic to v{target.number}", ready=True
        )
    failing = _failing(statuses)
    if serving and failing is not None:
        reason = (
            f"v{target.number} did not become healthy: {failing.service}/{failing.index} "
            f"{failing.message}"
        )
        return Plan(
            actions,
            tuple(statuses),
            busy,
            reason,
            failing=Failing(reason, failing.service, failing.index),
        )
    phase, message = replicas_phase(statuses)
    if serving:
        return Plan(actions, tuple(statuses), busy, f"v{target.number}: {message}{after}")
    return Plan(actions, tuple(statuses), phase, message)


def _ready(statuses: list[ReplicaStatus], spec: Spec, *, first: bool) -> bool:
    """Whether traffic may move to these replicas. Replacing a live release needs every new
    replica up; a first release goes live once the routed service is, so that a crashing
    worker leaves the web reachable (the environment then says it is degraded)."""
    routed = spec.routed_service()
    if first and routed is not None:
        web = [s for s in statuses if s.service == routed]
        return bool(web) and all(s.state.up for s in web)
    return all(s.state.up for s in statuses)


def _failing(statuses: list[ReplicaStatus]) -> ReplicaStatus | None:
    for status in statuses:
        if status.state is ReplicaState.UNHEALTHY:
            return status
        if status.state is ReplicaState.BACKOFF and status.restarts >= DEPLOY_CRASH_LIMIT:
            return status
    return None


def hook_key(environment_id: str, release: int) -> str:
    return f"{environment_id}/{HOOK_SERVICE}/{release}"


def _plan_hook(environment: Environment, command: str, observed: Observed, *, now: float) -> Plan:
    """The hook runs as a process of its own (a job): started once, waited for across
    control-plane restarts, its exit status read from the file it leaves behind."""
    release = environment.release
    key = hook_key(environment.id, release)
    process = next((p for p in observed.processes if p.key == key), None)
    waiting = Plan([], (), Phase.PROVISIONING, "running the release hook")
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
    """What is built, named as a person would: the branch, a tag, or `commit 1a2b3c4d5e6f`
    (a deploy of another ref records its commit; the branch it tracks is not what builds)."""
    ref = environment.ref or ""
    if environment.branch and ref in ("", environment.branch):
        return environment.branch
    return described_ref(ref) if ref else "HEAD"


def described_ref(ref: str) -> str:
    """A ref for a message: a commit id as `commit 1a2b3c4d5e6f`, any other ref as it is."""
    return f"commit {ref[:12]}" if COMMIT_ID.fullmatch(ref) else ref


def _plan_teardown(environment: Environment, observed: Observed) -> Plan:
    actions: list[Action] = [
        StopProcess(p.key, "environment destroyed") for p in observed.processes if p.alive
    ]
    actions += [Forget(p.key) for p in observed.processes if not p.alive]
    actions += [DestroyResources(), RemoveFiles(), DeleteRecord()]
    return Plan(actions, (), Phase.DELETING, "destroying")


def _plan_leftovers(
    environment: Environment, observed: Observed, *, keep: set[int], now: float, drain: float
) -> list[Action]:
    """Processes of generations neither targeted nor live: the warm one is left running until
    its time is up, the rest are stopped; a generation with no process left is retired."""
    warm_open = environment.warm not in keep and now < environment.warm_until
    actions: list[Action] = []
    alive: set[int] = set()
    for process in observed.processes:
        if process.service == RUN_SERVICE:
            # a one-off process: its API stream stops and forgets it; its files stay meanwhile
            if process.alive:
                alive.add(generation_of(process.release))
            continue
        if process.service == HOOK_SERVICE:
            pending = environment.hook_release < environment.release
            if not process.alive and not (pending and process.index == environment.release):
                actions.append(Forget(process.key))
            continue
        generation = generation_of(process.release)
        if generation in keep:
            continue
        if not process.alive:
            actions.append(Forget(process.key))
            continue
        if warm_open and generation == environment.warm:
            alive.add(generation)
            continue
        reason = (
            f"v{generation} retired after its warm time"
            if generation and generation == environment.warm
            else f"v{generation} is no longer live"
        )
        actions.append(StopProcess(process.key, reason, timeout=drain))
    keep_files = keep | ({environment.warm} if warm_open else set()) | alive | {0}
    stale = (observed.unpacked | observed.leased) - keep_files
    actions += [Retire(g) for g in sorted(stale) if not _has_alive(observed, g)]
    warm = environment.warm
    if warm and warm not in keep_files | stale and not _has_alive(observed, warm):
        actions.append(Retire(warm))  # its files are gone already; this forgets it
    return actions


def _has_alive(observed: Observed, generation: int) -> bool:
    return any(
        p.alive and generation_of(p.release) == generation and p.service not in JOBS
        for p in observed.processes
    )


def _plan_generation(
    environment: Environment,
    generation: Generation,
    observed: Observed,
    previous: dict[tuple[str, str, int], ReplicaStatus],
    *,
    now: float,
    settle: float = 0.0,
) -> tuple[list[Action], list[ReplicaStatus]]:
    """Supervise the replicas of one generation: start the missing, restart the crashed (with
    backoff), stop those its spec no longer has; and say how each one is. A replica without a
    health check is `running` once it has been up `settle` seconds."""
    spec = generation.spec
    drain = spec.drain_for(str(environment.kind))
    label = f"v{generation.number}"
    mine = [
        p
        for p in observed.processes
        if p.service not in JOBS and generation_of(p.release) == generation.number
    ]
    by_slot = {(p.service, p.index): p for p in mine}
    counts = scaling.counts(spec, str(environment.kind), generation.replicas)
    recorded = {(s.service, s.index): s.state for s in previous.values() if s.release == label}
    wanted, replaced = slots.wanted(counts, generation.restarts, by_slot, recorded)
    actions: list[Action] = []
    statuses: list[ReplicaStatus] = []

    for slot in wanted:
        service, index = slot
        status = previous.get(
            (label, service, index), ReplicaStatus(service=service, index=index, release=label)
        )
        process = by_slot.get(slot)
        check = spec.services[service].health
        checked = check is not None
        if process is not None and process.alive:
            healthy, detail = observed.health.get(process.pid, (not checked, "not probed yet"))
            restarts = status.restarts
            if healthy and now - process.started_at > HEALTHY_RESETS_BACKOFF_AFTER:
                restarts = 0
            state = ReplicaState.HEALTHY if checked else ReplicaState.RUNNING
            message = ""
            up = now - process.started_at
            if not checked and up < settle:
                # no ticking number: a message that changes every pass is an event every pass
                state = ReplicaState.STARTING
                message = f"counted as running once up {settle:g}s"
            if not healthy and check is not None:
                grace = check.grace
                overdue = now - process.started_at > grace
                state = ReplicaState.UNHEALTHY if overdue else ReplicaState.STARTING
                message = f"not healthy after {grace:g}s: {detail}" if overdue else detail
            statuses.append(
                replace(
                    status,
                    pid=process.pid,
                    port=observed.ports.get((generation.number, service, index)),
                    state=state,
                    restarts=restarts,
                    retry_at=None,
                    message=message,
                )
            )
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
                    state=ReplicaState.BACKOFF,
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
        actions.append(StartReplica(service, index, generation.number))
        statuses.append(
            replace(status, state=ReplicaState.STARTING, retry_at=None, message="starting")
        )

    wanted_slots = set(wanted)
    for process in mine:
        if (process.service, process.index) in wanted_slots:
            continue
        if not process.alive:
            actions.append(Forget(process.key))
        elif (label, process.service, process.index) not in previous:
            # once recorded without it, the router no longer sends it requests: stop it now
            slot = (process.service, process.index)
            why = "replaced (restart)" if slot in replaced else "no longer wanted (scaled down)"
            actions.append(StopProcess(process.key, why, drain))
    return actions, statuses


def replicas_phase(statuses: list[ReplicaStatus]) -> tuple[Phase, str]:
    troubled = [s for s in statuses if s.state in (ReplicaState.BACKOFF, ReplicaState.UNHEALTHY)]
    if troubled:
        return Phase.DEGRADED, "; ".join(
            f"{s.service}/{s.index} {s.message}"
            + (f" ({counted(s.restarts, 'restart')})" if s.restarts else "")
            for s in troubled
        )
    starting = [s for s in statuses if s.state is ReplicaState.STARTING]
    if starting:
        return Phase.STARTING, "; ".join(
            f"{s.service}/{s.index} {s.message or 'starting'}" for s in starting
        )
    return Phase.RUNNING, f"{counted(len(statuses), 'replica')} running"


def counted(n: int, noun: str) -> str:
    """`1 replica`, `3 replicas`."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
