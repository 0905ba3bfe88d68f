"""The API of scale, restart and run: strict bodies, roles, what each writes, and a one-off
process run by the real local runtime, streamed, timed out and cleaned up."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from laneway.api import auth
from laneway.composition import build_app, build_context
from laneway.controllers.context import Context
from laneway.core.environments import RUN_SERVICE
from laneway.core.types import BuildRecord, Environment, Kind, Role
from laneway.runtime.local import scan
from laneway.settings import load_settings
from laneway.store.repository import Store
from laneway.testing import poll_until, promote_now

SPEC = """\
app: shop
services:
  web: {command: serve, health: /healthz}
  worker: {command: work}
hooks: {release: migrate}
"""
ENV = "/api/v1/apps/shop/environments/staging"


@dataclass
class Api:
    client: TestClient
    ctx: Context
    store: Store
    tokens: dict[Role, str]

    def headers(self, role: Role = Role.DEPLOYER) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def post(self, path: str, body: object = None, role: Role = Role.DEPLOYER) -> httpx.Response:
        return self.client.post(f"{ENV}/{path}", json=body, headers=self.headers(role))

    def environment(self) -> Environment:
        return self.store.get_environment("shop", "staging")

    def releases(self) -> list[str]:
        return [r.name for r in self.store.releases(self.environment().id)]

    def run(self, body: dict[str, object]) -> list[tuple[str, dict[str, object]]]:
        """The events of a run's stream, in order."""
        found = []
        with self.client.stream("POST", f"{ENV}/runs", json=body, headers=self.headers()) as r:
            assert r.status_code == 200, r.read()
            kind = ""
            for line in r.iter_lines():
                if line.startswith("event:"):
                    kind = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    found.append((kind, json.loads(line.split(":", 1)[1])))
        return found


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    settings = load_settings(environ={"LANEWAY_HOME": str(tmp_path / "home")})
    settings.make_dirs()
    store = Store.open(settings.database_url)
    ctx = build_context(settings, store)
    tokens = {}
    for role in Role:
        tokens[role] = auth.new_token()
        store.add_token(name=role, token_hash=auth.hash_token(tokens[role]), role=role)
    store.ensure_app("shop", str(tmp_path))
    build = "sha256:" + "a" * 64
    store.record_build(BuildRecord(build, "shop", "c" * 40, "main", SPEC, build, datetime.now(UTC)))
    environment = store.create_environment(
        app="shop", name="staging", kind=Kind.STAGING, branch=None, ref=None, build_id=build
    )
    with TestClient(build_app(ctx, run_controllers=False)) as client:
        yield Api(client, ctx, store, tokens)
    for process in scan(settings.owner):
        ctx.runtime.stop_process(process.key, timeout=1)
    store.close()
    del environment


def make_live(api: Api) -> Environment:
    """What the reconciler records once v1 serves; its directory, as unpacked."""
    environment = api.environment()
    promote_now(api.store, environment.id)
    api.store.update_environment(environment.id, hook_release=environment.release)
    api.ctx.release_dir(environment.id, environment.release).mkdir(parents=True)
    return api.environment()


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"replicas": {"web": "3"}}, "replicas.web"),
        ({"replicas": {"web": True}}, "replicas.web"),
        ({"replicas": {"web": 1.5}}, "replicas.web"),
        ({"replicas": {"web": None}}, "replicas.web"),
        ({"replicas": {"web": 65}}, "replicas.web"),
        ({"replicas": {"web": -1}}, "replicas.web"),
        ({"replicas": {"Web": 1}}, "replicas.Web"),
        ({"replicas": {}}, "replicas"),
        ({}, "replicas"),
        ({"replicas": {"web": 2}, "extra": 1}, "extra"),
    ],
)
def test_scale_refuses_a_bad_body_and_writes_nothing(
    api: Api, body: dict[str, object], where: str
) -> None:
    make_live(api)
    answer = api.post("scale", body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["detail"].startswith(where)
    assert api.releases() == ["v1"]


def test_scale_names_an_unknown_service_and_viewers_may_only_read(api: Api) -> None:
    make_live(api)
    answer = api.post("scale", {"replicas": {"api": 2}})
    assert answer.status_code == 400
    assert answer.json()["detail"] == "api: no such service in the spec (services: web, worker)"
    assert api.post("scale", {"replicas": {"web": 2}}, role=Role.VIEWER).status_code == 403
    assert api.post("restart", role=Role.VIEWER).status_code == 403
    run = {"service": "web", "command": ["true"]}
    assert api.post("runs", run, role=Role.VIEWER).status_code == 403
    shown = api.client.get(f"{ENV}/scale", headers=api.headers(Role.VIEWER))
    assert shown.json() == {"release": "v1", "replicas": {"web": 1, "worker": 1}, "overrides": {}}
    assert api.releases() == ["v1"]


def test_scale_is_a_release_served_by_the_live_generation(api: Api) -> None:
    make_live(api)
    answer = api.post("scale", {"replicas": {"web": 3}})
    assert answer.status_code == 202, answer.text
    release = answer.json()
    assert (release["name"], release["generation"], release["replicas"]) == ("v2", "v1", {"web": 3})
    assert release["description"] == "scale web=3"
    environment = api.environment()
    assert (environment.release, environment.target_generation, environment.live) == (2, 1, 1)
    shown = api.client.get(ENV, headers=api.headers(Role.VIEWER)).json()
    assert shown["scale"] == {"web": 3, "worker": 1}
    again = api.post("scale", {"replicas": {"web": 3}}).json()
    assert again["unchanged"] is True and api.releases() == ["v2", "v1"]


def test_scale_and_restart_wait_for_a_deploy_under_way(api: Api) -> None:
    make_live(api)
    environment = api.environment()
    api.store.create_release(
        environment.id,
        expect_release=1,
        build_id=environment.build_id,
        commit=None,
        ref=None,
        config_version=0,
        config_sealed="",
        description="deploy",
        created_by="test",
    )
    assert api.post("scale", {"replicas": {"web": 2}}).status_code == 409
    assert api.post("restart").status_code == 409
    assert api.releases() == ["v2", "v1"]


def test_restart_is_a_new_generation_whose_hook_counts_as_run(api: Api) -> None:
    make_live(api)
    api.post("scale", {"replicas": {"worker": 0}})
    promote_now(api.store, api.environment().id)
    answer = api.post("restart")
    assert answer.status_code == 202, answer.text
    release = answer.json()
    assert (release["name"], release["generation"], release["description"]) == (
        "v3",
        "v3",
        "restart",
    )
    assert release["replicas"] == {"worker": 0}
    environment = api.environment()
    assert (environment.target_generation, environment.live, environment.hook_release) == (3, 1, 3)


def test_run_streams_output_and_the_exit_code(api: Api) -> None:
    environment = make_live(api)
    events = api.run({"service": "worker", "command": ["echo one; echo two >&2; exit 3"]})
    kinds = [kind for kind, _ in events]
    assert kinds == ["started", "output", "output", "exit"]
    assert [data["line"] for kind, data in events if kind == "output"] == ["one", "two"]
    assert events[-1][1] == {"code": 3, "timed_out": False}
    recorded = [e.message for e in api.store.events(environment.id) if e.type == "run"]
    assert recorded == [
        "deployer ran `echo one; echo two >&2; exit 3` as worker on v1",
        "`echo one; echo two >&2; exit 3` exited with code 3",
    ]
    runs = api.ctx.settings.environments_dir / environment.id / "runs"
    poll_until(lambda: not list(runs.iterdir()), what="the run's output removed")


def test_a_run_past_its_timeout_is_stopped(api: Api) -> None:
    make_live(api)
    events = api.run({"service": "web", "command": ["sleep", "60"], "timeout": 1})
    assert events[-1] == ("exit", {"code": None, "timed_out": True})
    owner = api.ctx.settings.owner
    poll_until(
        lambda: not [p for p in scan(owner) if p.service == RUN_SERVICE],
        what="the timed-out process stopped",
    )


def test_run_needs_a_live_release_a_known_service_and_a_sane_body(api: Api) -> None:
    answer = api.post("runs", {"service": "web", "command": ["true"]})
    assert answer.status_code == 409 and "no live release" in answer.json()["detail"]
    make_live(api)
    answer = api.post("runs", {"service": "nope", "command": ["true"]})
    assert answer.status_code == 400
    assert (
        answer.json()["detail"] == "service 'nope': not in the spec of v1 (services: web, worker)"
    )
    for body in (
        {"service": "web", "command": []},
        {"service": "web", "command": "true"},
        {"service": "web", "command": ["true"], "timeout": 0},
        {"service": "web", "command": ["true"], "timeout": "5"},
        {"service": "web", "command": ["a\x00b"]},
    ):
        assert api.post("runs", body).status_code == 400, body


def test_restarting_one_service_is_a_release_served_by_the_live_processes(api: Api) -> None:
    assert api.post("restart", {"service": "web"}).status_code == 409  # nothing live yet
    make_live(api)
    answer = api.post("restart", {"service": "nope"})
    assert answer.status_code == 400
    assert answer.json()["detail"] == "nope: no such service in the spec (services: web, worker)"
    assert api.post("restart", {"service": "Web"}).status_code == 400
    assert api.post("restart", {"service": "web", "extra": 1}).status_code == 400
    assert api.releases() == ["v1"]
    answer = api.post("restart", {"service": "web"})
    assert answer.status_code == 202, answer.text
    release = answer.json()
    assert (release["name"], release["generation"], release["description"]) == (
        "v2",
        "v1",
        "restart web",
    )
    stored = api.store.get_release(api.environment().id, 2)
    assert list(stored.restarts) == ["web"]
