"""The audit log of a real server, tampered with by hand in its SQLite file: `laneway audit
verify` exits 1 naming the record edited, or the newest one deleted."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from laneway.settings import load_settings
from laneway.testing import Server, make_server, spec_repo

SPEC = "app: shop\nservices:\n  web: {command: sleep 100}\n"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    server = make_server(tmp_path / "lw")
    try:
        server.start()
        yield server
    finally:
        server.teardown()


def database(server: Server) -> Path:
    return load_settings(environ=server.env).state_dir / "laneway.db"


def sql(server: Server, statement: str, *args: Any) -> None:
    """A change made by hand, as someone with the file would."""
    with sqlite3.connect(database(server)) as db:
        db.execute(statement, args)


def records(server: Server) -> list[dict[str, Any]]:
    return list(json.loads(server.cli("audit", "list", "--json").stdout))


def test_an_edited_row_and_a_deleted_newest_row_are_caught(server: Server, tmp_path: Path) -> None:
    repo = spec_repo(tmp_path / "repo", SPEC)
    with server.http() as http:
        assert http.put("/api/v1/apps/shop", json={"repo": str(repo)}).status_code == 200
    bad = httpx.get(
        f"{server.url}/api/v1/apps", headers={"Authorization": "Bearer lw_wrong"}, timeout=30
    )
    assert bad.status_code == 401
    with server.http() as http:
        assert http.put("/api/v1/apps/shop", json={"repo": str(repo)}).status_code == 200

    first, refused, third = records(server)
    assert (first["action"], first["principal"], first["outcome"]) == (
        "PUT /apps/{app}",
        "admin",
        "ok",
    )
    assert (refused["principal"], refused["status"], refused["source"]) == (
        None,
        401,
        "127.0.0.1",
    )
    shown = server.cli("audit", "list").stdout
    assert "PUT /apps/{app}" in shown and "(unknown)" in shown and "unknown token" in shown
    assert server.cli("audit", "list", "--principal", "admin", "--json").stdout.count('"seq"') == 2
    ok = server.cli("audit", "verify")
    assert "intact: records 1 to 3" in ok.stdout

    # one row's detail edited by hand
    original = json.dumps(refused["detail"], sort_keys=True)
    sql(server, "UPDATE audit_log SET detail_json = ? WHERE seq = 2", '{"path": "/nothing"}')
    edited = server.cli("audit", "verify", check=False)
    assert edited.returncode == 1, edited.stdout + edited.stderr
    assert "record 2 was edited" in edited.stderr
    as_json = json.loads(server.cli("audit", "verify", "--json", check=False).stdout)
    assert (as_json["ok"], as_json["bad"]) == (False, 2)

    sql(server, "UPDATE audit_log SET detail_json = ? WHERE seq = 2", original)
    assert server.cli("audit", "verify").returncode == 0

    # the newest row deleted: the chain left is valid, the signed checkpoint is not met
    sql(server, "DELETE FROM audit_log WHERE seq = 3")
    deleted = server.cli("audit", "verify", check=False)
    assert deleted.returncode == 1
    assert "record 3 is missing (the newest were deleted)" in deleted.stderr

    # what comes next chains onto the checkpoint, so the gap stays visible
    with server.http() as http:
        assert http.put("/api/v1/apps/shop", json={"repo": str(repo)}).status_code == 200
    assert [r["seq"] for r in records(server)] == [1, 2, 4]
    after = server.cli("audit", "verify", check=False)
    assert after.returncode == 1
    assert "record 3 is missing (deleted): record 4 follows record 2" in after.stderr


def test_export_writes_json_lines(server: Server, tmp_path: Path) -> None:
    bad = httpx.post(
        f"{server.url}/api/v1/apps/shop/environments", headers={"Authorization": "Bearer x"}
    )
    assert bad.status_code == 401
    target = tmp_path / "audit.jsonl"
    result = server.cli("audit", "export", "-o", str(target))
    assert "1 records written" in result.stderr
    [line] = target.read_text().splitlines()
    record = json.loads(line)
    assert (record["seq"], record["action"], record["outcome"]) == (
        1,
        "POST /apps/{app}/environments",
        "refused",
    )
    assert server.cli("audit", "export").stdout == target.read_text()
    key = load_settings(environ=server.env).audit_key
    assert key.stat().st_mode & 0o777 == 0o600
    assert len(key.read_bytes()) == 32
