"""Test support, shipped: the real reconciler on the real store (SQLite), driven one pass at
a time over a fake runtime, fake resource providers, a fake router driver and a fake clock.

No process, database server or router runs: a pass takes milliseconds, time moves only when
a test moves it, and "the control plane died" is a new reconciler on the same store and the
same (surviving) processes.
"""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx

from laneway.builds.artifacts import ArtifactStore
from laneway.controllers import hooks
from laneway.controllers.context import Context
from laneway.controllers.environments import EnvironmentReconciler
from laneway.controllers.manager import STEADY
from laneway.controllers.outcomes import Outcome, PassResult
from laneway.controllers.routes import RouterController
from laneway.core import environments as plans
from laneway.core import rollouts
from laneway.core.clock import FakeClock
from laneway.core.types import BuildRecord, Desired, Environment, Kind, Release
from laneway.resources.fake import FakeProvider
from laneway.resources.files import DirectoryProvider, SqliteProvider
from laneway.router.fake import FakeRouterDriver
from laneway.runtime.fake import FakeRuntime
from laneway.settings import load_settings
from laneway.store.repository import Store
from laneway.store.vault import Vault

SPEC = """\
app: shop
services:
  web:
    command: serve --port $PORT
    health: {path: /healthz, grace: 5}
  worker:
    command: work
resources:
  db: {type: postgres}
hooks:
  release: migrate
environments:
  staging: {keep_warm: 30s, drain: 5s}
"""

T = TypeVar("T")

STEP = 0.5
"""Seconds the fake clock moves after a pass that made no progress."""


class Killed(BaseException):
    """The control plane died: raised right after an action took effect, before the pass
    recorded anything more. Not an Exception, so nothing on the way catches it."""


class Harness:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.clock = FakeClock()
        self.runtime = FakeRuntime(clock=self.clock)
        self.postgres = FakeProvider("postgres")
        self.driver = FakeRouterDriver()
        settings = load_settings(
            environ={"LANEWAY_HOME": str(root / "home"), "LANEWAY_PORTS": "40000-49999"}
        )
        settings.make_dirs()
        secret = b"0" * 64
        vault = Vault(secret)
        self.store = Store.open(settings.database_url, vault=vault)
        self.ctx = Context(
            settings=settings,
            store=self.store,
            runtime=self.runtime,
            providers={
                "postgres": self.postgres,
                "sqlite": SqliteProvider(settings.environments_dir),
                "directory": DirectoryProvider(settings.environments_dir),
            },
            artifacts=ArtifactStore(root / "artifacts"),
            vault=vault,
            clock=self.clock,
            secret=secret,
        )
        self.store.ensure_app("shop", str(root / "repo"))
        self.loop = asyncio.new_event_loop()
        self.kill_after: int | None = None
        self.applied: list[plans.Action | rollouts.Effect] = []
        self.reconciler = self.restart()

    # the world ------------------------------------------------------------------------

    def restart(self) -> EnvironmentReconciler:
        """A new control plane: fresh in-memory state, the same store and processes."""
        self.ctx.__dict__.pop("specs", None)
        router = RouterController(self.ctx, driver=self.driver, confirm_timeout=0.0)
        http = httpx.AsyncClient(transport=httpx.MockTransport(self._probe))
        harness = self

        class Reconciler(EnvironmentReconciler):
            async def apply(self, *args: Any, **kwargs: Any) -> None:
                await super().apply(*args, **kwargs)
                harness.applied.append(args[2])
                if harness.kill_after is not None and len(harness.applied) >= harness.kill_after:
                    raise Killed()

        self.reconciler = Reconciler(
            self.ctx, http=http, confirm_routes=router.confirm, counters=router.counters_for
        )
        announce = self.reconciler.rolling._announce

        def counted(
            before: Environment,
            after: Environment,
            effects: tuple[rollouts.Effect, ...],
            took: float | None,
        ) -> None:
            """A rollout's step is a point to be killed after too, once saved."""
            announce(before, after, effects, took)
            harness.applied.extend(effects)
            if harness.kill_after is not None and len(harness.applied) >= harness.kill_after:
                raise Killed()

        self.reconciler.rolling._announce = counted  # type: ignore[method-assign]
        self.router = router
        return self.reconciler

    def _probe(self, request: httpx.Request) -> httpx.Response:
        healthy = self.runtime.healthy_on_port(request.url.port or 80)
        if healthy is None:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200 if healthy else 503, request=request)

    def add_build(self, spec: str = SPEC, *, files: dict[str, str] | None = None) -> str:
        """A build made once (as the builder would) and recorded; returns its id."""
        source = self.root / f"src{len(self.store.list_builds())}"
        source.mkdir()
        (source / "laneway.yaml").write_text(spec)
        for name, text in (files or {}).items():
            (source / name).write_text(text)
        build_id = self.ctx.artifacts.put_dir(source, metadata={})
        commit = build_id[7:47]
        self.store.record_build(
            BuildRecord(
                id=build_id,
                app="shop",
                commit=commit,
                ref="main",
                spec_text=spec,
                spec_digest=build_id,
                created_at=datetime.now(UTC),
            )
        )
        return build_id

    def create(self, name: str = "staging", *, build_id: str, kind: Kind = Kind.STAGING) -> str:
        environment = self.store.create_environment(
            app="shop", name=name, kind=kind, branch=None, ref=None, build_id=build_id
        )
        return environment.id

    def deploy(self, environment_id: str, build_id: str, **kwargs: Any) -> Release:
        """A new release of `build_id` (what `laneway deploy --build` writes)."""
        current = self.environment(environment_id)
        _, release = self.store.create_release(
            environment_id,
            expect_release=current.release,
            build_id=build_id,
            commit=build_id[7:47],
            ref=None,
            config_version=0,
            config_sealed=kwargs.pop("config_sealed", ""),
            description=kwargs.pop("description", "deploy"),
            created_by="test",
            **kwargs,
        )
        return release

    def rollback(self, environment_id: str, to: int) -> Release:
        """What `laneway rollback --to vN` writes: vN's build and counts, its warm processes if
        any."""
        environment = self.environment(environment_id)
        earlier = self.store.get_release(environment_id, to)
        assert earlier.build_id is not None
        reuse = earlier.generation if environment.warm == earlier.generation else None
        return self.deploy(
            environment_id,
            earlier.build_id,
            generation=reuse,
            replicas=earlier.replicas,
            description=f"rollback to v{to}",
        )

    def scale(self, environment_id: str, replicas: dict[str, int]) -> Release:
        """What `laneway scale` writes: the same build and config, new counts, served by the
        live generation."""
        environment = self.environment(environment_id)
        assert environment.build_id is not None
        return self.deploy(
            environment_id,
            environment.build_id,
            generation=environment.live or None,
            replicas=replicas,
            description="scale",
        )

    def restart_service(self, environment_id: str, service: str) -> Release:
        """What `laneway restart ENV SERVICE` writes: served by the live generation, whose
        replicas of `service` started before now are replaced one at a time."""
        environment = self.environment(environment_id)
        assert environment.build_id is not None
        current = self.store.get_release(environment_id, environment.release)
        return self.deploy(
            environment_id,
            environment.build_id,
            generation=environment.live,
            replicas=current.replicas,
            restarts={service: self.clock()},
            description=f"restart {service}",
        )

    def restart_all(self, environment_id: str) -> Release:
        """What `laneway restart` writes: the same build, config and counts, a new
        generation, the release hook not run again."""
        environment = self.environment(environment_id)
        assert environment.build_id is not None
        return self.deploy(
            environment_id, environment.build_id, skip_hook=True, description="restart"
        )

    def destroy(self, environment_id: str) -> None:
        self.store.update_environment(environment_id, desired=Desired.DELETED)

    def finish_hooks(self, code: int = 0) -> list[str]:
        """Every release hook that runs ends with `code`, as the wrapped hook would: its exit
        file is written, then its process exits."""
        finished = []
        for process in self.runtime.list_processes():
            if process.service == plans.HOOK_SERVICE and process.alive:
                path = hooks.exit_file(self.ctx, process.environment_id, process.index)
                path.write_text(f"{code}\n")
                self.runtime.crash(process.key, code)
                finished.append(process.key)
        return finished

    # driving --------------------------------------------------------------------------

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def pass_(self, environment_id: str) -> PassResult:
        """One pass of the reconciler."""
        return self.run(self._pass(environment_id))

    async def _pass(self, environment_id: str) -> PassResult:
        result = await self.reconciler.reconcile(environment_id)
        await asyncio.gather(*self.reconciler.builds.under_way, return_exceptions=True)
        return result

    def converge(
        self,
        environment_id: str,
        *,
        hooks_exit: int | None = 0,
        steady: bool = True,
        limit: int = 400,
    ) -> Environment | None:
        """Pass until a pass plans nothing (and, with `steady`, the phase is one a manager
        would pass over slowly: running, degraded, failed), moving the clock by STEP after a
        pass that made no progress and ending running hooks with `hooks_exit` (None: leave
        them running)."""
        for _ in range(limit):
            result = self.pass_(environment_id)
            if result.environment is None:
                return None
            done = not result.actions and result.outcome is not Outcome.RETRY
            if done and (not steady or result.environment.phase in STEADY):
                return result.environment
            if hooks_exit is not None:
                self.finish_hooks(hooks_exit)
            if result.outcome is not Outcome.PROGRESSED or done:
                self.clock.advance(STEP)
        raise AssertionError(
            f"no convergence in {limit} passes: {self.environment(environment_id)}"
        )

    def settle(self, environment_id: str, seconds: float, **kwargs: Any) -> Environment | None:
        """Let `seconds` pass in steps of STEP, passing at each."""
        environment = None
        for _ in range(round(seconds / STEP)):
            self.clock.advance(STEP)
            environment = self.converge(environment_id, steady=False, **kwargs)
        return environment

    # looking --------------------------------------------------------------------------

    def environment(self, environment_id: str) -> Environment:
        environment = self.store.get_environment_by_id(environment_id)
        assert environment is not None
        return environment

    def states(self, environment_id: str) -> dict[str, str]:
        return {r.name: str(r.state) for r in self.store.releases(environment_id)}

    def events(self, environment_id: str, type_: str | None = None) -> list[str]:
        return [
            e.message for e in self.store.events(environment_id) if type_ is None or e.type == type_
        ]

    def alive(self, environment_id: str, *, generation: int | None = None) -> list[str]:
        keys = self.runtime.alive(environment_id)
        if generation is None:
            return keys
        return [k for k in keys if k.endswith(f"/v{generation}")]

    def close(self) -> None:
        self.run(self.reconciler.http.aclose())
        self.loop.run_until_complete(self.loop.shutdown_default_executor())
        self.loop.close()
        self.store.close()


def spec(**changes: str) -> str:
    """SPEC with top-level sections replaced (each value is YAML for that key)."""
    text = SPEC
    for key, value in changes.items():
        start = text.index(f"{key}:")
        rest = text[start:].split("\n")
        end = 1
        while end < len(rest) and rest[end].startswith(" "):
            end += 1
        block = f"{key}:\n" + textwrap.indent(textwrap.dedent(value).strip("\n"), "  ")
        text = text[:start] + block + "\n" + "\n".join(rest[end:]).lstrip("\n")
    return text
