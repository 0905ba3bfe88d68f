"""The audit log through the API, in-process on a real SQLite store: changes and refusals are
recorded with who, what and from where; reads are not; only admins read the log."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from laneway.api import auth
from laneway.composition import build_app, build_context
from laneway.core.config import ConfigEntry
from laneway.core.types import Role
from laneway.settings import load_settings
from laneway.store.repository import Store


class Api:
    def __init__(self, client: TestClient, tokens: dict[Role, str]) -> None:
        self.client = client
        self.tokens = tokens

    def call(self, method: str, url: str, role: Role | None = Role.ADMIN, **kw: Any) -> Any:
        headers = {} if role is None else {"Authorization": f"Bearer {self.tokens[role]}"}
        return self.client.request(method, url, headers=headers | kw.pop("headers", {}), **kw)

    def records(self, **params: Any) -> list[dict[str, Any]]:
        response = self.call("GET", "/api/v1/audit", params=params)
        assert response.status_code == 200, response.text
        return list(response.json())


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    settings = load_settings(environ={"LANEWAY_HOME": str(tmp_path / "home")})
    store = Store.open(settings.database_url)
    tokens = {}
    for role in Role:
        tokens[role] = auth.new_token()
        store.add_token(name=role, token_hash=auth.hash_token(tokens[role]), role=role)
    with TestClient(build_app(build_context(settings, store), run_controllers=False)) as client:
        yield Api(client, tokens)
    store.close()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "app"
    repo.mkdir()
    (repo / "laneway.yaml").write_text("app: shop\nservices:\n  web: {command: sleep 100}\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "x"]):
        subprocess.run(
            ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@x.invalid", *args],
            check=True,
        )
    return repo


def test_a_change_is_recorded_with_who_what_and_where(api: Api, repo: Path) -> None:
    assert api.call("PUT", "/api/v1/apps/shop", json={"repo": str(repo)}).status_code == 200
    [record] = api.records()
    assert record["seq"] == 1
    assert record["principal"] == "admin" and record["token_id"]
    assert record["action"] == "PUT /apps/{app}"
    assert (record["app"], record["environment"]) == ("shop", None)
    assert (record["outcome"], record["status"]) == ("ok", 200)
    assert record["source"] == "testclient"
    assert record["detail"] == {"path": "/api/v1/apps/shop"}
    assert str(repo) not in json.dumps(record), "the body is never recorded"


def test_an_environment_change_names_the_environment(api: Api, repo: Path) -> None:
    api.call("PUT", "/api/v1/apps/shop", json={"repo": str(repo)})
    created = api.call(
        "POST", "/api/v1/apps/shop/environments", json={"name": "feat-x", "branch": "main"}
    )
    assert created.status_code == 202, created.text
    assert api.call("DELETE", "/api/v1/apps/shop/environments/feat-x").status_code == 202
    recorded = api.records(environment="feat-x")
    assert [r["action"] for r in recorded] == [
        "POST /apps/{app}/environments",
        "DELETE /apps/{app}/environments/{name}",
    ]
    [create] = api.records(action="POST /apps/{app}/environments")
    assert (create["outcome"], create["environment"]) == ("ok", "feat-x")


def test_reads_are_not_recorded(api: Api) -> None:
    assert api.call("GET", "/api/v1/apps").status_code == 200
    assert api.call("GET", "/api/v1/status").status_code == 200
    assert api.records() == []


def test_a_bad_token_is_recorded_as_a_failed_login(api: Api) -> None:
    response = api.call(
        "GET", "/api/v1/apps", role=None, headers={"Authorization": "Bearer lw_nope"}
    )
    assert response.status_code == 401
    assert api.call("GET", "/api/v1/apps", role=None).status_code == 401
    first, second = api.records()
    assert (first["principal"], first["token_id"]) == (None, None)
    assert (first["outcome"], first["status"], first["action"]) == ("refused", 401, "GET /apps")
    assert first["detail"]["reason"] == "unknown token"
    assert "lw_nope" not in json.dumps(first)
    assert second["detail"]["reason"].startswith("missing token")


def test_a_role_too_low_is_recorded_with_the_principal(api: Api) -> None:
    refused = api.call("DELETE", "/api/v1/apps/shop/environments/staging", role=Role.VIEWER)
    assert refused.status_code == 403
    [record] = api.records()
    assert record["principal"] == "viewer"
    assert record["environment"] == "staging"
    assert (record["outcome"], record["status"]) == ("refused", 403)
    assert "needs" in record["detail"]["reason"]


def test_a_failed_change_is_recorded(api: Api) -> None:
    response = api.call("DELETE", "/api/v1/apps/shop/environments/none")
    assert response.status_code == 404
    [record] = api.records()
    assert (record["outcome"], record["status"]) == ("failed", 404)


def test_only_admins_read_the_log(api: Api) -> None:
    for url in ("/api/v1/audit", "/api/v1/audit/verify", "/api/v1/audit/export"):
        assert api.call("GET", url, role=Role.DEPLOYER).status_code == 403
    refusals = api.records(principal="deployer")
    assert [r["action"] for r in refusals] == [
        "GET /audit",
        "GET /audit/verify",
        "GET /audit/export",
    ]


def test_filters_limit_and_export(api: Api, repo: Path) -> None:
    for _ in range(3):
        api.call("PUT", "/api/v1/apps/shop", json={"repo": str(repo)})
    api.call("GET", "/api/v1/apps", role=Role.VIEWER, headers={"Authorization": "Bearer x"})
    assert [r["seq"] for r in api.records(limit=2)] == [3, 4]
    assert [r["seq"] for r in api.records(app="shop")] == [1, 2, 3]
    assert [r["seq"] for r in api.records(action="PUT")] == [1, 2, 3]
    assert [r["seq"] for r in api.records(since="1h")] == [1, 2, 3, 4]
    assert api.records(since="2999-01-01T00:00:00") == []
    assert api.call("GET", "/api/v1/audit", params={"limit": 5000}).status_code == 400
    assert api.call("GET", "/api/v1/audit", params={"since": "soon"}).status_code == 400
    export = api.call("GET", "/api/v1/audit/export")
    assert export.status_code == 200
    lines = [json.loads(line) for line in export.text.splitlines()]
    assert [r["seq"] for r in lines] == [1, 2, 3, 4]
    assert lines[1]["previous"] == lines[0]["hash"]
    verified = api.call("GET", "/api/v1/audit/verify").json()
    assert verified == {
        "ok": True,
        "records": 4,
        "message": "the audit log is intact: records 1 to 4, and the signed checkpoint",
        "bad": None,
    }


def test_a_config_change_is_recorded_by_name_never_by_value(api: Api) -> None:
    body = {"set": {"API_KEY": "marker-s3cret-value"}, "unset": ["OLD"], "secret": True}
    response = api.call("PATCH", "/api/v1/apps/shop/environments/staging/config", json=body)
    assert response.status_code == 404  # no such app: refused after the names were noted
    [record] = api.records()
    assert record["environment"] == "staging"
    assert (record["detail"]["set"], record["detail"]["unset"]) == ("API_KEY", "OLD")
    assert "marker-s3cret-value" not in json.dumps(record)


def test_a_promotion_names_its_target(api: Api) -> None:
    body = {"from": "staging", "to": "production"}
    assert api.call("POST", "/api/v1/apps/shop/promotions", json=body).status_code == 404
    [record] = api.records()
    assert (record["app"], record["environment"]) == ("shop", "production")
    assert record["detail"]["source"] == "staging"


def test_a_change_to_a_path_no_route_has_is_not_recorded(api: Api) -> None:
    assert api.call("POST", "/api/v1/nothing/here", role=None).status_code == 404
    assert api.call("DELETE", "/api/v1/apps", role=None).status_code == 405
    assert api.records() == []


def test_a_hotfix_is_marked_with_its_reason(api: Api, repo: Path) -> None:
    api.call("PUT", "/api/v1/apps/shop", json={"repo": str(repo)})
    body = {"name": "production", "kind": "production", "branch": "main"}
    hotfix = {"hotfix": True, "reason": "INC-42 outage"}
    created = api.call("POST", "/api/v1/apps/shop/environments", json=body | hotfix)
    assert created.status_code == 202, created.text
    destroyed = api.call(
        "DELETE",
        "/api/v1/apps/shop/environments/production",
        params={"hotfix": "true", "reason": "INC-43"},
    )
    assert destroyed.status_code == 202, destroyed.text
    _, create, destroy = api.records()
    assert create["detail"]["hotfix"] == "INC-42 outage"
    assert destroy["detail"]["hotfix"] == "INC-43"


def test_a_revealed_secret_is_recorded_by_name_never_by_value(tmp_path: Path, repo: Path) -> None:
    settings = load_settings(environ={"LANEWAY_HOME": str(tmp_path / "home")})
    store = Store.open(settings.database_url)
    ctx = build_context(settings, store)
    token = auth.new_token()
    store.add_token(name="admin", token_hash=auth.hash_token(token), role=Role.ADMIN)
    with TestClient(build_app(ctx, run_controllers=False)) as client:
        api = Api(client, {Role.ADMIN: token})
        api.call("PUT", "/api/v1/apps/shop", json={"repo": str(repo)})
        api.call("POST", "/api/v1/apps/shop/environments", json={"name": "qa", "branch": "main"})
        environment = store.get_environment("shop", "qa")
        sealed = ctx.vault.seal({"API_KEY": ConfigEntry("sk_marker_0123456789", secret=True)})
        store.create_release(
            environment.id,
            expect_release=environment.release,
            build_id=None,
            commit=None,
            ref="main",
            config_version=1,
            config_sealed=sealed,
            description="config set API_KEY",
            created_by="test",
        )
        base = "/api/v1/apps/shop/environments/qa/config"
        assert api.call("GET", f"{base}/API_KEY").status_code == 200  # a fingerprint: not recorded
        shown = api.call("GET", f"{base}/API_KEY", params={"reveal": "true"})
        assert shown.json()["value"] == "sk_marker_0123456789"
        assert api.call("GET", base, params={"reveal": "true"}).status_code == 200
        reads = [r for r in api.records() if r["action"].startswith("GET")]
        assert [(r["action"], r["environment"], r["detail"]["revealed"]) for r in reads] == [
            ("GET /apps/{app}/environments/{name}/config/{key}", "qa", "API_KEY"),
            ("GET /apps/{app}/environments/{name}/config", "qa", "API_KEY"),
        ]
        exported = api.call("GET", "/api/v1/audit/export").text
        assert "sk_marker_0123456789" not in exported
    store.close()
