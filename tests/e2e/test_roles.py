"""Roles per environment, end to end through the CLI against a real server: a deployer of
staging alone cannot promote to production, a deployer of production can; a developer
deploys to a preview but not to a protected staging (protected by the spec staging runs) nor
to production; each refusal is one plain line naming the role and the environment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from laneway.testing import Server, make_server, poll_until, spec_repo

pytestmark = pytest.mark.e2e

SPEC = """\
app: gate
services:
  worker: {command: python -c "import time; time.sleep(3600)"}
environments:
  staging: {protected: true}
"""


def as_(server: Server, token: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = server.env | {"LANEWAY_URL": server.url, "LANEWAY_TOKEN": token}
    return subprocess.run(
        [sys.executable, "-m", "laneway.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def refused(result: subprocess.CompletedProcess[str], text: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert text in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "Forbidden" not in result.stderr


def serving(server: Server, name: str) -> str | None:
    return (server.show(name, app="gate") or {}).get("serving")


def test_roles_per_environment_decide_who_deploys_and_promotes_where(tmp_path: Path) -> None:
    repo = spec_repo(tmp_path / "repo", SPEC)
    server = make_server(tmp_path / "lw")
    try:
        server.start()
        with server.http() as http:
            http.put("/api/v1/apps/gate", json={"repo": str(repo)}).raise_for_status()
        server.cli("env", "create", "staging", "--kind", "staging", "--branch", "main", cwd=repo)
        poll_until(lambda: serving(server, "staging") == "v1", timeout=60, what="staging")

        tokens = {}
        for name in ("stg", "prd", "dana"):
            made = server.cli("access", "add", name, "--role", "developer", cwd=repo)
            tokens[name] = made.stdout.strip()
        server.cli("access", "grant", "stg", "deployer", "--app", "gate", "--env", "staging")
        server.cli("access", "grant", "prd", "deployer", "--app", "gate", "--kind", "production")
        listed = server.cli("access", "grants", "--json").stdout
        assert '"gate/staging"' in listed and '"gate/kind=production"' in listed

        promote = ("promote", "staging", "production", "--create")
        refused(
            as_(server, tokens["stg"], *promote, cwd=repo),
            "principal 'stg' has role developer on gate/production; "
            "this needs deployer on gate/production",
        )
        assert server.show("production", app="gate") is None
        promoted = as_(server, tokens["prd"], *promote, cwd=repo)
        assert promoted.returncode == 0, promoted.stderr
        poll_until(lambda: serving(server, "production") == "v1", timeout=60, what="production")

        dana = tokens["dana"]
        made = as_(
            server, dana, "env", "create", "pr-1", "--kind", "preview", "--branch", "main", cwd=repo
        )
        assert made.returncode == 0, made.stderr
        poll_until(lambda: serving(server, "pr-1") == "v1", timeout=60, what="the preview")
        deployed = as_(server, dana, "deploy", "pr-1", "--ref", "main", cwd=repo)
        assert deployed.returncode == 0, deployed.stderr
        for name in ("staging", "production"):
            refused(
                as_(server, dana, "deploy", name, "--ref", "main", cwd=repo),
                f"this needs deployer on gate/{name}",
            )
        assert (
            as_(server, tokens["stg"], "deploy", "staging", "--ref", "main", cwd=repo).returncode
            == 0
        )

        server.cli("access", "revoke-grant", "stg", "deployer", "--app", "gate", "--env", "staging")
        refused(
            as_(server, tokens["stg"], "deploy", "staging", "--ref", "main", cwd=repo),
            "this needs deployer on gate/staging",
        )
    finally:
        server.teardown()
