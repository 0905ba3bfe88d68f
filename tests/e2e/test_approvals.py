"""A promotion to a production whose running spec asks for one approval (and the one that
creates it, as staging's running spec says) waits for another principal's; the requester cannot approve it; a hotfix runs at once, but only for the role
that spec allows it to; a rollback does not wait."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from laneway.testing import Server, git, make_server, poll_until, spec_repo

pytestmark = pytest.mark.e2e

SPEC = """\
app: gate
services:
  worker: {command: python -c "import time; time.sleep(3600)"}
environments:
  production: {approvals: 1, hotfix_role: admin}
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


def serving(server: Server, name: str) -> str | None:
    return (server.show(name, app="gate") or {}).get("serving")


def test_a_promotion_waits_for_another_principals_approval(tmp_path: Path) -> None:
    repo = spec_repo(tmp_path / "repo", SPEC)
    server = make_server(tmp_path / "lw")
    try:
        server.start()
        with server.http() as http:
            http.put("/api/v1/apps/gate", json={"repo": str(repo)}).raise_for_status()
        server.cli("env", "create", "staging", "--kind", "staging", "--branch", "main", cwd=repo)
        bob = server.cli("access", "add", "bob", "--role", "deployer", cwd=repo).stdout.strip()
        create = server.cli("promote", "staging", "production", "--create", cwd=repo)
        assert "production waits for 1 approval(s) before: create production" in create.stdout
        made = re.search(r"request ([0-9a-f]{8});", create.stdout)
        assert made is not None and server.show("production", app="gate") is None
        created = as_(server, bob, "approve", made.group(1), cwd=repo)
        assert "(created production, release v1)" in created.stdout, created.stdout
        poll_until(lambda: serving(server, "production") == "v1", timeout=60, what="production")
        (repo / "v2").write_text("2")
        git(repo, "add", "v2")
        git(repo, "commit", "-q", "-m", "v2")
        server.cli("deploy", "staging", "--ref", "main", cwd=repo, timeout=120)

        asked = server.cli("promote", "staging", "production", cwd=repo)
        assert "production waits for 1 approval(s) before: promote build" in asked.stdout
        found = re.search(r"request ([0-9a-f]{8});", asked.stdout)
        assert found is not None, asked.stdout
        request_id = found.group(1)
        again = server.cli("promote", "staging", "production", cwd=repo)
        assert f"request {request_id};" in again.stdout, "a retry is the same request"
        assert serving(server, "production") == "v1"
        waiting = json.loads(server.cli("approvals", "--json", cwd=repo).stdout)
        assert [(r["id"], r["requester"], r["state"]) for r in waiting] == [
            (request_id, "admin", "pending")
        ]

        own = server.cli("approve", request_id, cwd=repo, check=False)
        assert own.returncode == 1
        assert f"admin asked for request {request_id}: its approvals must come from others" in (
            own.stderr
        )
        approved = as_(server, bob, "approve", request_id, cwd=repo)
        assert approved.returncode == 0, approved.stderr
        assert "approved: promote build" in approved.stdout and "(release v2)" in approved.stdout
        poll_until(lambda: serving(server, "production") == "v2", timeout=60, what="v2 live")
        releases = json.loads(server.cli("releases", "production", "--json", cwd=repo).stdout)
        newest = max(releases, key=lambda r: r["number"])
        assert "(approved by bob)" in newest["description"]

        (repo / "v3").write_text("3")
        git(repo, "add", "v3")
        git(repo, "commit", "-q", "-m", "v3")
        server.cli("deploy", "staging", "--ref", "main", cwd=repo, timeout=120)
        urgent = ("promote", "staging", "production", "--hotfix", "--reason", "urgent")
        refused = as_(server, bob, *urgent, cwd=repo)
        assert refused.returncode == 1
        assert "allows --hotfix to the admin role only" in refused.stderr, refused.stderr
        hot = server.cli(*urgent, cwd=repo, timeout=120)
        assert "waits for" not in hot.stdout, "a hotfix needs no approval"
        poll_until(lambda: serving(server, "production") == "v3", timeout=60, what="hotfix")

        build = (server.show("staging", app="gate") or {})["build"]
        made = server.cli("env", "create", "prod-eu", "--kind", "production", "--build", build, cwd=repo)  # fmt: skip
        assert "prod-eu waits for 1 approval(s) before: create prod-eu (production)" in made.stdout
        assert server.show("prod-eu", app="gate") is None, "not created before it is approved"

        server.cli("rollback", "production", cwd=repo, timeout=120)  # recovery never waits
        poll_until(lambda: serving(server, "production") != "v3", timeout=60, what="rollback")
        waiting = json.loads(server.cli("approvals", "--json", cwd=repo).stdout)
        assert [r["environment"] for r in waiting] == ["prod-eu"]
    finally:
        server.teardown()
