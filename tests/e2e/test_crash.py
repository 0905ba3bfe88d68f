"""kill -9 of the control plane at points of create and destroy: after a restart everything
converges, nothing is lost or orphaned, and running apps keep their processes throughout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from laneway.testing import Server, owned_databases, status, step

pytestmark = pytest.mark.e2e

RUNNING = status(lambda e: e["phase"] == "running")


def app_processes(server: Server) -> dict[str, int]:
    return {p.key.split("/", 1)[1]: p.pid for p in server.processes()}


@pytest.mark.parametrize("kill_after", ["unpacked", "provisioned", "hook", "started"])
def test_kill_during_create_converges(server: Server, example_repo: Path, kill_after: str):
    server.cli("env", "create", "feature-x", "--branch", "feature-x", "--no-wait", cwd=example_repo)
    server.wait_for("feature-x", step(kill_after), what=f"a {kill_after} event")
    server.kill()
    server.start()
    environment_id = server.wait_for("feature-x", RUNNING, what="running").data["id"]
    assert sorted(app_processes(server)) == ["web/0/v1", "worker/0/v1"]
    assert server.get("feature-x.shop.localhost", "/api/info").json()["environment"] == "feature-x"
    hook_log = (server.home / "logs" / environment_id / "release.log").read_text()
    assert hook_log.count("--- release v1") == 1, "the release hook ran twice"
    assert len(owned_databases(server.owner())) == 1


def test_running_environment_outlives_the_server_and_is_adopted(server: Server, example_repo: Path):
    server.cli(
        "env", "create", "staging", "--kind", "staging", "--branch", "main", cwd=example_repo
    )
    before = app_processes(server)
    visits = server.get("staging.shop.localhost", "/api/info").json()["visits"]
    server.kill()
    # the router and the app serve on while the control plane is down
    assert server.get("staging.shop.localhost").status_code == 200
    assert app_processes(server) == before
    server.start()
    server.wait_for("staging", RUNNING, what="running")
    assert app_processes(server) == before, "processes were restarted instead of adopted"
    assert server.get("staging.shop.localhost", "/api/info").json()["visits"] > visits


@pytest.mark.parametrize("kill_after", ["destroy", "stopped"])
def test_kill_during_destroy_leaves_nothing(server: Server, example_repo: Path, kill_after: str):
    server.cli("env", "create", "feature-x", "--branch", "feature-x", cwd=example_repo)
    server.cli("env", "destroy", "feature-x", "--no-wait", cwd=example_repo)
    server.wait_for(
        "feature-x",
        lambda e: e.type in (kill_after, "end"),
        what=f"a {kill_after} event or its end",
    )
    server.kill()
    server.start()
    server.wait_gone("feature-x")
    assert app_processes(server) == {}
    assert owned_databases(server.owner()) == []
    assert list((server.home / "environments").iterdir()) == []
    assert json.loads(server.cli("env", "list", "--json", cwd=example_repo).stdout) == []
