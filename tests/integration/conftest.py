"""Shared fixtures of the integration tests: `empty_store_url` (an empty store on SQLite or
on a PostgreSQL database of its own, dropped afterwards), and a laneway server with an app
and two environments (staging, production) for the flag tests.

The flag tests' environments run a trivial service (nothing to build); flags need only their
records. One server per test module; torn down, with everything it started, at its end.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from laneway.api import auth
from laneway.settings import load_settings
from laneway.store.repository import Store
from laneway.testing import PG_ADMIN, Server, make_server, spec_repo


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty store: a SQLite file, or a PostgreSQL database of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'laneway.db'}"
        return
    name = f"lw_test_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


SPEC = "app: shop\nservices:\n  web: {command: python3 -m http.server $PORT --bind 127.0.0.1}\n"


@dataclass
class FlagWorld:
    server: Server
    environments: dict[str, str]
    """name -> environment id"""

    def http(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.server.url,
            headers={"Authorization": f"Bearer {token or self.server.token()}"},
            timeout=30,
        )

    def key(self, environment: str) -> str:
        with self.http() as http:
            response = http.post(f"/api/v1/apps/shop/environments/{environment}/flag-key")
        assert response.status_code == 200, response.text
        return str(response.json()["key"])

    def load(self, environment: str, document: dict) -> None:
        with self.http() as http:
            response = http.put(
                f"/api/v1/apps/shop/environments/{environment}/flagset", json=document
            )
        assert response.status_code == 200, response.text

    def add_token(self, name: str, role: str) -> str:
        """A token made as an admin would, straight in the server's store."""
        token = auth.new_token()
        store = Store.open(load_settings(environ=self.server.env).database_url)
        try:
            store.add_token(name=name, token_hash=auth.hash_token(token), role=role)
        finally:
            store.close()
        return token


@pytest.fixture(scope="module")
def flag_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlagWorld]:
    base = tmp_path_factory.mktemp("flags")
    repo = spec_repo(base / "repo", SPEC)
    server = make_server(base / "lw")
    try:
        server.start()
        world = FlagWorld(server, {})
        with world.http() as http:
            assert http.put("/api/v1/apps/shop", json={"repo": str(repo)}).status_code == 200
            for name, kind in (("staging", "staging"), ("production", "production")):
                # production is protected: its first build has run nowhere before it
                hotfix = {"hotfix": True, "reason": "tests"} if kind == "production" else {}
                response = http.post(
                    "/api/v1/apps/shop/environments",
                    json={"name": name, "kind": kind, "branch": "main", **hotfix},
                )
                assert response.status_code == 202, response.text
                world.environments[name] = response.json()["id"]
        yield world
    finally:
        server.teardown()
