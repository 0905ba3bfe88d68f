"""kill -9 of the control plane at points of create and destroy: after a restart everything
converges, nothing is lost or orphaned, and running apps keep their processes throughout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from laneway.runtime.local import scan
from laneway.testing import Server, owned_databases, wait_until

pytestmark = pytest.mark.e2e


def events(server: Server, name: str) -> list[dict]:
    with server.http() as http:
        response = http.get(f"/api/v1/apps/shop/environments/{name}/events")
    return response.json() if response.status_code == 200 else []


def show(server: Server, name: str) -> dict | None:
    with server.http() as http:
        response = http.get(f"/api/v1/apps/shop/environments/{name}")
    return response.json() if response.status_code == 200 else None


def app_processes(server: Server) -> dict[str, int]:
    return {
        p.key.split("/", 1)[1]: p.pid
        for p in scan(server.owner())
        if not p.key.startswith("_router")
    }


@pytest.mark.parametrize("kill_after", ["unpacked", "provisioned", "hook", "started"])
def test_kill_during_create_converges(server: Server, example_repo: Path, kill_after: str):
    server.cli("env", "create", "feature-x", "--branch", "feature-x", "--no-wait", cwd=example_repo)
    wait_until(
        lambda: any(e["type"] == kill_after for e in events(server, "feature-x")),
        timeout=300,
        what=f"a {kill_after} event",
    )
    server.kill()
    server.start()
    wait_until(
        lambda: (show(server, "feature-x") or {}).get("phase") == "running",
        timeout=120,
        what="running",
    )
    assert sorted(app_processes(server)) == ["web/0/v1", "worker/0/v1"]
    assert server.get("feature-x.shop.localhost", "/api/info").json()["environment"] == "feature-x"
    environment_id = show(server, "feature-x")["id"]
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
    wait_until(
        lambda: (show(server, "staging") or {}).get("phase") == "running",
        timeout=60,
        what="running",
    )
    assert app_processes(server) == before, "processes were restarted instead of adopted"
    assert server.get("staging.shop.localhost", "/api/info").json()["visits"] > visits


@pytest.mark.parametrize("kill_after", ["destroy", "stopped"])
def test_kill_during_destroy_leaves_nothing(server: Server, example_repo: Path, kill_after: str):
    server.cli("env", "create", "feature-x", "--branch", "feature-x", cwd=example_repo)
    server.cli("env", "destroy", "feature-x", "--no-wait", cwd=example_repo)
    wait_until(
        lambda: (
            show(server, "feature-x") is None
            or any(e["type"] == kill_after for e in events(server, "feature-x"))
        ),
        timeout=60,
        what=f"a {kill_after} event",
    )
    server.kill()
    server.start()
    wait_until(
        lambda: show(server, "feature-x") is None, timeout=60, what="the environment to be gone"
    )
    assert app_processes(server) == {}
    assert owned_databases(server.owner()) == []
    assert list((server.home / "environments").iterdir()) == []
    assert json.loads(server.cli("env", "list", "--json", cwd=example_repo).stdout) == []
