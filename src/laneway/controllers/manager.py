"""Runs the reconcilers: one worker per environment, the router, and garbage collection.

A worker passes over its environment quickly while it is changing (every 50 ms) and slowly
once it is steady (every second); `wake()` makes it pass at once after an API write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import httpx

from laneway.controllers import builds, gc, runs
from laneway.controllers.context import Context
from laneway.controllers.environments import EnvironmentReconciler
from laneway.controllers.outcomes import Outcome
from laneway.controllers.routes import RouterController
from laneway.core.environments import backoff
from laneway.core.types import Phase
from laneway.errors import LanewayError

log = logging.getLogger("laneway.controllers")

STEADY = (Phase.RUNNING, Phase.FAILED, Phase.DEGRADED)
BUSY_INTERVAL = 0.05
STEADY_INTERVAL = 1.0
GC_INTERVAL = 30.0
MAX_STREAK = 20  # passes in a row without a pause, so a plan that never settles cannot spin


@dataclass
class Pacing:
    """When a worker passes next: at once after a pass that made progress (at most
    MAX_STREAK in a row), with backoff after a failed one, else on the busy or steady tick.
    Shared by the manager's workers and `laneway up`'s loop."""

    retries: int = 0
    streak: int = 0

    def after(self, outcome: Outcome, phase: Phase) -> float:
        """Seconds to wait before the next pass (0: pass again at once)."""
        if outcome is Outcome.PROGRESSED and self.streak < MAX_STREAK:
            self.retries, self.streak = 0, self.streak + 1
            return 0.0
        self.streak = 0
        if outcome is Outcome.RETRY:
            self.retries += 1
            return backoff(self.retries)
        self.retries = 0
        return STEADY_INTERVAL if phase in STEADY else BUSY_INTERVAL


class Manager:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.http = httpx.AsyncClient()
        self.router = RouterController(ctx)
        self.reconciler = EnvironmentReconciler(
            ctx,
            http=self.http,
            confirm_routes=self.router.confirm,
            counters=self.router.counters_for,
        )
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._wakeups: dict[str, asyncio.Event] = {}
        self._wake_manager = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def wake(self, environment_id: str | None = None) -> None:
        """Make the environment's worker pass now; safe to call from any thread."""
        if self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._wake, environment_id)

    def _wake(self, environment_id: str | None) -> None:
        if environment_id is not None and environment_id in self._wakeups:
            self._wakeups[environment_id].set()
        self._wake_manager.set()

    async def prepare(self) -> None:
        """What a control plane does before it serves: stop the builds a previous one left
        running (their scratch space is gone) and collect what belongs to nothing."""
        for line in await asyncio.to_thread(builds.stop_leftover_builds, self.ctx):
            log.info("stopped a build left running by a previous control plane: %s", line)
        for line in await asyncio.to_thread(runs.stop_leftover_runs, self.ctx):
            log.info("stopped a one-off process left by a previous control plane: %s", line)
        await asyncio.to_thread(self._collect_garbage)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        last_gc = self.ctx.clock()
        try:
            while True:
                try:
                    await self._tick()
                except Exception:
                    log.exception("controller tick failed; trying again")
                if self.ctx.clock() - last_gc > GC_INTERVAL:
                    await asyncio.to_thread(self._collect_garbage)
                    last_gc = self.ctx.clock()
                self._wake_manager.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake_manager.wait(), STEADY_INTERVAL)
        finally:
            for task in self._workers.values():
                task.cancel()
            await asyncio.gather(*self._workers.values(), return_exceptions=True)
            await self.http.aclose()

    async def _tick(self) -> None:
        try:
            await asyncio.to_thread(self.router.ensure_router)
        except LanewayError as exc:
            log.warning("router: %s", exc)
        for environment in self.ctx.store.list_environments():
            task = self._workers.get(environment.id)
            if task is None or task.done():
                self._wakeups[environment.id] = asyncio.Event()
                self._workers[environment.id] = asyncio.create_task(self._work(environment.id))
        await self.refresh_routes()

    async def refresh_routes(self) -> None:
        await self.router.refresh_off_loop()

    async def _work(self, environment_id: str) -> None:
        wakeup = self._wakeups[environment_id]
        pacing = Pacing()
        while True:
            wakeup.clear()
            outcome = Outcome.RETRY
            try:
                result = await self.reconciler.reconcile(environment_id)
                environment, outcome = result.environment, result.outcome
            except Exception:
                log.exception("reconciling environment %s failed; retrying", environment_id)
                environment = self.ctx.store.get_environment_by_id(environment_id)
            try:
                await self.refresh_routes()
            except Exception:
                log.exception("refreshing routes failed; trying again")
            if environment is None:
                self._wakeups.pop(environment_id, None)
                return
            interval = pacing.after(outcome, environment.phase)
            if interval == 0:
                await asyncio.sleep(0)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), interval)

    def _collect_garbage(self) -> None:
        try:
            gc.collect_garbage(self.ctx)
        except LanewayError as exc:
            log.warning("gc: %s", exc)
        except Exception:
            log.exception("gc failed; trying again later")
