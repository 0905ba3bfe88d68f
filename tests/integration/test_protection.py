"""Production protection over the API, as a deployer would try to get around it: a production
environment under a new name, a branch whose spec lifts protection, and destroying production
to create it again. Protection is decided by what runs now, never by the proposed spec."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from laneway.testing import Server, git, live, make_server, spec_repo

pytestmark = pytest.mark.integration

SPEC = "app: shop\nservices:\n  web: {command: python3 -m http.server $PORT --bind 127.0.0.1}\n"
UNPROTECTED = SPEC + "environments:\n  production: {protected: false}\n"
OUTSIDE = SPEC + "pipeline: [production]\n"


def commit_branch(repo: Path, branch: str, spec: str) -> None:
    git(repo, "checkout", "-q", "-b", branch, "main")
    (repo / "laneway.yaml").write_text(spec)
    git(repo, "commit", "-q", "-am", branch)
    git(repo, "checkout", "-q", "main")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, httpx.Client]]:
    """A server whose app `shop` has staging live from main, and branches `feature-x`,
    `unprotect` (its spec says production is not protected) and `outside` (its pipeline
    leaves staging out)."""
    base = tmp_path_factory.mktemp("protection")
    repo = spec_repo(base / "repo", SPEC)
    commit_branch(repo, "feature-x", SPEC + "# x\n")
    commit_branch(repo, "unprotect", UNPROTECTED)
    commit_branch(repo, "outside", OUTSIDE)
    server = make_server(base / "lw")
    try:
        server.start()
        with server.http() as http:
            assert http.put("/api/v1/apps/shop", json={"repo": str(repo)}).status_code == 200
            create(http, name="staging", kind="staging", branch="main")
            server.wait_for("staging", live("v1"), what="staging live")
            yield server, http
    finally:
        server.teardown()


def create(http: httpx.Client, **body: Any) -> dict[str, Any]:
    response = http.post("/api/v1/apps/shop/environments", json=body)
    assert response.status_code == 202, response.text
    return dict(response.json())


def refused(response: httpx.Response, text: str) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert text in response.json()["detail"]


def absent(http: httpx.Client, name: str) -> bool:
    return http.get(f"/api/v1/apps/shop/environments/{name}").status_code == 404


def staging_build(http: httpx.Client) -> str:
    return str(http.get("/api/v1/apps/shop/environments/staging").json()["build"])


def test_a_production_kind_under_another_name_takes_only_what_ran_in_staging(world):
    server, http = world
    response = http.post(
        "/api/v1/apps/shop/environments",
        json={"name": "prod2", "kind": "production", "branch": "feature-x"},
    )
    refused(response, "prod2 is protected: it only takes builds that ran healthy in staging")
    assert absent(http, "prod2")
    # a spec that leaves staging out of its pipeline does not move prod2 out of it either
    response = http.post(
        "/api/v1/apps/shop/environments",
        json={"name": "prod2", "kind": "production", "branch": "outside"},
    )
    refused(response, "ran healthy in staging")
    # what ran in staging it takes
    create(http, name="prod2", kind="production", build=staging_build(http))
    server.wait_for("prod2", live("v1"), what="prod2 live")
    # and, live, it is protected like production: feature-x is refused
    response = http.post("/api/v1/apps/shop/environments/prod2/deploys", json={"ref": "feature-x"})
    refused(response, "ran healthy in staging")
    destroyed = http.delete(
        "/api/v1/apps/shop/environments/prod2", params={"hotfix": "true", "reason": "cleanup"}
    )
    assert destroyed.status_code == 202, destroyed.text
    server.wait_gone("prod2")


def test_a_branch_whose_spec_lifts_protection_does_not_lift_it(world):
    _, http = world
    response = http.post(
        "/api/v1/apps/shop/environments",
        json={"name": "production", "kind": "production", "branch": "unprotect"},
    )
    refused(response, "production is protected")
    assert absent(http, "production")


def test_production_under_another_kind_is_refused(world):
    """Named production but of kind preview, it would take production's name and place in
    the pipeline without its protection."""
    _, http = world
    response = http.post(
        "/api/v1/apps/shop/environments",
        json={"name": "production", "kind": "preview", "branch": "feature-x"},
    )
    assert response.status_code == 400, response.text
    assert "named production is of kind production" in response.json()["detail"]
    assert absent(http, "production")


def test_destroying_production_needs_a_hotfix_and_recreating_it_is_protected(world):
    server, http = world
    create(http, name="production", kind="production", build=staging_build(http))
    server.wait_for("production", live("v1"), what="production live")
    path = "/api/v1/apps/shop/environments/production"

    refused(http.delete(path), "production is protected: destroying it needs")
    missing_reason = http.delete(path, params={"hotfix": "true"})
    assert missing_reason.status_code == 400, missing_reason.text
    assert http.get(path).json()["desired"] == "running"

    after = server.last_event("production")
    assert http.delete(path, params={"hotfix": "true", "reason": "INC-9"}).status_code == 202
    events = http.get(f"{path}/events", params={"after": after}).json()
    assert any("hotfix: INC-9" in e["message"] for e in events), events
    server.wait_gone("production")

    # gone, production is protected as its kind is: the branch cannot lift it
    response = http.post(
        "/api/v1/apps/shop/environments",
        json={"name": "production", "kind": "production", "branch": "unprotect"},
    )
    refused(response, "production is protected")
    assert absent(http, "production")


def test_a_running_spec_that_unprotects_production_is_what_counts(world):
    """Once a spec saying `protected: false` runs in production (here by a recorded hotfix),
    production follows it: it is destroyed without a hotfix."""
    server, http = world
    create(
        http,
        name="production",
        kind="production",
        branch="unprotect",
        hotfix=True,
        reason="the team's choice",
    )
    server.wait_for("production", live("v1"), what="production live")
    response = http.delete("/api/v1/apps/shop/environments/production")
    assert response.status_code == 202, response.text
    server.wait_gone("production")


def test_a_longer_pipeline_running_in_staging_is_followed_by_a_new_production(world, tmp_path):
    """With no production running, staging's spec (`pipeline: [staging, beta, production]`)
    cannot lift production's protection, but its longer pipeline is followed: a new
    production takes only what ran in beta."""
    server, http = world
    repo = tmp_path / "longer"
    repo.mkdir()
    spec = SPEC.replace("app: shop", "app: longer") + "pipeline: [staging, beta, production]\n"
    (repo / "laneway.yaml").write_text(spec + "environments:\n  production: {protected: false}\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "longer")
    assert http.put("/api/v1/apps/longer", json={"repo": str(repo)}).status_code == 200
    base = "/api/v1/apps/longer/environments"
    assert (
        http.post(base, json={"name": "staging", "kind": "staging", "branch": "main"}).status_code
        == 202
    )
    server.wait_for("staging", live("v1"), what="staging live", app="longer")
    build = http.get(f"{base}/staging").json()["build"]
    response = http.post(base, json={"name": "production", "kind": "production", "build": build})
    refused(response, "it only takes builds that ran healthy in beta")
    assert http.get(f"{base}/production").status_code == 404
    assert http.delete(f"{base}/staging").status_code == 202
    server.wait_gone("staging", app="longer")
