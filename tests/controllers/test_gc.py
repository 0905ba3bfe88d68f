"""Garbage collection on the fake runtime: whatever belongs to no environment is removed,
and nothing that does."""

from __future__ import annotations

from laneway.controllers import gc
from laneway.controllers.harness import Harness
from laneway.controllers.routes import ROUTER_ENVIRONMENT
from laneway.runtime.base import ProcessSpec


def _orphan_process(harness: Harness, environment_id: str, service: str = "web") -> str:
    info = harness.runtime.start_process(
        ProcessSpec(
            environment_id=environment_id,
            service=service,
            index=0,
            release="v1",
            command="sleep",
            cwd=harness.root,
            per_release=True,
        )
    )
    return info.key


def test_orphans_of_every_kind_are_removed_and_owned_things_kept(harness: Harness) -> None:
    env = harness.create(build_id=harness.add_build())
    harness.converge(env)
    orphan = _orphan_process(harness, "deadbeef")
    router = _orphan_process(harness, ROUTER_ENVIRONMENT, "router")
    harness.postgres.ensure("deadbeef", "db")
    for root in (harness.ctx.settings.environments_dir, harness.ctx.settings.logs_dir):
        (root / "deadbeef").mkdir(parents=True)
    harness.store.lease_port("deadbeef", "web", 0, iter([45000]), generation=1)
    owned_before = harness.alive(env)

    removed = gc.collect_garbage(harness.ctx)

    assert f"process {orphan} (pid " in removed[0]
    assert "postgres resources of deadbeef" in removed
    assert sum(line.startswith("directory ") for line in removed) == 2
    assert "port 45000" in removed
    assert harness.runtime.alive("deadbeef") == []
    assert harness.runtime.alive(ROUTER_ENVIRONMENT) == [router]
    assert harness.postgres.instances == {(env, "db")}
    assert harness.alive(env) == owned_before
    assert (harness.ctx.settings.environments_dir / env).is_dir()
    assert {lease.environment_id for lease in harness.store.leases()} == {env}


def test_a_second_collection_finds_nothing(harness: Harness) -> None:
    _orphan_process(harness, "deadbeef")
    assert gc.collect_garbage(harness.ctx)
    assert gc.collect_garbage(harness.ctx) == []


def test_events_of_destroyed_environments_are_pruned_after_an_hour(harness: Harness) -> None:
    env = harness.create(build_id=harness.add_build())
    harness.converge(env)
    harness.destroy(env)
    assert harness.converge(env) is None
    assert harness.store.events(env)
    harness.clock.now = 4_000_000_000.0  # the events' stamps are wall-clock; be far past them
    assert any(
        "events of destroyed environments" in line for line in gc.collect_garbage(harness.ctx)
    )
    assert harness.store.events(env) == []
