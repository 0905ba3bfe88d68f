"""A development environment (`laneway up`, controllers/development.py) on the reconciler, one
pass at a time on the harness: the work tree a directory, its releases links to it."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from laneway.controllers import development
from laneway.controllers.environments import remove_release_dir
from laneway.controllers.harness import SPEC, Harness, spec
from laneway.core.environments import HOOK_SERVICE
from laneway.core.types import Environment, Kind, Phase
from laneway.settings import load_settings

TWO_WEBS = spec(environments="development: {replicas: {web: 2}}")
DRAIN = 1.0


@pytest.fixture
def tree(tmp_path: Path) -> development.WorkTree:
    repo = tmp_path / "work"
    (repo / "shop").mkdir(parents=True)
    (repo / "laneway.yaml").write_text(SPEC)
    (repo / "shop" / "web.py").write_text("print('web')\n")
    return development.WorkTree(repo, commit="c" * 40, branch="main")


def start(harness: Harness, tree: development.WorkTree, text: str = SPEC) -> Environment:
    return harness.run(development.start(harness.ctx, tree, text, app="shop", drain=DRAIN))


def running(harness: Harness, tree: development.WorkTree, **kwargs: int) -> Environment:
    environment = start(harness, tree)
    converged = harness.converge(environment.id, **kwargs)
    assert converged is not None
    return converged


def replicas(harness: Harness, environment_id: str) -> list[str]:
    """`web/0/v1`, ...: alive replicas without the environment id, hooks left out."""
    return [
        key.split("/", 1)[1]
        for key in harness.alive(environment_id)
        if f"/{HOOK_SERVICE}/" not in key
    ]


def pids(harness: Harness, environment_id: str) -> dict[str, int]:
    return {
        p.key: p.pid
        for p in harness.runtime.list_processes(environment_id)
        if p.alive and p.service != HOOK_SERVICE
    }


def hooks_run(harness: Harness) -> list[int]:
    return [int(key.rsplit("/", 1)[1]) for key in harness.runtime.started if HOOK_SERVICE in key]


def test_settings_are_a_home_of_their_own_with_their_own_store_and_owner(tmp_path: Path):
    server = load_settings(
        environ={"LANEWAY_HOME": str(tmp_path), "LANEWAY_STORE_URL": "postgresql://x@h/db"}
    )
    dev = development.settings_for(server)
    assert dev.home == tmp_path / "dev"
    assert dev.database_url == f"sqlite:///{tmp_path / 'dev' / 'state' / 'laneway.db'}"
    assert dev.owner != server.owner and dev.flags_sync is None
    assert dev.owner == load_settings(environ={"LANEWAY_HOME": str(tmp_path / "dev")}).owner


def test_first_start_runs_the_work_tree_itself(harness: Harness, tree: development.WorkTree):
    environment = start(harness, tree)
    assert environment.kind == Kind.DEVELOPMENT and environment.name == "dev"
    release_dir = harness.ctx.release_dir(environment.id, 1)
    assert release_dir.is_symlink() and release_dir.resolve() == tree.path

    current = harness.converge(environment.id)

    assert current is not None
    assert (current.phase, current.live, current.hook_release) == (Phase.RUNNING, 1, 1)
    assert replicas(harness, environment.id) == ["web/0/v1", "worker/0/v1"]
    process = harness.runtime.specs[f"{environment.id}/web/0/v1"]
    assert process.cwd.resolve() == tree.path
    assert process.env["LANEWAY_ENV_KIND"] == "development"
    assert process.env["PYTHONUNBUFFERED"] == "1"
    assert hooks_run(harness) == [1]
    assert harness.states(environment.id) == {"v1": "live"}
    assert not harness.events(environment.id, "build"), "the work tree is not built"
    assert not harness.events(environment.id, "unpacked"), "nor unpacked"


def test_a_second_pass_does_nothing(harness: Harness, tree: development.WorkTree):
    environment = running(harness, tree)
    started = list(harness.runtime.started)
    assert harness.pass_(environment.id).actions == ()
    assert harness.runtime.started == started


def test_a_restart_starts_the_replicas_again_at_once_without_counting_a_crash(
    harness: Harness, tree: development.WorkTree
):
    before = running(harness, tree)
    old = pids(harness, before.id)

    harness.run(development.restart(harness.ctx, before.id, drain=DRAIN))
    assert replicas(harness, before.id) == []
    harness.pass_(before.id)
    assert pids(harness, before.id).keys() == old.keys(), "started at once, not after a backoff"
    assert set(pids(harness, before.id).values()).isdisjoint(old.values())
    after = harness.converge(before.id)

    assert after is not None and after.phase == Phase.RUNNING
    assert all(r.restarts == 0 for r in after.replicas)
    assert [r.port for r in after.replicas] == [r.port for r in before.replicas], "same URLs"
    assert after.release == 1 and hooks_run(harness) == [1], "no new release, no hook"


def test_a_restart_waits_until_the_stopped_replicas_ports_are_closed(
    harness: Harness, tree: development.WorkTree
):
    """A stopped process may still hold its port a moment; a port found taken would be
    leased anew, and the URL the developer has open would move."""
    before = running(harness, tree)
    (web,) = [r for r in before.replicas if r.service == "web"]
    assert web.port is not None
    closing = socket.create_server(("127.0.0.1", web.port))

    async def scenario() -> None:
        restart = asyncio.create_task(development.restart(harness.ctx, before.id, drain=DRAIN))
        for _ in range(5):
            await asyncio.sleep(development.PORT_POLL)
        assert not restart.done(), "it waits while the port is held"
        closing.close()
        await restart

    try:
        harness.run(scenario())
    finally:
        closing.close()
    after = harness.converge(before.id)
    assert after is not None
    assert [r.port for r in after.replicas if r.service == "web"] == [web.port]


def test_a_crash_is_still_restarted_with_backoff(harness: Harness, tree: development.WorkTree):
    environment = running(harness, tree)
    key = f"{environment.id}/worker/0/v1"
    harness.runtime.crash(key)
    harness.pass_(environment.id)
    (worker,) = [r for r in harness.environment(environment.id).replicas if r.service == "worker"]
    assert (worker.state, worker.restarts) == ("backoff", 1)
    assert key not in harness.alive(environment.id)
    harness.clock.advance(0.5)
    harness.pass_(environment.id)
    assert key in harness.alive(environment.id)


def test_a_changed_spec_is_a_release_beside_the_live_one(
    harness: Harness, tree: development.WorkTree
):
    environment = running(harness, tree)
    updated = development.release(harness.ctx, environment, tree, TWO_WEBS, description="x")
    assert (updated.release, updated.live) == (2, 1)
    harness.pass_(environment.id)
    assert replicas(harness, environment.id) == ["web/0/v1", "worker/0/v1"], "v1 serves"

    harness.converge(environment.id)
    harness.settle(environment.id, 3.0)  # v1 kept warm for SETTLE, then stopped and retired

    current = harness.environment(environment.id)
    assert (current.phase, current.live) == (Phase.RUNNING, 2)
    assert replicas(harness, environment.id) == ["web/0/v2", "web/1/v2", "worker/0/v2"]
    assert hooks_run(harness) == [1, 2]
    assert not harness.ctx.release_dir(environment.id, 1).is_symlink(), "the old link goes"
    assert (tree.path / "shop" / "web.py").exists(), "and the work tree stays"
    assert {lease.generation for lease in harness.store.leases(environment.id)} == {2}


def test_a_failed_hook_fails_the_environment_until_the_next_release(
    harness: Harness, tree: development.WorkTree
):
    failed = running(harness, tree, hooks_exit=3)
    assert failed.phase == Phase.FAILED and "exited with code 3" in (failed.failure or "")
    assert replicas(harness, failed.id) == []

    development.release(harness.ctx, failed, tree, SPEC, description="changed: migrate.py")
    current = harness.converge(failed.id)
    assert current is not None
    assert (current.phase, current.failure, current.live) == (Phase.RUNNING, None, 2)


def test_stop_keeps_the_record_and_the_database_and_the_next_start_is_a_first_release(
    harness: Harness, tree: development.WorkTree
):
    environment = running(harness, tree)

    harness.run(development.stop(harness.ctx, environment.id, drain=DRAIN))
    assert harness.runtime.list_processes() == []
    stopped = harness.environment(environment.id)
    assert (stopped.live, stopped.replicas) == (0, ())
    assert [r.name for r in harness.store.resources(environment.id)] == ["db"]
    assert harness.postgres.instances == {(environment.id, "db")}, "the database is kept"

    again = start(harness, tree)
    assert (again.id, again.release, again.live) == (environment.id, 2, 0)
    current = harness.converge(environment.id)
    assert current is not None and (current.phase, current.live) == (Phase.RUNNING, 2)
    assert hooks_run(harness) == [1, 2], "the hook runs at every start"
    assert harness.states(environment.id) == {"v1": "superseded", "v2": "live"}
    assert not harness.ctx.release_dir(environment.id, 1).is_symlink()


@pytest.mark.parametrize("killed_after", range(8))
def test_a_session_killed_after_any_pass_is_mended_by_the_next_start(
    harness: Harness, tree: development.WorkTree, killed_after: int
):
    """The session dies (SIGKILL) after `killed_after` passes (7 converge); its processes
    live on. The next session's start stops them and converges on a release of its own."""
    environment = start(harness, tree)
    for _ in range(killed_after):
        harness.pass_(environment.id)
        harness.finish_hooks(0)
        harness.clock.advance(0.5)
    leftovers = pids(harness, environment.id)
    harness.restart()

    again = start(harness, tree)
    current = harness.converge(environment.id)

    assert current is not None
    assert (current.phase, current.live) == (Phase.RUNNING, again.release)
    assert set(pids(harness, environment.id).values()).isdisjoint(leftovers.values())
    v = f"v{again.release}"
    assert replicas(harness, environment.id) == [f"web/0/{v}", f"worker/0/{v}"]
    releases = harness.ctx.release_dir(environment.id, 0).parent
    assert [p.name for p in releases.iterdir()] == [v]


@pytest.mark.parametrize(
    "text, hooks_exit, needed",
    [(SPEC, 0, False), (TWO_WEBS, 0, True), (SPEC, 1, True)],
    ids=["same spec: a restart", "another spec", "the environment failed"],
)
def test_which_changes_need_a_release(
    harness: Harness, tree: development.WorkTree, text: str, hooks_exit: int, needed: bool
):
    environment = running(harness, tree, hooks_exit=hooks_exit)
    assert development.needs_release(harness.ctx, environment, text) is needed


def test_a_retired_link_goes_and_what_it_points_to_stays(tmp_path: Path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "app.py").write_text("x")
    link = tmp_path / "releases" / "v1"
    link.parent.mkdir()
    link.symlink_to(work, target_is_directory=True)
    remove_release_dir(link)
    assert not link.is_symlink() and (work / "app.py").exists()

    dangling = tmp_path / "releases" / "v2"
    dangling.symlink_to(tmp_path / "moved", target_is_directory=True)
    remove_release_dir(dangling)
    assert not dangling.is_symlink()

    unpacked = tmp_path / "releases" / "v3"
    (unpacked / "sub").mkdir(parents=True)
    remove_release_dir(unpacked)
    assert not unpacked.exists()
