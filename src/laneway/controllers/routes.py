"""The routing controller: keeps the router process running and its table equal to the store's.

The built-in router runs as a process of its own (labelled like app processes, so it outlives
a control-plane restart and keeps serving the last table meanwhile). This module computes the
table (core.routing) from the environments' observed replicas and hands it to the driver.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable

from laneway.controllers.context import Context
from laneway.controllers.specs import NotParsed
from laneway.core import routing
from laneway.core.environments import backoff
from laneway.core.measurements import Measurement
from laneway.core.rollouts import Side
from laneway.core.types import Environment, Phase
from laneway.router.base import RouterDriver, SupervisingDriver
from laneway.router.driver import BuiltinRouterDriver, applied_path
from laneway.router.haproxy import HAProxyDriver
from laneway.runtime.base import ProcessSpec
from laneway.runtime.local import labels
from laneway.spec.model import Spec

log = logging.getLogger("laneway.router")

ROUTER_ENVIRONMENT = "_router"
ROUTER_KEY = f"{ROUTER_ENVIRONMENT}/router/0"


CONFIRM_TIMEOUT = 2.0
"""Seconds one pass waits for the router to say it serves a new table; a release is called
live only once it has, so a pass that times out leaves it to the next."""


def _builtin(controller: RouterController) -> RouterDriver:
    return BuiltinRouterDriver(controller.table_file, pid=controller.router_pid)


def _haproxy(controller: RouterController) -> RouterDriver:
    settings = controller.ctx.settings
    return HAProxyDriver(
        listen=(settings.router.host, settings.router.port),
        directory=settings.state_dir / "haproxy",
        env=labels(settings.owner, ROUTER_KEY, controller.label),
    )


DATA_PLANES: dict[str, Callable[[RouterController], RouterDriver]] = {
    "builtin": _builtin,
    "haproxy": _haproxy,
}
"""LANEWAY_ROUTER_DATA_PLANE -> the driver that realizes routing tables."""


class RouterController:
    def __init__(
        self,
        ctx: Context,
        *,
        driver: RouterDriver | None = None,
        confirm_timeout: float = CONFIRM_TIMEOUT,
    ) -> None:
        self.ctx = ctx
        self.table_file = ctx.settings.state_dir / "routes.json"
        self.driver: RouterDriver = driver or DATA_PLANES[ctx.settings.router_data_plane](self)
        self.confirm_timeout = confirm_timeout
        self.table: routing.RoutingTable | None = None
        self._version = int(ctx.clock() * 1000)
        self._adopted: int | None = None
        self._failures = 0
        self._next_start = 0.0

    @property
    def listen(self) -> str:
        host, port = self.ctx.settings.router
        return f"{host}:{port}"

    @property
    def label(self) -> str:
        """What the router process is labelled with: its address and the limits it was
        given (or `haproxy`), so that a server started with other LANEWAY_ROUTER_* values
        replaces it."""
        if self.ctx.settings.router_data_plane == "haproxy":
            return f"{self.listen} haproxy"
        return self.listen + self._limit_flags()

    def router_pid(self) -> int | None:
        """The router's pid once it is ready for SIGHUP: a signal sent while it still starts
        would kill it, so until it has written `.applied` it finds the table by itself."""
        if isinstance(self.driver, SupervisingDriver):
            return self.driver.master_pid()
        if not applied_path(self.table_file).exists():
            return None
        for process in self.ctx.runtime.list_processes(ROUTER_ENVIRONMENT):
            if process.key == ROUTER_KEY and process.alive:
                return process.pid
        return None

    def ensure_router(self) -> int | None:
        """Start the router if it is not running with this instance's address and limits;
        adopt it if it is. A router that keeps exiting (its port taken, say) is restarted
        with backoff."""
        runtime = self.ctx.runtime
        if isinstance(self.driver, SupervisingDriver):
            for process in runtime.list_processes(ROUTER_ENVIRONMENT):
                if process.alive and process.release != self.label:
                    log.info("router: replacing pid %s (%s)", process.pid, process.release)
                    runtime.stop_process(process.key, timeout=5)
            return self.driver.ensure_running()
        for process in runtime.list_processes(ROUTER_ENVIRONMENT):
            if process.alive and process.release == self.label:
                if self._adopted != process.pid:
                    log.info("router: running as pid %s on %s", process.pid, self.listen)
                    self._adopted = process.pid
                if applied_path(self.table_file).exists():
                    self._failures = 0
                return process.pid
            if process.alive:
                log.info("router: replacing pid %s (%s)", process.pid, process.release)
                runtime.stop_process(process.key, timeout=5)
            else:
                self._failures += 1
                self._next_start = self.ctx.clock() + backoff(self._failures)
                log.warning(
                    "router: exited with code %s: %s; starting again in %gs",
                    process.exit_code,
                    self._last_log_line(),
                    backoff(self._failures),
                )
                runtime.forget(process.key)
        if self.ctx.clock() < self._next_start:
            return None
        applied_path(self.table_file).unlink(missing_ok=True)
        if not self.table_file.exists():
            self.driver.apply(self.table or routing.RoutingTable(version=0))
        info = runtime.start_process(
            ProcessSpec(
                environment_id=ROUTER_ENVIRONMENT,
                service="router",
                index=0,
                release=self.label,
                command=f"exec {sys.executable} -m laneway.router --listen {self.listen} "
                f"--table {self.table_file}{self._limit_flags()}",
                cwd=self.ctx.settings.home,
                env={"PATH": "/usr/bin:/bin", **_import_path()},
                log_path=self.ctx.settings.logs_dir / "router.log",
            )
        )
        log.info("router: started pid %s on %s", info.pid, self.listen)
        return info.pid

    def _limit_flags(self) -> str:
        """The router limits the settings give (LANEWAY_ROUTER_*), as its flags."""
        limits = self.ctx.settings.router_limits
        return "".join(f" --{name.replace('_', '-')} {value}" for name, value in limits.items())

    def _last_log_line(self) -> str:
        path = self.ctx.settings.logs_dir / "router.log"
        try:
            lines = path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        return lines[-1] if lines else "no output"

    def refresh_from_store(self) -> bool:
        """Recompute the table from the store's environments; apply it if it changed."""
        return self.refresh(*self._read_store())

    async def refresh_off_loop(self) -> bool:
        """`refresh_from_store`, any spec not parsed yet parsed in a worker thread first.

        The read and the refresh stay one step on the loop, so a table is never computed
        from a read older than the one before it."""
        while True:
            try:
                return self.refresh(*self._read_store(parse=False))
            except NotParsed:
                await asyncio.to_thread(self._read_store)

    def _read_store(
        self, *, parse: bool = True
    ) -> tuple[list[Environment], dict[str, dict[int, Spec]]]:
        environments = self.ctx.store.list_environments()
        specs = self.ctx.specs
        return environments, {e.id: specs.generation_specs(e, parse=parse) for e in environments}

    async def confirm(self) -> bool:
        """Refresh the table and wait (bounded) until the router says it serves it."""
        await self.refresh_off_loop()
        table = self.table
        deadline = asyncio.get_running_loop().time() + self.confirm_timeout
        while table is not None and self.driver.verify(table) is not True:
            if asyncio.get_running_loop().time() >= deadline:
                log.warning("router: table v%s not confirmed yet", table.version)
                return False
            await asyncio.sleep(0.002)
        return True

    async def counters_for(
        self, environment: Environment
    ) -> tuple[dict[str, Measurement] | None, float | None]:
        """The environment's route's counts per release label, read from the data plane in
        a thread (None if it cannot be asked now), and when the data plane began counting
        (None if it does not say): another start means the counts began again."""
        taken = await asyncio.to_thread(self.driver.read_snapshot)
        if taken is None:
            return None, None
        counts, epoch = taken.counters, taken.started
        hostname = routing.hostname_for(
            environment.app, environment.name, domain=self.ctx.settings.domain
        )
        return {release: m for (host, release), m in counts.items() if host == hostname}, epoch

    def refresh(self, environments: list[Environment], specs: dict[str, dict[int, Spec]]) -> bool:
        """Apply the table if it changed; True when a new table was written.

        `specs` holds each environment's generations' specs: a pool is the healthy
        replicas of the routed service of one generation, weighted as its rollout says."""
        inputs = []
        for environment in environments:
            if environment.phase == Phase.DELETING:
                continue
            pools = pools_of(environment, specs.get(environment.id, {}))
            split = split_of(environment) if len(pools) > 1 else routing.Stickiness()
            inputs.append(routing.RouteInput(environment.app, environment.name, pools, split))
        candidate = routing.compute_routing_table(
            inputs, version=self._version, domain=self.ctx.settings.domain
        )
        if self.table is not None and self.table.same_routes(candidate):
            return False
        self._version += 1
        self.table = routing.compute_routing_table(
            inputs, version=self._version, domain=self.ctx.settings.domain
        )
        self.driver.apply(self.table)
        return True


def pools_of(environment: Environment, specs: dict[int, Spec]) -> tuple[routing.Pool, ...]:
    """The pools its rollout status gives: the canary first (it takes the lowest buckets,
    so a rising weight only moves clients onto it), then stable; a pool of weight 0 is
    left out, so a canary at 0 costs the router nothing."""
    status = environment.rollout
    stable, canary = status.stable, status.canary
    weights: list[tuple[Side, int, str]] = []
    if canary is not None and (stable is None or canary.generation != stable.generation):
        weight = status.weight if stable is not None else routing.WEIGHT_SCALE
        if status.weight > 0:
            # alone, it is simply what serves: the table stays the same once it is promoted
            role = routing.CANARY if weight < routing.WEIGHT_SCALE else routing.STABLE
            weights.append((canary, weight, role))
        if stable is not None and weight < routing.WEIGHT_SCALE:
            weights.append((stable, routing.WEIGHT_SCALE - weight, routing.STABLE))
    elif stable is not None:
        weights.append((stable, routing.WEIGHT_SCALE, routing.STABLE))
    return tuple(
        routing.Pool(side.label, weight, _backends(environment, specs, side), role)
        for side, weight, role in weights
    )


def _backends(
    environment: Environment, specs: dict[int, Spec], side: Side
) -> tuple[routing.Backend, ...]:
    spec = specs.get(side.generation)
    service = spec.routed_service() if spec is not None else "web"
    return tuple(
        routing.Backend("127.0.0.1", replica.port)
        for replica in environment.replicas
        if replica.service == service
        and replica.release == side.label
        and replica.state.up
        and replica.port
    )


def split_of(environment: Environment) -> routing.Stickiness:
    """Each rollout turns the buckets its own way, so its first clients are not always the
    same ones; a user-id header or cookie from its strategy keeps a user on one side."""
    status = environment.rollout
    canary = status.canary
    if canary is None:
        return routing.Stickiness()
    return routing.Stickiness(
        offset=routing.bucket_of(f"{environment.id}/v{canary.release}".encode()),
        hash_header=status.strategy.sticky_header,
        hash_cookie=status.strategy.sticky_cookie,
    )


def _import_path() -> dict[str, str]:
    """The server's PYTHONPATH, if it has one: the router runs the laneway its server runs
    (a server started from a source tree finds no installed one)."""
    path = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": path} if path else {}
