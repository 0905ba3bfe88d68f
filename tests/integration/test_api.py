"""The API's edges: every route checks the caller and its role; bad input is a 4xx
problem+json that says what and where, and changes nothing."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient

from laneway.api import auth, edge
from laneway.composition import build_app, build_context
from laneway.core.types import EventType, Role
from laneway.settings import load_settings
from laneway.spec.model import DNS_LABEL
from laneway.store.repository import Store


@pytest.fixture
def api(tmp_path: Path):
    settings = load_settings(environ={"LANEWAY_HOME": str(tmp_path / "home")})
    store = Store.open(settings.database_url)
    ctx = build_context(settings, store)
    tokens = {}
    for role in Role:
        tokens[role] = auth.new_token()
        store.add_token(name=role, token_hash=auth.hash_token(tokens[role]), role=role)
    app = build_app(ctx, run_controllers=False)
    with TestClient(app) as client:
        yield client, tokens, store
    store.close()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "app"
    repo.mkdir()
    (repo / "laneway.yaml").write_text(
        "app: shop\nservices:\n  web: {command: python -m http.server $PORT}\n"
    )
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "x"]):
        subprocess.run(
            ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@x.invalid", *args],
            check=True,
        )
    return repo


def document(client: TestClient, tokens: dict[Role, str]) -> dict[str, Any]:
    """The published OpenAPI document, read with a token (it needs one)."""
    answer = client.get("/openapi.json", headers={"Authorization": f"Bearer {tokens[Role.VIEWER]}"})
    assert answer.status_code == 200, answer.text
    return cast(dict[str, Any], answer.json())


def routes(client: TestClient, tokens: dict[Role, str]) -> list[tuple[str, str]]:
    """Every API operation, from the published OpenAPI document."""
    paths = document(client, tokens)["paths"]
    names = {"{app}": "shop", "{name}": "x", "{build_id}": "b", "{token_id}": "0a"}
    found = []
    for path, operations in paths.items():
        for key, value in names.items():
            path = path.replace(key, value)
        found += [(method.upper(), path) for method in operations]
    return found


def test_every_route_needs_a_token(api):
    client, tokens, _ = api
    listed = routes(client, tokens)
    assert len(listed) >= 10
    for method, path in listed:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
            response = client.request(method, path, headers=headers, json={})
            assert response.status_code == 401, (method, path, headers, response.text)
            assert response.headers["content-type"] == "application/problem+json"


# what each role may do on each route: tests/integration/test_roles.py, one table


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"name": "Bad_Name", "branch": "main"}, "name: expected a lowercase DNS label"),
        ({"name": "x" * 41, "branch": "main"}, "at most 40 characters), got 'xxxx"),
        ({"name": "x", "build": "abc"}, "build: expected a build id such as `sha256:3f2a1c…`"),
        ({"name": "x"}, "give exactly one of branch, ref or build"),
        ({"name": "x", "branch": "main", "build": "sha256:abcdef12"}, "give exactly one"),
        ({"name": "x", "branch": "nope"}, "no such branch or commit 'nope'"),
        ({"name": "x", "kind": "prod", "branch": "main"}, "kind"),
        ({"name": "x", "branch": "main", "colour": "red"}, "colour: unknown field"),
        ({"name": "x", "build": "sha256:00000000"}, "no build"),
    ],
)
def test_bad_environment_requests_change_nothing(api, repo, body, detail):
    client, tokens, store = api
    deployer = {"Authorization": f"Bearer {tokens['deployer']}"}
    assert (
        client.put("/api/v1/apps/shop", json={"repo": str(repo)}, headers=deployer).status_code
        == 200
    )
    response = client.post("/api/v1/apps/shop/environments", json=body, headers=deployer)
    assert 400 <= response.status_code < 500, response.text
    assert detail in response.json()["detail"]
    assert "Traceback" not in response.text
    assert store.list_environments() == []


def test_spec_errors_at_a_branch_name_line_and_field(api, repo):
    client, tokens, store = api
    deployer = {"Authorization": f"Bearer {tokens['deployer']}"}
    (repo / "laneway.yaml").write_text("app: shop\nservices:\n  web: {comand: x}\n")
    subprocess.run(
        [
            "git",
            "-C",
            str(repo),
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@x.invalid",
            "commit",
            "-qam",
            "typo",
        ],
        check=True,
    )
    client.put("/api/v1/apps/shop", json={"repo": str(repo)}, headers=deployer)
    response = client.post(
        "/api/v1/apps/shop/environments", json={"name": "x", "branch": "main"}, headers=deployer
    )
    assert response.status_code == 400
    problem = response.json()
    assert (
        "laneway.yaml:3:" in problem["detail"]
        and "comand" in problem["detail"]
        and "command" in problem["detail"]
    )
    assert "main" in problem["hint"]
    assert store.list_environments() == []


def test_register_app_refuses_what_is_not_a_repository(api, tmp_path):
    client, tokens, store = api
    deployer = {"Authorization": f"Bearer {tokens['deployer']}"}
    for repo, detail in (
        (str(tmp_path), "not a git repository"),
        ("relative/path", "absolute path"),
    ):
        response = client.put("/api/v1/apps/shop", json={"repo": repo}, headers=deployer)
        assert response.status_code == 400 and detail in response.json()["detail"]
    assert client.put("/api/v1/apps/Shop!", json={"repo": "/"}, headers=deployer).status_code == 400
    assert store.list_apps() == []


def test_unknown_things_are_404(api):
    client, tokens, _ = api
    viewer = {"Authorization": f"Bearer {tokens['viewer']}"}
    assert client.get("/api/v1/apps/shop/environments", headers=viewer).status_code == 404
    assert client.get(f"/api/v1/builds/sha256:{0:064}", headers=viewer).status_code == 404


def test_first_start_writes_an_admin_token_and_stores_only_its_hash(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'db.sqlite'}")
    config = tmp_path / "client.json"
    token = auth.ensure_admin_token(store, config, "http://127.0.0.1:1")
    assert token and token in config.read_text()
    assert oct(config.stat().st_mode & 0o777) == "0o600"
    assert auth.ensure_admin_token(store, config, "http://127.0.0.1:1") is None
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("db.sqlite*"))
    assert token.encode() not in raw and auth.hash_token(token).encode() in raw


def _sse_events(lines: Iterator[str]) -> Iterator[dict[str, str]]:
    """The events of a server-sent event stream as field -> value (comments skipped)."""
    fields: dict[str, str] = {}
    for line in lines:
        if not line:
            if fields:
                yield fields
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


def test_followed_events_carry_ids_to_resume_from(api, repo):
    client, tokens, store = api
    deployer = {"Authorization": f"Bearer {tokens['deployer']}"}
    viewer = {"Authorization": f"Bearer {tokens['viewer']}"}
    client.put("/api/v1/apps/shop", json={"repo": str(repo)}, headers=deployer)
    created = client.post(
        "/api/v1/apps/shop/environments", json={"name": "x", "branch": "main"}, headers=deployer
    )
    assert created.status_code < 300, created.text
    environment = store.get_environment("shop", "x")
    store.add_event(environment.id, EventType.PHASE, "one")
    store.add_event(environment.id, EventType.PHASE, "two")
    ids = [str(e.id) for e in store.events(environment.id)]
    path = "/api/v1/apps/shop/environments/x/events?follow=true"

    def follow(headers: dict[str, str], until: str) -> list[dict[str, str]]:
        seen = []
        with client.stream("GET", path, headers=headers) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            for event in _sse_events(response.iter_lines()):
                seen.append(event)
                if event["event"] == until:
                    return seen
        raise AssertionError(f"the stream ended before a {until!r} event: {seen}")

    seen = follow(viewer, "status")
    assert [e["id"] for e in seen if "id" in e] == ids
    assert [json.loads(e["data"])["message"] for e in seen][-3:-1] == ["one", "two"]
    assert all(json.loads(e["data"])["id"] == int(e["id"]) for e in seen if "id" in e)
    assert json.loads(seen[-1]["data"])["name"] == "x"

    resumed = follow(viewer | {"Last-Event-ID": ids[-2]}, "status")
    assert [e.get("id") for e in resumed] == [ids[-1], None]

    with client.stream("GET", path, headers=viewer | {"Last-Event-ID": ids[-1]}) as response:
        stream = _sse_events(response.iter_lines())
        assert next(stream)["event"] == "status"
        store.add_event(environment.id, EventType.DELETED, "gone")
        store.delete_environment_record(environment.id)
        rest = list(stream)
    assert [e["event"] for e in rest if e["event"] != "status"] == ["deleted", "end"]

    bad = client.get(path, headers=viewer | {"Last-Event-ID": "soon"})
    assert bad.status_code == 400 and "last-event-id" in bad.json()["detail"].lower()


def test_a_build_streams_its_result(api, repo):
    client, tokens, _ = api
    deployer = {"Authorization": f"Bearer {tokens['deployer']}"}
    client.put("/api/v1/apps/shop", json={"repo": str(repo)}, headers=deployer)
    with client.stream(
        "POST", "/api/v1/apps/shop/builds", json={"ref": "main"}, headers=deployer
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = list(_sse_events(response.iter_lines()))
    assert events[-1]["event"] == "result", events
    assert json.loads(events[-1]["data"])["id"].startswith("sha256:")


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        (
            "POST",
            "/apps/shop/environments",
            {"name": "x", "branch": "main", "hotfix": "yes"},
            "hotfix",
        ),
        ("PUT", "/apps/shop/environments/x/flags/f/rollout", {"percent": False}, "percent"),
        ("PUT", "/apps/shop/environments/x/flags/f/rollout", {"percent": "5"}, "percent"),
        ("POST", "/apps/shop/environments/x/rollback", {"to": "2"}, "to"),
        ("POST", "/apps/shop/environments/x/rollback", {"to": True}, "to"),
        ("PATCH", "/apps/shop/environments/x/config", {"set": {"A": 1}}, "set.A"),
        ("PATCH", "/apps/shop/environments/x/config", {"set": {}, "secret": 1}, "secret"),
        ("POST", "/apps/shop/flags", {"key": 5}, "key"),
        ("POST", "/apps/shop/environments/x/deploys", {"ref": "main", "hotfix": 1}, "hotfix"),
    ],
)
def test_request_bodies_take_no_value_of_another_json_type(api, method, path, body, field):
    client, tokens, _ = api
    deployer = {"Authorization": f"Bearer {tokens['deployer']}"}
    response = client.request(method, f"/api/v1{path}", json=body, headers=deployer)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"].startswith(f"{field}: "), response.text


@pytest.mark.parametrize(
    ("path", "where"),
    [
        ("/apps/Bad_App/environments", "path.app: expected a lowercase DNS label"),
        (f"/apps/{'a' * 41}/environments", "path.app: expected a lowercase DNS label"),
        ("/apps/shop/environments/-x", "path.name: expected a lowercase DNS label"),
        ("/apps/shop/environments/x/logs?service=Web", "query.service: expected a lowercase"),
        ("/apps/shop/environments/x/logs?tail=-1", "query.tail: "),
        ("/apps/shop/environments/x/events?timeout=0", "query.timeout: "),
        ("/builds/abc", "path.build_id: "),
    ],
)
def test_names_in_paths_follow_the_name_rules(api, path, where):
    client, tokens, _ = api
    viewer = {"Authorization": f"Bearer {tokens['viewer']}"}
    response = client.get(f"/api/v1{path}", headers=viewer)
    assert response.status_code == 400, response.text
    assert response.json()["detail"].startswith(where), response.text


def test_the_openapi_document_lists_every_answer_as_problem_json(api):
    client, tokens, _ = api
    published = document(client, tokens)
    assert "Problem" in published["components"]["schemas"]
    assert "HTTPValidationError" not in published["components"]["schemas"]
    assert published["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
    operations = [(p, m, o) for p, ops in published["paths"].items() for m, o in ops.items()]
    assert len(operations) >= 30
    for path, method, operation in operations:
        assert operation["security"] == [{"token": []}], (method, path)
        for status in ("400", "401", "403", "404", "409", "413", "422"):
            content = operation["responses"][status]["content"]
            schema = content["application/problem+json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Problem"}, (method, path, status)
    flagset = published["paths"]["/api/v1/apps/{app}/environments/{name}/flagset"]
    assert "4 MiB" in flagset["put"]["responses"]["413"]["description"]
    assert "1 MiB" in flagset["get"]["responses"]["413"]["description"]
    events = published["paths"]["/api/v1/apps/{app}/environments/{name}/events"]["get"]
    assert "text/event-stream" in events["responses"]["200"]["content"]
    timeout = next(p for p in events["parameters"] if p["name"] == "timeout")
    assert timeout["schema"]["maximum"] == 86_400
    app = next(p for p in events["parameters"] if p["name"] == "app")
    assert app["schema"]["pattern"] == DNS_LABEL


def test_every_api_route_checks_its_caller_before_the_body_and_caps_it(api):
    client, _, _ = api
    contexts = edge.api_routes(client.app)
    assert len(contexts) >= 30
    for context in contexts:
        assert edge.checks_of(context.original_route), context.path_format
        assert context.max_body_size is not None, context.path_format


def test_a_bad_config_value_is_named_never_echoed(api):
    client, tokens, _ = api
    deployer = {"Authorization": f"Bearer {tokens['deployer']}"}
    body = {"set": {"API_KEY": 918273645546372819}}
    response = client.request(
        "PATCH", "/api/v1/apps/shop/environments/x/config", json=body, headers=deployer
    )
    assert response.status_code == 400, response.text
    assert response.json()["detail"].startswith("set.API_KEY: ")
    assert "918273645546372819" not in response.text
