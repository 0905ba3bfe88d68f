"""`laneway secrets rotate` on a running instance: every secret at rest sealed with a new key,
the old one gone, every value as it was, and nothing restarted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, InvalidToken

from laneway.composition import instance_secret, vault_for
from laneway.settings import load_settings
from laneway.store import keyring
from laneway.store.repository import Store
from laneway.store.vault import first_key
from laneway.testing import make_server, poll_until, spec_repo

pytestmark = pytest.mark.e2e

SPEC = """\
app: vault
services:
  worker: {command: python -c "import time; time.sleep(3600)"}
resources:
  db: {type: postgres}
"""
TOKEN = "sk_rotate_0123456789"


def sealed_values(home_env: dict[str, str]) -> list[str]:
    """Every sealed token in the store, read raw."""
    settings = load_settings(environ=home_env)
    store = Store.open(settings.database_url)
    try:
        with store.engine.connect() as connection:
            configs = [
                row[0]
                for row in connection.exec_driver_sql(
                    "SELECT config_sealed FROM releases WHERE config_sealed != ''"
                )
            ]
            details = [
                json.loads(row[0])["sealed"]
                for row in connection.exec_driver_sql("SELECT details_json FROM resources")
            ]
    finally:
        store.close()
    return configs + details


def opens(key: bytes, token: str) -> bool:
    try:
        Fernet(key).decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def test_rotation_reseals_everything_and_restarts_nothing(tmp_path: Path) -> None:
    repo = spec_repo(tmp_path / "repo", SPEC)
    server = make_server(tmp_path / "lw")
    try:
        server.start()
        with server.http() as http:
            http.put("/api/v1/apps/vault", json={"repo": str(repo)}).raise_for_status()
        server.cli("env", "create", "qa", "--branch", "main", cwd=repo, timeout=60)
        server.cli("config", "set", "qa", f"TOKEN={TOKEN}", "--secret", cwd=repo, timeout=60)
        poll_until(
            lambda: (
                len(server.processes()) == 1
                and (server.show("qa", app="vault") or {}).get("serving") == "v2"
            ),
            timeout=60,
            what="the worker running with its config (release 2)",
        )
        before = {p.pid for p in server.processes()}
        settings = load_settings(environ=server.env)
        old = first_key(instance_secret(settings))
        tokens = sealed_values(server.env)
        assert tokens and all(opens(old, t) for t in tokens)

        first = server.cli("secrets", "rotate", "--json", cwd=repo)
        done = json.loads(first.stdout)
        assert (done["configs"], done["resources"], done["dropped"]) == (len(tokens) - 1, 1, 1)
        ring = keyring.load(settings.state_dir)
        assert ring is not None and len(ring) == 1 and ring[0] != old
        after = sealed_values(server.env)
        assert len(after) == len(tokens)
        assert all(opens(ring[0], t) and not opens(old, t) for t in after)
        assert {p.pid for p in server.processes()} == before, "nothing restarted"

        shown = server.cli("config", "get", "qa", "TOKEN", "--reveal", cwd=repo)
        assert TOKEN in shown.stdout
        again = server.cli("secrets", "rotate", cwd=repo)
        assert "old key(s) dropped" in again.stdout
        newer = keyring.load(settings.state_dir)
        assert newer is not None and len(newer) == 1 and newer[0] != ring[0]
        vault = vault_for(settings)  # what a restarted server would read
        store = Store.open(settings.database_url, vault=vault)
        try:
            (db,) = store.resources(store.get_environment("vault", "qa").id)
            assert db.details["value"].startswith("postgresql://")
        finally:
            store.close()
    finally:
        server.teardown()
