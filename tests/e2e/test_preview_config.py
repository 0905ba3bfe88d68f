"""A new preview starts with the staging config that staging's running spec lets it copy,
and nothing its own branch asks for beyond that."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from laneway.testing import git, make_server, poll_until, spec_repo

pytestmark = pytest.mark.e2e

SPEC = """\
app: copy
services:
  worker: {command: python -c "import time; time.sleep(3600)"}
environments:
  preview:
    copy_config: [%s]
"""
SHARED = "pk_test_shared_0123"
PRIVATE = "sk_staging_only_4567"


def test_a_preview_copies_only_what_stagings_spec_allows(tmp_path: Path) -> None:
    repo = spec_repo(tmp_path / "repo", SPEC % "SHARED_KEY")
    git(repo, "checkout", "-q", "-b", "greedy")
    (repo / "laneway.yaml").write_text(SPEC % "SHARED_KEY, PRIVATE_KEY")
    git(repo, "commit", "-q", "-am", "a branch that asks for more")
    git(repo, "checkout", "-q", "main")
    server = make_server(tmp_path / "lw")
    try:
        server.start()
        with server.http() as http:
            http.put("/api/v1/apps/copy", json={"repo": str(repo)}).raise_for_status()
        server.cli("env", "create", "staging", "--kind", "staging", "--branch", "main", cwd=repo)
        server.cli(
            "config",
            "set",
            "staging",
            f"SHARED_KEY={SHARED}",
            f"PRIVATE_KEY={PRIVATE}",
            "--secret",
            cwd=repo,
        )
        poll_until(
            lambda: (server.show("staging", app="copy") or {}).get("serving") == "v2",
            timeout=60,
            what="staging running its config",
        )
        server.cli("env", "create", "greedy", "--kind", "preview", "--branch", "greedy", cwd=repo)
        listed = json.loads(server.cli("config", "list", "greedy", "--json", cwd=repo).stdout)
        assert [item["key"] for item in listed] == ["SHARED_KEY"]
        shown = server.cli("config", "get", "greedy", "SHARED_KEY", "--reveal", cwd=repo)
        assert SHARED in shown.stdout
        with server.http() as http:
            events = http.get("/api/v1/apps/copy/environments/greedy/events").json()
        messages = [e["message"] for e in events]
        assert "config copied from staging, as the spec it runs allows: SHARED_KEY" in messages
        assert not any(SHARED in m or PRIVATE in m for m in messages)
    finally:
        server.teardown()
