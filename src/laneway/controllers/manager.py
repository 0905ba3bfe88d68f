"""Runs the reconcilers: one worker per environment, the router, and garbage collection.

A worker passes over its environment quickly while it is changing (every 50 ms) and slowly
once it is steady (every second); `wake()` makes it pass at once after an API write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import httpx

from laneway.controllers import gc
from laneway.controllers.context import Context
from laneway.controllers.environments import EnvironmentReconciler
from laneway.controllers.routes import RouterController
from laneway.core.types import Phase
from laneway.errors import LanewayError

log = logging.getLogger("laneway.controllers")

STEADY = (Phase.RUNNING, Phase.FAILED, Phase.DEGRADED)
BUSY_INTERVAL = 0.05
STEADY_INTERVAL = 1.0
GC_INTERVAL = 30.0


class Manager:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.http = httpx.AsyncClient()
        self.reconciler = EnvironmentReconciler(ctx, http=self.http)
        self.router = RouterController(ctx)
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._wakeups: dict[str, asyncio.Event] = {}
        self._wake_manager = asyncio.Event()

    def wake(self, environment_id: str | None = None) -> None:
        if environment_id is not None and environment_id in self._wakeups:
            self._wakeups[environment_id].set()
        self._wake_manager.set()

    async def run(self) -> None:
        await asyncio.to_thread(self._collect_garbage)
        last_gc = self.ctx.clock()
        try:
            while True:
                await self._tick()
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
        self.refresh_routes()

    def refresh_routes(self) -> None:
        environments = self.ctx.store.list_environments()
        specs = {}
        for environment in environments:
            try:
                specs[environment.id] = self.reconciler.spec_of(environment)
            except LanewayError:
                specs[environment.id] = None
        self.router.refresh(environments, specs)

    async def _work(self, environment_id: str) -> None:
        wakeup = self._wakeups[environment_id]
        while True:
            wakeup.clear()
            progressed = False
            try:
                environment, progressed = await self.reconciler.reconcile(environment_id)
            except Exception:
                log.exception("reconciling environment %s failed; retrying", environment_id)
                environment = self.ctx.store.get_environment_by_id(environment_id)
                await asyncio.sleep(STEADY_INTERVAL)
            self.refresh_routes()
            if environment is None:
                self._wakeups.pop(environment_id, None)
                return
            if progressed:
                await asyncio.sleep(0)
                continue
            interval = STEADY_INTERVAL if environment.phase in STEADY else BUSY_INTERVAL
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), interval)

    def _collect_garbage(self) -> None:
        try:
            gc.collect_garbage(self.ctx)
        except LanewayError as exc:
            log.warning("gc: %s", exc)
