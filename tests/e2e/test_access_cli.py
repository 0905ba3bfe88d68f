"""`laneway access` as an admin types it: add a service principal for CI, its token printed
once and working; list, tokens, another token, revoke, update, remove; bad input exits 2 and
changes nothing; a token's holder without the admin role is told which role it needs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from laneway.testing import Server, spec_repo

pytestmark = pytest.mark.e2e

SPEC = "app: shop\nservices:\n  web: {command: python3 -m http.server $PORT --bind 127.0.0.1}\n"


def as_(server: Server, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as the holder of `token` runs it."""
    env = server.env | {"LANEWAY_URL": server.url, "LANEWAY_TOKEN": token}
    return subprocess.run(
        [sys.executable, "-m", "laneway.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_access_from_the_command_line(server: Server, tmp_path: Path) -> None:
    repo = spec_repo(tmp_path / "shop", SPEC)
    with server.http() as http:  # an app, so that `env list` has something to list
        assert http.put("/api/v1/apps/shop", json={"repo": str(repo)}).status_code == 200
    added = server.cli("access", "add", "ci-deploy", "--role", "deployer", "--service", "--expires", "90d")  # fmt: skip
    token = added.stdout.strip()
    assert token.startswith("lw_") and "\n" not in token  # alone, for $(...)
    assert "created service ci-deploy with role deployer" in added.stderr
    assert "not shown again" in added.stderr
    assert as_(server, token, "env", "list", "--app", "shop").returncode == 0

    listed = server.cli("access", "list")
    assert "ci-deploy" in listed.stdout and "service" in listed.stdout
    assert "lw_" not in listed.stdout
    principals = json.loads(server.cli("access", "list", "--json").stdout)
    assert {p["name"]: (p["kind"], p["role"], p["tokens"]) for p in principals} == {
        "admin": ("user", "admin", 1),
        "ci-deploy": ("service", "deployer", 1),
    }

    another = server.cli("access", "token", "ci-deploy", "--json")
    second = json.loads(another.stdout)
    assert second["token"].startswith("lw_") and second["expires_at"] is None
    assert "not shown again" in another.stderr
    tokens = json.loads(server.cli("access", "tokens", "ci-deploy", "--json").stdout)
    assert [t["state"] for t in tokens] == ["active", "active"]
    assert tokens[0]["expires_at"] is not None and tokens[0]["last_used_at"] is not None
    shown = server.cli("access", "tokens", "ci-deploy").stdout
    assert token not in shown and second["token"] not in shown and "lw_" not in shown

    first_id = tokens[0]["id"]
    revoked = server.cli("access", "revoke", first_id)
    assert f"revoked token {first_id} of ci-deploy" in revoked.stdout
    refused = as_(server, token, "env", "list", "--app", "shop")
    assert refused.returncode == 1
    assert "token revoked" in refused.stderr and "Traceback" not in refused.stderr
    assert as_(server, second["token"], "env", "list", "--app", "shop").returncode == 0
    states = json.loads(server.cli("access", "tokens", "ci-deploy", "--json").stdout)
    assert [t["state"] for t in states] == ["revoked", "active"]

    # a deployer manages no principals, and is told which role that needs
    denied = as_(server, second["token"], "access", "list")
    assert denied.returncode == 1
    assert "has role deployer; this needs admin" in denied.stderr

    assert "ci-deploy has role viewer" in server.cli("access", "update", "ci-deploy", "--role", "viewer").stdout  # fmt: skip
    removed = server.cli("access", "remove", "ci-deploy")
    assert "removed ci-deploy" in removed.stdout
    gone = as_(server, second["token"], "env", "list", "--app", "shop")
    assert gone.returncode == 1 and "token revoked" in gone.stderr
    assert "ci-deploy" not in server.cli("access", "list").stdout
    assert "ci-deploy" in server.cli("access", "list", "--removed").stdout

    last = server.cli("access", "remove", "admin", check=False)
    assert last.returncode == 1
    assert "it is the last admin" in last.stderr and "Traceback" not in last.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("access", "add", "Bad_Name", "--role", "viewer"), "lowercase letters"),
        (
            ("access", "add", "ok", "--role", "root"),
            "expected one of viewer, developer, deployer, admin",
        ),
        (("access", "add", "ok", "--role", "viewer", "--expires", "2y"), "at most 1 year"),
        (("access", "add", "ok", "--role", "viewer", "--expires", "soon"), "30m, 12h"),
        (("access", "add", "ok"), "--role"),
        (("access", "token", "admin", "--expires", "0d"), "longer than nothing"),
        (("access", "revoke", "lw_abc"), "expected a token id"),
        (("access", "tokens", "-x"), "No such option"),
        (("access", "grant", "admin", "admin", "--kind", "production"), "developer or deployer"),
        (("access", "grant", "admin", "deployer", "--app", "shop"), "exactly one of --env"),
        (("access", "grant", "admin", "deployer", "--env", "staging"), "give its app too"),
        (("access", "grant", "admin", "deployer", "--kind", "prod"), "expected one of"),
        (("access", "revoke-grant", "Bad_Name", "deployer", "--kind", "staging"), "lowercase"),
    ],
)
def test_bad_input_exits_2_and_changes_nothing(
    server: Server, args: tuple[str, ...], says: str
) -> None:
    before = server.cli("access", "list", "--json", "--removed").stdout
    result = server.cli(*args, check=False)
    assert result.returncode == 2, (args, result.stdout, result.stderr)
    assert says in result.stderr and "Traceback" not in result.stderr
    assert server.cli("access", "list", "--json", "--removed").stdout == before
