"""The API hides an environment's secrets in what it serves even where a file or an event
holds one (a log written before the filter existed): the second line of defence."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from laneway.api import auth
from laneway.composition import build_app, build_context
from laneway.core.config import ConfigEntry
from laneway.core.types import EventType, Role
from laneway.settings import load_settings
from laneway.store.repository import Store

SECRET = "sk_live_0123456789"
OLD_SECRET = "sk_live_retired_42"


@pytest.fixture
def api(tmp_path: Path):
    repo = tmp_path / "app"
    repo.mkdir()
    (repo / "laneway.yaml").write_text("app: shop\nservices:\n  web: {command: run}\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "x"]):
        subprocess.run(
            ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@x.invalid", *args],
            check=True,
        )
    settings = load_settings(environ={"LANEWAY_HOME": str(tmp_path / "home")})
    store = Store.open(settings.database_url)
    ctx = build_context(settings, store)
    tokens = {}
    for role in (Role.VIEWER, Role.DEPLOYER):
        tokens[role] = auth.new_token()
        store.add_token(name=role, token_hash=auth.hash_token(tokens[role]), role=role)
    with TestClient(build_app(ctx, run_controllers=False)) as client:
        deployer = {"Authorization": f"Bearer {tokens[Role.DEPLOYER]}"}
        client.put("/api/v1/apps/shop", json={"repo": str(repo)}, headers=deployer)
        created = client.post(
            "/api/v1/apps/shop/environments", json={"name": "x", "branch": "main"}, headers=deployer
        )
        assert created.status_code < 300, created.text
        environment = store.get_environment("shop", "x")
        for version, value in enumerate((OLD_SECRET, SECRET), start=1):
            # releases as a config change makes them (that needs a build, which this does not)
            sealed = ctx.vault.seal({"API_KEY": ConfigEntry(value, secret=True)})
            environment, _ = store.create_release(
                environment.id,
                expect_release=environment.release,
                build_id=None,
                commit=None,
                ref="main",
                config_version=version,
                config_sealed=sealed,
                description="config set API_KEY",
                created_by="test",
            )
        client.headers["Authorization"] = f"Bearer {tokens[Role.VIEWER]}"
        yield client, ctx, store.get_environment("shop", "x")
    store.close()


def test_logs_served_hide_secrets_that_a_file_holds(api):
    client, ctx, environment = api
    directory = ctx.log_dir(environment.id)
    directory.mkdir(parents=True)
    encoded = base64.b64encode(SECRET.encode()).decode()
    (directory / "web.0.log").write_text(
        f"key {SECRET}\nold {OLD_SECRET}\nencoded {encoded}\nhex {SECRET.encode().hex()}\n"
        f"split {SECRET[:6]}"
    )
    with (directory / "web.0.log").open("a") as f:
        f.write(f"{SECRET[6:]}\n")  # a secret at the end of one line and across the next
    (directory / "release.log").write_text(f"hook {SECRET}\n")
    response = client.get("/api/v1/apps/shop/environments/x/logs")
    assert response.status_code == 200, response.text
    assert response.text.splitlines() == [
        "release | hook ***",
        "web.0 | key ***",
        "web.0 | old ***",
        "web.0 | encoded ***",
        "web.0 | hex ***",
        "web.0 | split ***",
    ]


def test_events_served_hide_secrets_that_a_message_holds(api):
    client, ctx, environment = api
    ctx.store.add_event(environment.id, EventType.FAILED, f"crashed:\nAPI_KEY={SECRET}")
    events = client.get("/api/v1/apps/shop/environments/x/events").json()
    assert events[-1]["message"] == "crashed:\nAPI_KEY=***"
    assert SECRET not in str(events)
