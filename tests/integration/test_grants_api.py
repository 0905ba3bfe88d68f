"""Grants through the API: made and taken back by admins, in force from the next request;
the environment a body names is checked once read; an approval is decided by deployers of
its environment; `/docs` and `/openapi.json` need a token, or are off."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from laneway.api import auth
from laneway.composition import build_app, build_context
from laneway.core import approvals
from laneway.core.approvals import Action
from laneway.core.types import Role
from laneway.settings import load_settings
from laneway.store.repository import Store
from laneway.testing import spec_repo

ENVS = "/api/v1/apps/shop/environments"


class World:
    def __init__(self, client: TestClient, store: Store) -> None:
        self.client, self.store = client, store
        self.tokens: dict[str, str] = {}

    def add(self, name: str, role: Role) -> None:
        self.tokens[name] = auth.new_token()
        self.store.add_token(name=name, token_hash=auth.hash_token(self.tokens[name]), role=role)

    def call(self, who: str, method: str, path: str, **kwargs: object):  # type: ignore[no-untyped-def]
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return self.client.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]


def _world(tmp_path: Path, environ: dict[str, str]) -> Iterator[World]:
    settings = load_settings(environ={"LANEWAY_HOME": str(tmp_path / "home"), **environ})
    store = Store.open(settings.database_url)
    ctx = build_context(settings, store)
    repo = spec_repo(tmp_path / "repo", "app: shop\nservices:\n  web: {command: sleep 60}\n")
    with TestClient(build_app(ctx, run_controllers=False)) as client:
        world = World(client, store)
        world.add("admin", Role.ADMIN)
        world.add("dana", Role.DEVELOPER)
        world.add("vic", Role.VIEWER)
        assert world.call("admin", "PUT", "/api/v1/apps/shop", json={"repo": str(repo)}).is_success
        yield world
    store.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from _world(tmp_path, {})


def test_a_developer_creates_previews_but_not_production(world):
    preview = {"name": "pr-1", "kind": "preview", "branch": "main"}
    assert world.call("dana", "POST", ENVS, json=preview).status_code == 202
    production = {"name": "live", "kind": "production", "branch": "main", "hotfix": True}
    refused = world.call("dana", "POST", ENVS, json=production | {"reason": "x"})
    assert refused.status_code == 403, refused.text
    assert "this needs deployer on shop/live" in refused.json()["detail"]
    assert [e.name for e in world.store.list_environments("shop")] == ["pr-1"]
    assert world.call("vic", "POST", ENVS, json=preview).status_code == 403


def test_a_developer_registers_the_app_again_but_moves_it_to_no_other_repository(world, tmp_path):
    repo = world.store.get_app("shop").repo
    assert world.call("dana", "PUT", "/api/v1/apps/shop", json={"repo": repo}).status_code == 200
    other = spec_repo(tmp_path / "other", "app: shop\nservices:\n  web: {command: sleep 1}\n")
    moved = world.call("dana", "PUT", "/api/v1/apps/shop", json={"repo": str(other)})
    assert moved.status_code == 403, moved.text
    assert "this needs deployer on any environment of shop" in moved.json()["detail"]
    assert world.store.get_app("shop").repo == repo
    assert world.call("vic", "PUT", "/api/v1/apps/shop", json={"repo": repo}).status_code == 403


def test_a_grant_is_in_force_from_the_next_request_and_gone_once_revoked(world):
    made = world.call(
        "admin",
        "POST",
        ENVS,
        json={
            "name": "prod",
            "kind": "production",
            "branch": "main",
            "hotfix": True,
            "reason": "first",
        },
    )
    assert made.status_code == 202, made.text
    restart = f"{ENVS}/prod/restart"
    before = world.call("dana", "POST", restart)
    assert before.status_code == 403
    assert (
        "principal 'dana' has role developer on shop/prod; this needs deployer on shop/prod"
        in (before.json()["detail"])
    )
    grant = world.call(
        "admin",
        "POST",
        "/api/v1/access/principals/dana/grants",
        json={"role": "deployer", "app": "shop", "kind": "production"},
    )
    assert grant.status_code == 201, grant.text
    assert grant.json()["scope"] == "shop/kind=production"
    assert world.call("dana", "POST", restart).status_code not in (401, 403)
    listed = world.call("admin", "GET", "/api/v1/access/principals").json()
    assert next(p for p in listed if p["name"] == "dana")["grants"] == [
        "deployer on shop/kind=production"
    ]
    again = world.call(  # the same grant again: the same one, not a second
        "admin",
        "POST",
        "/api/v1/access/principals/dana/grants",
        json={"role": "deployer", "app": "shop", "kind": "production"},
    )
    assert again.json()["id"] == grant.json()["id"]
    gone = world.call("admin", "DELETE", f"/api/v1/access/grants/{grant.json()['id']}")
    assert gone.status_code == 200, gone.text
    assert world.call("dana", "POST", restart).status_code == 403
    assert world.call("admin", "GET", "/api/v1/access/grants").json() == []


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"role": "admin", "kind": "production"}, "role: Input should be 'developer' or"),
        ({"role": "deployer", "app": "s", "environment": "x", "kind": "staging"}, "exactly one"),
        ({"role": "deployer", "app": "shop"}, "give exactly one of environment"),
        ({"role": "deployer", "environment": "staging"}, "environment 'staging': give its app"),
        ({"role": "deployer", "kind": "prod"}, "kind"),
        ({"role": "deployer", "app": "Shop", "kind": "staging"}, "app"),
    ],
)
def test_a_bad_grant_is_refused_saying_why(world, body, detail):
    answer = world.call("admin", "POST", "/api/v1/access/principals/dana/grants", json=body)
    assert answer.status_code == 400, answer.text
    assert detail in answer.json()["detail"]
    assert world.store.grants() == []


def test_approvals_are_decided_by_deployers_of_their_environment(world):
    world.add("stg", Role.VIEWER)
    world.store.add_grant("stg", Role.DEPLOYER, app="shop", environment="staging", kind=None)
    world.add("prd", Role.VIEWER)
    world.store.add_grant("prd", Role.DEPLOYER, app=None, environment=None, kind="production")
    production = {"name": "production", "kind": "production", "branch": "main"}
    made = world.call("admin", "POST", ENVS, json=production | {"hotfix": True, "reason": "x"})
    assert made.status_code == 202, made.text
    opened = approvals.open_request(
        id="0123abcd",
        app="shop",
        environment="production",
        action=Action.PROMOTE,
        description="promote build x",
        params={},
        requester="admin",
        needed=2,
        now=datetime.now(UTC),
    )
    world.store.add_request(opened)
    refused = world.call("stg", "POST", "/api/v1/approvals/0123abcd/approve")
    assert refused.status_code == 403
    assert "this needs deployer on shop/production" in refused.json()["detail"]
    approved = world.call("prd", "POST", "/api/v1/approvals/0123abcd/approve")
    assert approved.status_code == 200, approved.text
    assert approved.json()["approved_by"] == ["prd"]


def test_the_api_document_and_its_page_need_a_token(world):
    for path in ("/openapi.json", "/docs"):
        assert world.client.get(path).status_code == 401
        bad = world.client.get(path, headers={"Authorization": "Bearer lw_nope"})
        assert bad.status_code == 401
        assert world.call("vic", "GET", path).status_code == 200
    assert world.client.get("/redoc").status_code == 404


def test_the_api_document_may_be_turned_off(tmp_path):
    for world in _world(tmp_path, {"LANEWAY_API_DOCS": "off"}):
        for path in ("/openapi.json", "/docs"):
            assert world.call("admin", "GET", path).status_code == 404
        assert world.call("admin", "GET", "/api/v1/status").status_code == 200
