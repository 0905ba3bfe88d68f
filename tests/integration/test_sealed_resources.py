"""An environment's database password is sealed at rest: the store's row holds no password,
while the app still gets a working DATABASE_URL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from laneway.composition import instance_secret
from laneway.settings import load_settings
from laneway.store.repository import Store
from laneway.store.vault import Vault
from laneway.testing import live, make_server, spec_repo

pytestmark = pytest.mark.integration

# the service serves only once its DATABASE_URL has let it create a table
SPEC = """\
app: shop
services:
  web:
    command: >-
      psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -qc "CREATE TABLE IF NOT EXISTS sealed (x int)"
      && exec python3 -m http.server $PORT --bind 127.0.0.1
    health: /
resources:
  db: {type: postgres}
"""


def test_a_provisioned_database_password_is_not_in_the_store(tmp_path: Path):
    repo = spec_repo(tmp_path / "repo", SPEC)
    server = make_server(tmp_path / "lw")
    try:
        server.start()
        with server.http() as http:
            assert http.put("/api/v1/apps/shop", json={"repo": str(repo)}).status_code == 200
            response = http.post(
                "/api/v1/apps/shop/environments",
                json={"name": "qa", "kind": "staging", "branch": "main"},
            )
            assert response.status_code == 202, response.text
        server.wait_for("qa", live("v1"), what="qa live")
        assert server.get("qa.shop.localhost").status_code == 200

        settings = load_settings(environ=server.env)
        with sqlite3.connect(settings.state_dir / "laneway.db") as connection:
            rows = [r[0] for r in connection.execute("SELECT details_json FROM resources")]
        assert len(rows) == 1 and "postgresql://" not in rows[0], rows
        store = Store.open(settings.database_url, vault=Vault(instance_secret(settings)))
        try:
            address = store.resources(str(server.show("qa")["id"]))[0].details["value"]
        finally:
            store.close()
        password = psycopg.conninfo.conninfo_to_dict(address)["password"]
        assert password and str(password) not in rows[0]
        with psycopg.connect(address) as connection:
            assert connection.execute("SELECT to_regclass('sealed')").fetchone() == ("sealed",)
    finally:
        server.teardown()
