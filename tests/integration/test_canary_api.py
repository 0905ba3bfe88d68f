"""The canary routes: who may, what a protected environment lets a request change, and the
answers to what cannot be done (nothing recorded by any of them)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from laneway.api import auth
from laneway.composition import build_app, build_context
from laneway.core.types import BuildRecord, Kind, Role
from laneway.settings import load_settings
from laneway.store.repository import Store
from laneway.testing import promote_now

SPEC = "app: shop\nservices:\n  web: {command: serve, health: /healthz}\n"
BUILD, NEW = "sha256:" + "a" * 64, "sha256:" + "b" * 64


@dataclass
class Api:
    client: TestClient
    store: Store
    token: str

    def post(self, env: str, tail: str = "", body: object = None, **kw: object):  # type: ignore[no-untyped-def]
        return self.client.post(
            f"/api/v1/apps/shop/environments/{env}/canary{tail}",
            json=body if body is not None else {},
            headers={"Authorization": f"Bearer {self.token}"},
        )

    def releases(self, env: str) -> list[str]:
        return [r.name for r in self.store.releases(self.store.get_environment("shop", env).id)]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    settings = load_settings(environ={"LANEWAY_HOME": str(tmp_path / "home")})
    settings.make_dirs()
    store = Store.open(settings.database_url)
    token = auth.new_token()
    store.add_token(name="ci", token_hash=auth.hash_token(token), role=Role.DEPLOYER)
    store.ensure_app("shop", str(tmp_path))
    for build in (BUILD, NEW):
        store.record_build(
            BuildRecord(build, "shop", "c" * 40, "main", SPEC, build, datetime.now(UTC))
        )
    for name, kind in (("staging", Kind.STAGING), ("production", Kind.PRODUCTION)):
        environment = store.create_environment(
            app="shop", name=name, kind=kind, branch=None, ref=None, build_id=BUILD
        )
        promote_now(store, environment.id)
    store.create_environment(
        app="shop", name="fresh", kind=Kind.PREVIEW, branch=None, ref=None, build_id=BUILD
    )
    try:
        with TestClient(build_app(build_context(settings, store), run_controllers=False)) as client:
            yield Api(client, store, token)
    finally:
        store.close()


def test_a_canary_needs_a_live_release_to_compare_with(api: Api) -> None:
    answer = api.post("fresh", body={"build": NEW})
    assert answer.status_code == 409
    assert answer.json()["detail"] == "fresh has no live release for a canary to be compared with"
    assert api.releases("fresh") == ["v1"]


def test_a_protected_environment_takes_its_canary_as_its_running_spec_says(api: Api) -> None:
    loosened = {"build": NEW, "steps": [100], "failure_limit": 10}
    answer = api.post("production", body=loosened)
    assert answer.status_code == 403
    assert "failure_limit, steps cannot be changed here" in answer.json()["detail"]
    assert api.releases("production") == ["v1"]
    hotfix = api.post("production", body={**loosened, "hotfix": True, "reason": "incident 42"})
    assert hotfix.status_code == 202, hotfix.text
    assert api.releases("production") == ["v2", "v1"]


def test_requests_that_cannot_be_done_are_told_why(api: Api) -> None:
    bad = api.post("staging", body={"build": NEW, "steps": [5, 1]})
    assert bad.status_code == 400
    assert "steps: step 2: weights only rise (1% after 5%)" in bad.json()["detail"]
    nothing = api.post("staging", "/pause", body={"reason": "look"})
    assert nothing.status_code == 409 and nothing.json()["detail"] == "no rollout is under way"
    assert api.post("staging", body={"build": NEW, "steps": [5]}).status_code == 202
    assert api.post("staging", "/resume").json()["detail"] == "the rollout of v2 is not paused"
    paused = api.post("staging", "/pause", body={"reason": "look"}).json()
    assert paused["phase"] == "paused" and paused["paused"] == ["paused by ci: look"]
    aborted = api.post("staging", "/abort", body={"reason": "enough"}).json()
    assert aborted["aborted"] == "aborted by ci: enough" and aborted["phase"] == "aborting"
    assert api.releases("staging") == ["v2", "v1"]


def test_every_canary_route_wants_a_token(api: Api) -> None:
    for tail in ("", "/pause", "/resume", "/promote", "/abort"):
        answer = api.client.post(f"/api/v1/apps/shop/environments/staging/canary{tail}", json={})
        assert answer.status_code == 401, tail
    assert api.client.get("/api/v1/apps/shop/environments/staging/canary").status_code == 401
