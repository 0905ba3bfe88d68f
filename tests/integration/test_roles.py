"""Who may call what: one table, `NEEDS`, says for every route of the OpenAPI document which
role it needs and where (docs/access.md); the test calls every route as each role, as
principals holding grants, with no token, a bad token and a revoked token, and compares what
was allowed with the table. A route added without a line here fails the test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from laneway.api import auth
from laneway.composition import build_app, build_context
from laneway.core.types import Role
from laneway.settings import load_settings
from laneway.store.repository import Store
from laneway.testing import spec_repo

V, DEV, DEP, ADM = Role.VIEWER, Role.DEVELOPER, Role.DEPLOYER, Role.ADMIN
CHANGE = "change"
"""Developer where the environment is not protected, deployer where it is."""

GLOBAL, APP, ENV, EVERY, ANY = "global", "app", "env", "every", "any"
"""Where the role is needed: the principal's own role; on some environment of the app (the
body names which: the route checks it once read); on the environment of the path; on each
environment of the app; on some environment of any app."""

NEEDS: dict[tuple[str, str], tuple[str, Role | str]] = {
    ("GET", "/api/v1/status"): (GLOBAL, V),
    ("GET", "/api/v1/apps"): (GLOBAL, V),
    ("PUT", "/api/v1/apps/{app}"): (APP, DEV),  # another repository: deployer (test_grants_api)
    ("GET", "/api/v1/apps/{app}/environments"): (GLOBAL, V),
    ("POST", "/api/v1/apps/{app}/environments"): (APP, DEV),
    ("GET", "/api/v1/apps/{app}/environments/{name}"): (GLOBAL, V),
    ("DELETE", "/api/v1/apps/{app}/environments/{name}"): (ENV, CHANGE),
    ("GET", "/api/v1/apps/{app}/environments/{name}/releases"): (GLOBAL, V),
    ("GET", "/api/v1/apps/{app}/environments/{name}/events"): (GLOBAL, V),
    ("GET", "/api/v1/apps/{app}/environments/{name}/logs"): (GLOBAL, V),
    ("GET", "/api/v1/apps/{app}/builds"): (GLOBAL, V),
    ("POST", "/api/v1/apps/{app}/builds"): (APP, DEV),
    ("GET", "/api/v1/builds/{build_id}"): (GLOBAL, V),
    ("POST", "/api/v1/apps/{app}/environments/{name}/deploys"): (ENV, CHANGE),
    ("POST", "/api/v1/apps/{app}/environments/{name}/deploys/cancel"): (ENV, CHANGE),
    ("POST", "/api/v1/apps/{app}/promotions"): (APP, DEV),
    ("POST", "/api/v1/apps/{app}/environments/{name}/rollback"): (ENV, CHANGE),
    ("GET", "/api/v1/apps/{app}/environments/{name}/config"): (GLOBAL, V),
    ("PATCH", "/api/v1/apps/{app}/environments/{name}/config"): (ENV, CHANGE),
    ("GET", "/api/v1/apps/{app}/environments/{name}/releases/{number}"): (GLOBAL, V),
    ("GET", "/api/v1/apps/{app}/diff"): (GLOBAL, V),
    ("POST", "/api/v1/apps/{app}/environments/{name}/canary"): (ENV, CHANGE),
    ("GET", "/api/v1/apps/{app}/environments/{name}/canary"): (GLOBAL, V),
    ("POST", "/api/v1/apps/{app}/environments/{name}/canary/pause"): (ENV, CHANGE),
    ("POST", "/api/v1/apps/{app}/environments/{name}/canary/resume"): (ENV, CHANGE),
    ("POST", "/api/v1/apps/{app}/environments/{name}/canary/promote"): (ENV, CHANGE),
    ("POST", "/api/v1/apps/{app}/environments/{name}/canary/abort"): (ENV, CHANGE),
    ("GET", "/api/v1/apps/{app}/environments/{name}/scale"): (GLOBAL, V),
    ("POST", "/api/v1/apps/{app}/environments/{name}/scale"): (ENV, CHANGE),
    ("POST", "/api/v1/apps/{app}/environments/{name}/restart"): (ENV, CHANGE),
    ("POST", "/api/v1/apps/{app}/environments/{name}/runs"): (ENV, CHANGE),
    ("GET", "/api/v1/apps/{app}/environments/{name}/config/{key}"): (GLOBAL, V),
    ("GET", "/api/v1/apps/{app}/flags"): (GLOBAL, V),
    ("POST", "/api/v1/apps/{app}/flags"): (EVERY, CHANGE),
    ("DELETE", "/api/v1/apps/{app}/flags/{key}"): (EVERY, CHANGE),
    ("GET", "/api/v1/apps/{app}/environments/{name}/flags"): (GLOBAL, V),
    ("GET", "/api/v1/apps/{app}/environments/{name}/flags/{key}"): (GLOBAL, V),
    ("PATCH", "/api/v1/apps/{app}/environments/{name}/flags/{key}"): (ENV, CHANGE),
    ("PUT", "/api/v1/apps/{app}/environments/{name}/flags/{key}/rollout"): (ENV, CHANGE),
    ("GET", "/api/v1/apps/{app}/environments/{name}/flagset"): (GLOBAL, V),
    ("PUT", "/api/v1/apps/{app}/environments/{name}/flagset"): (ENV, CHANGE),
    ("GET", "/api/v1/apps/{app}/environments/{name}/flag-history"): (GLOBAL, V),
    ("POST", "/api/v1/apps/{app}/environments/{name}/flag-key"): (ENV, CHANGE),
    ("GET", "/metrics"): (GLOBAL, V),
    ("POST", "/api/v1/secrets/rotate"): (GLOBAL, ADM),
    ("POST", "/api/v1/access/principals"): (GLOBAL, ADM),
    ("GET", "/api/v1/access/principals"): (GLOBAL, ADM),
    ("PATCH", "/api/v1/access/principals/{name}"): (GLOBAL, ADM),
    ("DELETE", "/api/v1/access/principals/{name}"): (GLOBAL, ADM),
    ("POST", "/api/v1/access/principals/{name}/tokens"): (GLOBAL, ADM),
    ("GET", "/api/v1/access/principals/{name}/tokens"): (GLOBAL, ADM),
    ("DELETE", "/api/v1/access/tokens/{token_id}"): (GLOBAL, ADM),
    ("POST", "/api/v1/access/principals/{name}/grants"): (GLOBAL, ADM),
    ("GET", "/api/v1/access/grants"): (GLOBAL, ADM),
    ("DELETE", "/api/v1/access/grants/{grant_id}"): (GLOBAL, ADM),
    ("GET", "/api/v1/approvals"): (GLOBAL, V),
    ("GET", "/api/v1/approvals/{request_id}"): (GLOBAL, V),
    # an unknown request (as here) needs a deployer of some environment; a known one, a
    # deployer of its environment (test_approvals_are_decided_by_deployers_of_their_environment)
    ("POST", "/api/v1/approvals/{request_id}/approve"): (ANY, DEP),
    ("POST", "/api/v1/approvals/{request_id}/reject"): (ANY, DEP),
    ("GET", "/api/v1/audit"): (GLOBAL, ADM),
    ("GET", "/api/v1/audit/verify"): (GLOBAL, ADM),
    ("GET", "/api/v1/audit/export"): (GLOBAL, ADM),
}

ENVIRONMENTS = {"dev": False, "prod": True}
"""The app's environments and whether each is protected: a preview and a production."""


@dataclass(frozen=True)
class Caller:
    """A principal and the roles it holds: its own, on each environment, and its best."""

    name: str
    own: Role
    on: dict[str, Role]
    grants: tuple[tuple[Role, str | None, str | None, str | None], ...] = ()
    """(role, app, environment, kind) of each grant it is given."""

    @property
    def best(self) -> Role:
        return max([self.own, *self.on.values()], key=list(Role).index)


CALLERS = [
    *(Caller(str(role), role, dict.fromkeys(ENVIRONMENTS, role)) for role in Role),
    Caller(
        "dev-of-a-preview",
        V,
        {"dev": DEV, "prod": V},
        grants=((DEV, "shop", "dev", None),),
    ),
    Caller(
        "deployer-of-production",
        DEV,
        {"dev": DEV, "prod": DEP},
        grants=((DEP, None, None, "production"),),
    ),
    Caller(
        "deployer-of-a-preview",
        V,
        {"dev": DEP, "prod": V},
        grants=((DEP, "shop", None, "preview"),),
    ),
    Caller(
        "deployer-of-another-app",
        V,
        {"dev": V, "prod": V},
        grants=((DEP, "blog", "prod", None),),
    ),
]


def needed(change: Role | str, environment: str) -> Role:
    if change != CHANGE:
        assert isinstance(change, Role)
        return change
    return DEP if ENVIRONMENTS[environment] else DEV


def allowed(caller: Caller, need: tuple[str, Role | str], environment: str | None) -> bool:
    scope, role = need
    if scope == GLOBAL:
        return caller.own.includes(needed(role, "dev"))
    if scope == ENV:
        assert environment is not None
        return caller.on[environment].includes(needed(role, environment))
    if scope == EVERY:
        return all(caller.on[e].includes(needed(role, e)) for e in ENVIRONMENTS)
    if scope == APP:
        return max(caller.on.values(), key=list(Role).index).includes(needed(role, "dev"))
    if scope == ANY:  # another app's grants count too
        best = DEP if any(g[0] is DEP for g in caller.grants) else caller.best
        return best.includes(needed(role, "dev"))
    raise AssertionError(scope)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str], Store]]:
    settings = load_settings(environ={"LANEWAY_HOME": str(tmp_path / "home")})
    store = Store.open(settings.database_url)
    ctx = build_context(settings, store)
    tokens = {}
    for caller in CALLERS:
        tokens[caller.name] = auth.new_token()
        store.add_token(
            name=caller.name, token_hash=auth.hash_token(tokens[caller.name]), role=caller.own
        )
        for role, app, environment, kind in caller.grants:
            store.add_grant(caller.name, role, app=app, environment=environment, kind=kind)
    revoked = auth.new_token()
    token_id = store.add_token(name="gone", token_hash=auth.hash_token(revoked), role=ADM)
    store.revoke_token(token_id)
    tokens["revoked"] = revoked
    repo = spec_repo(tmp_path / "repo", "app: shop\nservices:\n  web: {command: sleep 60}\n")
    with TestClient(build_app(ctx, run_controllers=False)) as client:
        admin = {"Authorization": f"Bearer {tokens['admin']}"}
        assert client.put("/api/v1/apps/shop", json={"repo": str(repo)}, headers=admin).is_success
        for name, kind, extra in (
            ("dev", "preview", {}),
            ("prod", "production", {"hotfix": True, "reason": "the test's"}),
        ):
            body = {"name": name, "kind": kind, "branch": "main", **extra}
            made = client.post("/api/v1/apps/shop/environments", json=body, headers=admin)
            assert made.status_code == 202, made.text
        yield client, tokens, store
    store.close()


def calls(client: TestClient, token: str) -> Iterator[tuple[str, str, str | None]]:
    """(method, path template, environment) of every operation of the OpenAPI document, with
    each environment for those of an environment."""
    document = client.get("/openapi.json", headers={"Authorization": f"Bearer {token}"})
    assert document.status_code == 200, document.text
    for template, operations in document.json()["paths"].items():
        for method in operations:
            if template.startswith("/api/v1/apps/{app}/environments/{name}"):
                for environment in ENVIRONMENTS:
                    yield method.upper(), template, environment
            else:
                yield method.upper(), template, None


def concrete(template: str, environment: str | None) -> str:
    names = {
        "{app}": "shop",
        "{name}": environment or "nobody",
        "{build_id}": "b",
        "{token_id}": "0a",
        "{grant_id}": "0a",
        "{request_id}": "0a0a0a0a",
        "{key}": "k",
        "{number}": "1",
    }
    for key, value in names.items():
        template = template.replace(key, value)
    return template


def refused_by_role(answer: httpx.Response) -> bool:
    """401, or 403 for a role (not, say, a protected environment's refusal of a build)."""
    if answer.status_code == 401:
        return True
    return answer.status_code == 403 and answer.json()["detail"].startswith("principal ")


def test_every_route_allows_what_the_table_says_and_nothing_else(world):
    client, tokens, _ = world
    listed = list(calls(client, tokens["viewer"]))
    templates = {(method, template) for method, template, _ in listed}
    assert templates == set(NEEDS), "every route of the document has one line in NEEDS"
    wrong = []
    for method, template, environment in listed:
        path = concrete(template, environment)
        for headers in (
            {},
            {"Authorization": "Bearer lw_wrong"},
            {"Authorization": f"Bearer {tokens['revoked']}"},
        ):
            answer = client.request(method, path, headers=headers, json={})
            if answer.status_code != 401:
                wrong.append((method, path, "no usable token", answer.status_code))
        for caller in CALLERS:
            headers = {"Authorization": f"Bearer {tokens[caller.name]}"}
            answer = client.request(method, path, headers=headers, json={})
            expected = allowed(caller, NEEDS[(method, template)], environment)
            if refused_by_role(answer) == expected:
                wrong.append((method, path, caller.name, answer.status_code, answer.text[:200]))
            elif not expected:
                assert answer.headers["content-type"] == "application/problem+json"
                detail = answer.json()["detail"]
                assert f"principal {caller.name!r} has role" in detail, detail
                scope, role = NEEDS[(method, template)]
                if scope == ENV:
                    need = needed(role, str(environment))
                    assert f"this needs {need} on shop/{environment}" in detail, detail
    assert not wrong, "\n".join(map(str, wrong))


def test_each_grant_changes_what_its_holder_may_do():
    """The table tells the callers apart: each grant lets its holder do more than its own
    role alone, and each role more than the one below it."""

    def outcomes(caller: Caller) -> list[bool]:
        return [allowed(caller, need, e) for need in NEEDS.values() for e in ENVIRONMENTS]

    alone = {c.own: outcomes(c) for c in CALLERS if not c.grants}
    for caller in CALLERS:
        if caller.grants:
            assert outcomes(caller) != alone[caller.own], caller.name
    for lower, higher in zip(list(Role), list(Role)[1:], strict=False):
        assert alone[lower] != alone[higher], (lower, higher)
