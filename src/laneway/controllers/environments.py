"""The environment reconciler: observe store and runtime, plan (core.environments), apply, record.

Called by `controllers.manager` once per pass for one environment. Blocking work (build,
unpack, database creation, process start and stop) runs in a thread, so the API stays
responsive. An action that fails ends the pass; the next pass plans again from what is.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import httpx

from laneway.controllers import health, hooks
from laneway.controllers.builds import BuildTasks
from laneway.controllers.context import Context
from laneway.controllers.launching import Launcher
from laneway.controllers.outcomes import Outcome, PassResult, PermanentFailure
from laneway.controllers.rolling import ReadCounters, Rolling
from laneway.controllers.specs import NotParsed
from laneway.core import environments as plans
from laneway.core import rollouts
from laneway.core.types import Desired, Environment, EventType, Phase, ReleaseState, ResourceRecord
from laneway.errors import (
    LanewayError,
    NotFound,
    SpecError,
    UnsafeArtifact,
)
from laneway.runtime import logfiles
from laneway.spec.model import Spec

RETRYING = "; retrying: "
STOP_TIMEOUT = 10.0
DEPLOY_RETRY_LIMIT = 600.0
"""Seconds a deploy may keep failing with errors that may pass (a database down, no free
port) before it is aborted; traffic stays on the live release either way."""
LOG_ROTATE_BYTES = 10 * 1024 * 1024


class EnvironmentReconciler:
    def __init__(
        self,
        ctx: Context,
        *,
        http: httpx.AsyncClient,
        confirm_routes: Callable[[], Awaitable[bool]] | None = None,
        counters: ReadCounters | None = None,
    ) -> None:
        self.ctx = ctx
        self.http = http
        self.confirm_routes = confirm_routes or _confirmed
        """Refreshes the routing table and says whether the router serves it yet."""
        self._last_error: dict[str, str] = {}
        self._health: dict[str, health.HealthCache] = {}
        self.builds = BuildTasks(ctx)
        self.launcher = Launcher(ctx)
        self.rolling = Rolling(
            ctx, self.launcher, confirm_routes=self.confirm_routes, counters=counters, http=http
        )
        self.log_clock = logfiles.LogClock()

    async def reconcile(self, environment_id: str) -> PassResult:
        """One pass: observe, plan, apply, record."""
        store = self.ctx.store
        environment = store.get_environment_by_id(environment_id)
        if environment is None:
            return PassResult(None, Outcome.IDLE)
        try:
            checked = self._generations_or_fail(environment, parse=False)
        except NotParsed:  # parsed in a thread, never on the loop
            checked = await asyncio.to_thread(self._generations_or_fail, environment)
        environment, generations = checked
        target = generations.get(environment.target_generation)
        spec = target.spec if target is not None else None
        observed = await self.observe(environment, generations)
        plan = plans.plan_environment(environment, generations, observed, now=self.ctx.clock())
        planned = environment.rollout_version
        plan = await self._confirm_running(environment, plan)
        environment = self._show(environment, plan)
        # a pass whose only step is a build under way made no progress: wait, don't spin
        building = all(isinstance(a, plans.Build) for a in plan.actions)
        outcome = Outcome.IDLE if building else Outcome.PROGRESSED
        current, failed = await self._apply_all(environment, spec, plan)
        if current is None:
            return PassResult(None, Outcome.IDLE, tuple(plan.actions))
        environment = current
        if failed:
            outcome = Outcome.RETRY
        if plan.replicas != environment.replicas and environment.phase != Phase.FAILED:
            environment = store.update_environment(environment.id, replicas=plan.replicas)
        environment, effects, waiting = await self._roll(environment, plan, spec, planned)
        if waiting is not None:
            rollout = environment.rollout
            moving = rollout.canary if rollout.weight > 0 and rollout.aborted is None else None
            serving = moving.generation if moving is not None else environment.live
            phase = Phase.DEPLOYING if environment.live else Phase.STARTING
            environment = self._show(
                environment,
                replace(plan, phase=phase, message=f"waiting for the router to serve v{serving}"),
            )
        if effects:
            outcome = Outcome.PROGRESSED if outcome is Outcome.IDLE else outcome
        await asyncio.to_thread(self._rotate_logs, environment)
        if outcome is not Outcome.RETRY and RETRYING in environment.message:
            # the error is gone: drop its "retrying" note
            environment = store.update_environment(environment.id, message=plan.message)
        return PassResult(environment, outcome, (*plan.actions, *effects))

    def _show(self, environment: Environment, plan: plans.Plan) -> Environment:
        """Record the plan's phase and message, with an event when they change."""
        shown = environment.message.split(RETRYING, 1)[0]
        if plan.phase == environment.phase and plan.message == shown:
            return environment
        store = self.ctx.store
        environment = store.update_environment(
            environment.id, phase=plan.phase, message=plan.message
        )
        store.add_event(environment.id, EventType.PHASE, f"{plan.phase}: {plan.message}")
        return environment

    async def _roll(
        self, environment: Environment, plan: plans.Plan, spec: Spec | None, planned: int
    ) -> tuple[Environment, tuple[rollouts.Effect, ...], str | None]:
        """The rollout's part of the pass (controllers/rolling.py), unless the environment
        failed, or its rollout changed since the plan was made (a new release or an intent
        recorded meanwhile: the plan's `ready` speaks of another release; the next pass
        plans again)."""
        if environment.failure or environment.rollout.canary is None:
            return environment, (), None
        current = self.ctx.store.get_environment_by_id(environment.id)
        if current is None or current.desired != Desired.RUNNING:
            return environment, (), None  # being destroyed: nothing rolls any more
        if current.rollout_version != planned:
            return current, (), None
        environment = current
        keep_warm = plans.SETTLE
        if spec is not None:
            keep_warm = max(spec.keep_warm_for(str(environment.kind)), plans.SETTLE)
        environment, effects, waiting = await self.rolling.step(environment, plan, keep_warm)
        if any(isinstance(e, rollouts.Aborted) for e in effects):
            self._last_error.pop(environment.id, None)
        return environment, effects, waiting

    def _generations_or_fail(
        self, environment: Environment, *, parse: bool = True
    ) -> tuple[Environment, dict[int, plans.Generation]]:
        try:
            return environment, self.ctx.specs.generations(environment, parse=parse)
        except (NotFound, SpecError) as exc:
            failure = f"the stored spec of build {environment.build_id} is unreadable: {exc}"
            environment = self.ctx.store.update_environment(
                environment.id, phase=Phase.FAILED, message=failure, failure=failure
            )
            return environment, {}

    async def _confirm_running(self, environment: Environment, plan: plans.Plan) -> plans.Plan:
        """An environment is called running only once the router says it serves the table
        that routes to its replicas as they are now."""
        announcing = plan.phase == Phase.RUNNING and environment.phase != Phase.RUNNING
        if not announcing:
            return plan
        # the table is computed from the recorded replicas: record them first
        self.ctx.store.update_environment(environment.id, replicas=plan.replicas)
        if await self.confirm_routes():
            return plan
        waiting = Phase.DEPLOYING if environment.warm else Phase.STARTING
        return replace(
            plan, phase=waiting, message=f"waiting for the router to serve v{environment.live}"
        )

    async def _apply_all(
        self, environment: Environment, spec: Spec | None, plan: plans.Plan
    ) -> tuple[Environment | None, bool]:
        """Apply the plan's actions in batches; the first failure ends the pass. Returns the
        environment as recorded after it (None once deleted) and whether an action failed."""
        store = self.ctx.store
        for batch in _batches(plan.actions):
            results = await asyncio.gather(
                *(self.apply(environment, spec, action, plan) for action in batch),
                return_exceptions=True,
            )
            failures = [r for r in results if isinstance(r, BaseException)]
            if failures:
                return self._record_failure(environment, plan, failures[0]), True
            self._last_error.pop(environment.id, None)
            last = batch[-1]
            if isinstance(last, plans.DeleteRecord):
                store.add_event(environment.id, EventType.DELETED, "environment destroyed")
                self._forget(environment.id)
                return None, False
            if isinstance(last, (plans.Build, plans.HookDone, plans.Retire)):
                environment = store.get_environment_by_id(environment.id) or environment
        return environment, False

    def _forget(self, environment_id: str) -> None:
        self._health.pop(environment_id, None)
        self.builds.forget(environment_id)
        self._last_error.pop(environment_id, None)
        self.ctx.specs.forget(environment_id)

    def _record_failure(
        self, environment: Environment, plan: plans.Plan, error: BaseException
    ) -> Environment:
        store = self.ctx.store
        if isinstance(error, PermanentFailure) and environment.deploying:
            return self.rolling.abort(environment, error.message)
        if isinstance(error, PermanentFailure):
            store.add_event(environment.id, EventType.FAILED, error.message)
            store.update_release(
                environment.id,
                environment.release,
                state=ReleaseState.FAILED,
                message=error.message.splitlines()[0],
            )
            return store.update_environment(
                environment.id, phase=Phase.FAILED, message=error.message, failure=error.message
            )
        if not isinstance(error, LanewayError):
            raise error
        if environment.deploying:
            started = store.get_release(environment.id, environment.release).created_at
            if self.ctx.clock() - started.timestamp() > DEPLOY_RETRY_LIMIT:
                # an error that keeps coming back must not hold the environment forever
                return self.rolling.abort(
                    environment,
                    f"gave up after {DEPLOY_RETRY_LIMIT / 60:g} minutes of retrying: "
                    f"{error.message}",
                )
        if self._last_error.get(environment.id) != error.message:
            # the same error again makes no new event: one per distinct error, not per retry
            self._last_error[environment.id] = error.message
            store.add_event(environment.id, EventType.ERROR, error.message)
        message = f"{plan.message}{RETRYING}{error.message}"
        if environment.message == message:
            return environment
        return store.update_environment(environment.id, message=message)

    async def observe(
        self, environment: Environment, generations: dict[int, plans.Generation]
    ) -> plans.Observed:
        ctx = self.ctx
        processes = await asyncio.to_thread(ctx.runtime.list_processes, environment.id)
        observed = tuple(processes)
        leases = ctx.store.leases(environment.id)
        ports = {(lease.generation, lease.service, lease.index): lease.port for lease in leases}
        targets: dict[int, tuple[int, str, float]] = {}
        for p in observed:
            number = plans.generation_of(p.release)
            generation = generations.get(number)
            if generation is None or not p.alive:
                continue
            service = generation.spec.services.get(p.service)
            port = ports.get((number, p.service, p.index))
            if service is not None and service.health is not None and port:
                targets[p.pid] = (port, service.health.path, service.health.timeout)
        cache = self._health.setdefault(environment.id, health.HealthCache(self.ctx.clock))
        results = await cache.probe_all(self.http, targets)
        releases_dir = ctx.release_dir(environment.id, 0).parent
        unpacked = (
            frozenset(
                plans.generation_of(path.name) for path in releases_dir.iterdir() if path.is_dir()
            )
            if releases_dir.is_dir()
            else frozenset()
        )
        return plans.Observed(
            unpacked=unpacked - {0},
            resources=frozenset(r.name for r in ctx.store.resources(environment.id)),
            processes=observed,
            health=results,
            ports=ports,
            hook_exit=hooks.read_exit(self.ctx, environment.id, environment.release),
            leased=frozenset(lease.generation for lease in leases),
        )

    async def apply(
        self,
        environment: Environment,
        spec: Spec | None,
        action: plans.Action,
        plan: plans.Plan | None = None,
    ) -> None:
        ctx = self.ctx
        store = ctx.store
        match action:
            case plans.Build(ref=ref):
                self.builds.step(environment, ref)
            case plans.Unpack(build_id=build_id, release=release):
                target = ctx.release_dir(environment.id, release)
                try:
                    await asyncio.to_thread(ctx.artifacts.unpack, build_id, target)
                except (NotFound, UnsafeArtifact) as exc:
                    raise PermanentFailure(f"cannot unpack build {build_id}: {exc}") from None
                store.add_event(
                    environment.id,
                    EventType.UNPACKED,
                    f"build {build_id[7:19]} unpacked as v{release}",
                )
            case plans.Provision(name=name, type=type_):
                value = await asyncio.to_thread(ctx.providers[type_].ensure, environment.id, name)
                store.put_resource(ResourceRecord(environment.id, name, type_, {"value": value}))
                store.add_event(
                    environment.id, EventType.PROVISIONED, f"{type_} resource {name!r} ready"
                )
            case plans.RunHook(release=release, command=command):
                assert spec is not None
                store.add_event(environment.id, EventType.HOOK, f"release hook: {command}")
                await asyncio.to_thread(
                    self.launcher.start_hook, environment, spec, release, command
                )
            case plans.HookDone():
                assert spec is not None and spec.hooks.release is not None
                self.launcher.finish_hook(environment, action, spec.hooks.release)
            case plans.StartReplica(service=service, index=index, generation=number):
                try:
                    generation = self.ctx.specs.generations(environment, parse=False)[number]
                except NotParsed:
                    generations = await asyncio.to_thread(self.ctx.specs.generations, environment)
                    generation = generations[number]
                info = await asyncio.to_thread(
                    self.launcher.start_replica, environment, generation, service, index
                )
                store.add_event(
                    environment.id,
                    EventType.STARTED,
                    f"{service}/{index} of v{number} started (pid {info.pid})",
                )
            case plans.StopProcess(key=key, reason=reason, timeout=timeout):
                await asyncio.to_thread(ctx.runtime.stop_process, key, timeout=timeout)
                name = "/".join(key.split("/")[1:3])
                store.add_event(environment.id, EventType.STOPPED, f"{name} stopped: {reason}")
            case plans.Retire(generation=generation):
                await asyncio.to_thread(
                    remove_release_dir, ctx.release_dir(environment.id, generation)
                )
                await asyncio.to_thread(self.launcher.remove_tails, environment, generation)
                store.retire_generation(environment.id, generation)
            case plans.Forget(key=key):
                ctx.runtime.forget(key)
            case plans.DestroyResources():
                await self._destroy_resources(environment, spec)
            case plans.RemoveFiles():
                await asyncio.to_thread(remove_environment_files, ctx, environment.id)
                self.log_clock.forget(ctx.log_dir(environment.id))
                store.release_ports(environment.id)
            case plans.DeleteRecord():
                store.delete_environment_record(environment.id)

    async def _destroy_resources(self, environment: Environment, spec: Spec | None) -> None:
        """Only the kinds this environment has: an unreachable server of a kind it never
        used must not block its destroy."""
        store, providers = self.ctx.store, self.ctx.providers
        types: set[str] = {r.type for r in store.resources(environment.id)}
        types |= {r.type for r in spec.resources.values()} if spec else set()
        for provider in sorted(types & providers.keys()):
            await asyncio.to_thread(providers[provider].destroy_all, environment.id)
        for record in store.resources(environment.id):
            store.remove_resource(environment.id, record.name)

    def _rotate_logs(self, environment: Environment) -> None:
        directory = self.ctx.log_dir(environment.id)
        logfiles.rotate(directory, max_bytes=LOG_ROTATE_BYTES)
        self.log_clock.sample(directory, now=self.ctx.clock())


async def _confirmed() -> bool:
    return True


def _batches(actions: list[plans.Action]) -> list[list[plans.Action]]:
    """Consecutive concurrent actions (unpack, provision) form one batch; others run alone."""
    batches: list[list[plans.Action]] = []
    for action in actions:
        if (
            batches
            and isinstance(action, plans.CONCURRENT)
            and isinstance(batches[-1][-1], plans.CONCURRENT)
        ):
            batches[-1].append(action)
        else:
            batches.append([action])
    return batches


def remove_release_dir(path: Path) -> None:
    """A retired generation's files. A development release's directory is a link to the
    work tree (controllers/development.py): the link goes, never what it points to."""
    if path.is_symlink():
        path.unlink()
    else:
        shutil.rmtree(path, ignore_errors=True)


def remove_environment_files(ctx: Context, environment_id: str) -> None:
    shutil.rmtree(ctx.settings.environments_dir / environment_id, ignore_errors=True)
    shutil.rmtree(ctx.log_dir(environment_id), ignore_errors=True)
