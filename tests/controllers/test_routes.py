"""The routing controller over the fake driver: the table it computes from the store, and
the confirmation a release waits for."""

from __future__ import annotations

from dataclasses import replace

import pytest

from laneway.controllers.harness import Harness
from laneway.controllers.routes import ROUTER_ENVIRONMENT, ROUTER_KEY, RouterController
from laneway.core.types import ReplicaState, ReplicaStatus
from laneway.errors import InvalidInput
from laneway.router.driver import BuiltinRouterDriver
from laneway.router.fake import FakeRouterDriver
from laneway.router.haproxy import HAProxyDriver
from laneway.settings import load_settings


def _pools(harness: Harness, host: str) -> list[tuple[str, int, list[int]]]:
    table = harness.driver.table
    assert table is not None
    route = table.match(f"{host}.shop.localhost")
    assert route is not None
    return [(p.release, p.weight, [b.port for b in p.backends]) for p in route.pools]


def test_only_healthy_replicas_of_the_live_release_of_the_routed_service_take_traffic(
    harness: Harness,
) -> None:
    env = harness.create(build_id=harness.add_build())
    harness.converge(env)
    environment = harness.environment(env)
    web = next(r for r in environment.replicas if r.service == "web")
    extra = (
        replace(web, index=1, port=1, state=ReplicaState.STARTING),
        replace(web, index=2, port=2, release="v9"),
        ReplicaStatus(service="worker", index=1, release="v1", port=3, state=ReplicaState.RUNNING),
    )
    harness.store.update_environment(env, replicas=environment.replicas + extra)
    harness.router.refresh_from_store()
    assert _pools(harness, "staging") == [("v1", 10_000, [web.port])]


def test_an_unchanged_table_is_not_applied_again(harness: Harness) -> None:
    env = harness.create(build_id=harness.add_build())
    harness.converge(env)
    count = len(harness.driver.tables)
    assert harness.router.refresh_from_store() is False
    assert len(harness.driver.tables) == count


def test_confirm_says_whether_the_router_serves_the_newest_table(harness: Harness) -> None:
    harness.driver.confirming = False
    env = harness.create(build_id=harness.add_build())
    harness.converge(env, steady=False)
    assert harness.run(harness.router.confirm()) is False
    harness.driver.confirm()
    assert harness.run(harness.router.confirm()) is True


def test_the_router_gets_the_limits_the_settings_give_and_is_replaced_when_they_change(
    harness: Harness,
) -> None:
    def controller(**limits: str) -> RouterController:
        environ = {"LANEWAY_HOME": str(harness.ctx.settings.home)} | {
            f"LANEWAY_ROUTER_{name.upper()}": value for name, value in limits.items()
        }
        return RouterController(replace(harness.ctx, settings=load_settings(environ=environ)))

    first = controller().ensure_router()
    assert harness.runtime.specs[ROUTER_KEY].command.endswith("routes.json")
    limited = controller(max_connections="500", head_timeout="2.5", tunnel_timeout="60")
    pid = limited.ensure_router()
    assert pid != first and harness.runtime.starts()[ROUTER_KEY] == 2
    command = harness.runtime.specs[ROUTER_KEY].command
    assert command.endswith(
        "routes.json --max-connections 500 --head-timeout 2.5 --tunnel-timeout 60.0"
    )
    again = controller(max_connections="500", head_timeout="2.5", tunnel_timeout="60")
    assert again.ensure_router() == pid  # adopted, not replaced


def test_the_data_plane_is_chosen_by_the_settings_and_haproxy_replaces_the_builtin_router(
    harness: Harness,
) -> None:
    home = {"LANEWAY_HOME": str(harness.ctx.settings.home)}

    def controller(**environ: str) -> RouterController:
        settings = load_settings(environ=home | environ)
        return RouterController(replace(harness.ctx, settings=settings))

    assert isinstance(controller().driver, BuiltinRouterDriver)
    builtin = controller().ensure_router()
    assert builtin is not None and harness.runtime.starts()[ROUTER_KEY] == 1

    chosen = controller(LANEWAY_ROUTER_DATA_PLANE="haproxy")
    assert isinstance(chosen.driver, HAProxyDriver)
    assert chosen.driver.directory == harness.ctx.settings.state_dir / "haproxy"

    class Supervising(FakeRouterDriver):
        def __init__(self) -> None:
            super().__init__()
            self.ensured = 0

        def ensure_running(self) -> int | None:
            self.ensured += 1
            return 4242

        def master_pid(self) -> int | None:
            return 4242 if self.ensured else None

    chosen.driver = supervising = Supervising()
    assert chosen.ensure_router() == 4242
    assert chosen.ensure_router() == 4242
    assert supervising.ensured == 2
    assert chosen.router_pid() == 4242  # what the API's status shows
    assert not any(p.alive for p in harness.runtime.list_processes(ROUTER_ENVIRONMENT))
    assert harness.runtime.starts()[ROUTER_KEY] == 1  # the built-in router not started again

    with pytest.raises(InvalidInput, match="LANEWAY_ROUTER_DATA_PLANE"):
        load_settings(environ=home | {"LANEWAY_ROUTER_DATA_PLANE": "nginx"})
