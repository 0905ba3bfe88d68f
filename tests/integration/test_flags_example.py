"""The example app reads `new-checkout` through OpenFeature from a real laneway server, with
the environment's LANEWAY_FLAGS_URL and LANEWAY_FLAGS_KEY; without them it shows the default."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql

from laneway.testing import PG_ADMIN, free_port, wait_until

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "src" / "laneway" / "examples" / "shop"


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    name = f"lw_test_shopflags_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    try:
        migrated = subprocess.run(
            [sys.executable, "-m", "shop.migrate"],
            env=shop_env(url),
            capture_output=True,
            timeout=60,
        )
        assert migrated.returncode == 0, migrated.stderr
        yield url
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def shop_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANEWAY_", "PYTHONPATH"))}
    env.update(PYTHONPATH=str(EXAMPLE), PYTHONDONTWRITEBYTECODE="1", DATABASE_URL=database_url)
    return env | extra


@pytest.fixture
def start_web(tmp_path: Path) -> Iterator:
    started: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str]) -> tuple[str, Path]:
        port = free_port()
        log = tmp_path / f"web-{len(started)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "shop.web"],
                env=env | {"PORT": str(port)},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        started.append(process)
        url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            assert process.poll() is None, log.read_text()
            try:
                return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, timeout=20, what="shop.web to answer")
        return url, log

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=10)


def checkout(url: str, user: str = "anonymous") -> str:
    page = httpx.get(url, params={"user": user}, timeout=10).text
    return page.split('id="checkout">', 1)[1].split("<", 1)[0]


def test_the_example_shows_what_its_flag_says(flag_world, database, start_web):
    with flag_world.http() as http:
        created = http.post("/api/v1/apps/shop/flags", json={"key": "new-checkout"})
        assert created.status_code == 201, created.text
    flags = {
        "LANEWAY_FLAGS_URL": flag_world.server.url,
        "LANEWAY_FLAGS_KEY": flag_world.key("staging"),
    }
    url, log = start_web(shop_env(database, **flags))
    assert f"reading flags from {flag_world.server.url}" in log.read_text()
    assert checkout(url) == "classic"  # created disabled: the code default

    path = "/api/v1/apps/shop/environments/staging/flags/new-checkout"
    with flag_world.http() as http:
        assert http.patch(path, json={"state": "ENABLED"}).status_code == 200
        assert checkout(url) == "new"
        assert http.put(f"{path}/rollout", json={"percent": 50}).status_code == 200
        users = [f"user-{i}" for i in range(40)]
        seen = {u: checkout(url, u) for u in users}
        assert set(seen.values()) == {"new", "classic"}
        assert {u: checkout(url, u) for u in users} == seen  # sticky per user

    without, log = start_web(shop_env(database))
    assert checkout(without) == "classic"
    assert "flags use their defaults" in log.read_text()
