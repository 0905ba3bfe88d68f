"""A user's path through the CLI: create staging and a preview from branches, reach them through
the router, restart a process, destroy, and find nothing left behind."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from laneway.testing import Server, git, owned_databases, status

pytestmark = pytest.mark.e2e


def env_json(server: Server, repo: Path, name: str) -> dict:
    return json.loads(server.cli("env", "show", name, "--json", cwd=repo).stdout)


def info(server: Server, name: str) -> dict:
    response = server.get(f"{name}.shop.localhost", "/api/info")
    assert response.status_code == 200, response.text
    return response.json()


def test_two_environments_side_by_side_then_destroyed(server: Server, example_repo: Path):
    created = server.cli(
        "env", "create", "staging", "--kind", "staging", "--branch", "main", cwd=example_repo
    )
    assert "staging is running at http://staging.shop.localhost:" in created.stdout
    server.cli("env", "create", "feature-x", "--branch", "feature-x", cwd=example_repo)
    # the same request again is a retry: it answers with what exists, a different one is refused
    again = server.cli("env", "create", "feature-x", "--branch", "feature-x", cwd=example_repo)
    assert "feature-x is running" in again.stdout
    other = server.cli(
        "env", "create", "feature-x", "--branch", "main", cwd=example_repo, check=False
    )
    assert other.returncode == 1 and "exists already" in other.stderr

    main_commit = git(example_repo, "rev-parse", "main")
    feature_commit = git(example_repo, "rev-parse", "feature-x")
    staging, feature = info(server, "staging"), info(server, "feature-x")
    assert staging["commit"] == main_commit[:7] or main_commit.startswith(staging["commit"])
    assert feature_commit.startswith(feature["commit"])
    assert (staging["environment"], staging["kind"]) == ("staging", "staging")
    assert (feature["environment"], feature["kind"]) == ("feature-x", "preview")

    releases = json.loads(server.cli("releases", "staging", "--json", cwd=example_repo).stdout)
    assert [(r["name"], r["state"], r["created_by"]) for r in releases] == [("v1", "live", "admin")]
    assert releases[0]["commit"] == main_commit and releases[0]["build"].startswith("sha256:")

    listed = json.loads(server.cli("env", "list", "--json", cwd=example_repo).stdout)
    assert {e["name"]: e["phase"] for e in listed} == {"staging": "running", "feature-x": "running"}
    ports = [r["port"] for e in listed for r in e["replicas"] if r["port"]]
    assert len(ports) == len(set(ports)) == 2
    assert len(owned_databases(server.owner())) == 2  # a database and its role, named alike

    # visits are counted in each environment's own database
    page = server.get("feature-x.shop.localhost")
    assert page.status_code == 200 and "feature-x" in page.text
    before = info(server, "feature-x")["visits"]
    server.get("feature-x.shop.localhost")
    assert info(server, "feature-x")["visits"] == before + 1
    assert info(server, "staging")["visits"] == 0

    # the counter survives a restart of the web process
    web = next(
        r for r in env_json(server, example_repo, "feature-x")["replicas"] if r["service"] == "web"
    )
    os.kill(web["pid"], signal.SIGKILL)
    server.wait_for(
        "feature-x",
        status(
            lambda e: any(
                r["service"] == "web" and r["state"] == "healthy" and r["pid"] != web["pid"]
                for r in e["replicas"]
            )
        ),
        what="web restarted",
    )
    server.get("feature-x.shop.localhost")
    assert info(server, "feature-x")["visits"] == before + 2

    assert server.get("nope.shop.localhost").status_code == 404

    server.cli("env", "destroy", "feature-x", cwd=example_repo)
    assert server.get("feature-x.shop.localhost").status_code == 404
    assert server.get("staging.shop.localhost").status_code == 200
    server.cli("env", "destroy", "staging", cwd=example_repo)
    assert json.loads(server.cli("env", "list", "--json", cwd=example_repo).stdout) == []
    assert server.processes() == []
    assert owned_databases(server.owner()) == []
    assert list((server.home / "environments").iterdir()) == []


def test_bad_spec_on_a_branch_is_refused_and_creates_nothing(
    server: Server, example_repo: Path, tmp_path: Path
):
    repo = tmp_path / "bad"
    git(example_repo, "worktree", "add", "-q", "-b", "typo", str(repo), "main")
    try:
        spec = (
            (repo / "laneway.yaml")
            .read_text()
            .replace("command: python -m shop.worker", "comand: python -m shop.worker")
        )
        (repo / "laneway.yaml").write_text(spec)
        git(repo, "commit", "-q", "-am", "typo")
        # the work tree in example_repo is fine: the server checks the spec at the branch itself
        result = server.cli(
            "env", "create", "typo", "--branch", "typo", cwd=example_repo, check=False
        )
        assert result.returncode == 2, result.stderr
        assert (
            "laneway.yaml:" in result.stderr
            and "comand" in result.stderr
            and "command" in result.stderr
        )
        assert "Traceback" not in result.stderr
        assert json.loads(server.cli("env", "list", "--json", cwd=example_repo).stdout) == []
    finally:
        git(example_repo, "worktree", "remove", "--force", str(repo))
        git(example_repo, "branch", "-D", "typo")


def test_crashing_service_backs_off_and_the_environment_is_degraded(
    server: Server, example_repo: Path, tmp_path: Path
):
    repo = tmp_path / "crashy"
    git(example_repo, "worktree", "add", "-q", "-b", "crashy", str(repo), "main")
    try:
        spec = (repo / "laneway.yaml").read_text()
        spec = spec.replace("command: python -m shop.worker", "command: echo giving up; exit 3")
        (repo / "laneway.yaml").write_text(spec)
        git(repo, "commit", "-q", "-am", "a worker that crashes")
        server.cli("env", "create", "crashy", "--branch", "crashy", "--no-wait", cwd=example_repo)

        def degraded(e: dict) -> bool:
            worker = next((r for r in e["replicas"] if r["service"] == "worker"), None)
            return e["phase"] == "degraded" and worker is not None and worker["restarts"] >= 3

        e = server.wait_for("crashy", status(degraded), what="three restarts").data
        assert "worker/0 exited with code 3" in e["message"]
        # the web service is healthy and still serves
        assert server.get("crashy.shop.localhost", "/api/info").status_code == 200
        logs = server.cli("logs", "crashy", "worker", cwd=example_repo).stdout
        assert logs.count("giving up") >= 3
    finally:
        git(example_repo, "worktree", "remove", "--force", str(repo))


def test_failing_release_hook_fails_the_environment_and_no_traffic_moves(
    server: Server, example_repo: Path, tmp_path: Path
):
    repo = tmp_path / "badhook"
    git(example_repo, "worktree", "add", "-q", "-b", "badhook", str(repo), "main")
    try:
        spec = (repo / "laneway.yaml").read_text()
        spec = spec.replace(
            "release: python -m shop.migrate", "release: echo migration broke; exit 4"
        )
        (repo / "laneway.yaml").write_text(spec)
        git(repo, "commit", "-q", "-am", "a release hook that fails")
        result = server.cli(
            "env", "create", "badhook", "--branch", "badhook", cwd=example_repo, check=False
        )
        assert result.returncode == 1
        assert "release hook `echo migration broke; exit 4` exited with code 4" in result.stderr
        e = env_json(server, example_repo, "badhook")
        assert e["phase"] == "failed" and "migration broke" in e["message"]
        releases = json.loads(server.cli("releases", "badhook", "--json", cwd=example_repo).stdout)
        assert [(r["name"], r["state"]) for r in releases] == [("v1", "failed")]
        assert "exited with code 4" in releases[0]["message"]
        assert [r for r in e["replicas"] if r["pid"]] == []
        assert server.get("badhook.shop.localhost").status_code == 503
    finally:
        git(example_repo, "worktree", "remove", "--force", str(repo))
