"""Principals and tokens through the API of a real server (api/access.py, api/auth.py):
a new principal's token works; a revoked, expired or removed one is refused with 401 saying
which; only admins manage them; the last admin stays; no token is ever listed or stored in
plain text."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from laneway.api import auth
from laneway.settings import load_settings
from laneway.testing import Server, make_server

pytestmark = pytest.mark.integration

PRINCIPALS = "/api/v1/access/principals"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = make_server(tmp_path_factory.mktemp("access") / "lw")
    try:
        s.start()
        yield s
    finally:
        s.teardown()


def as_(server: Server, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def add(server: Server, name: str, role: str, **extra: object) -> dict:
    with server.http() as http:
        response = http.post(PRINCIPALS, json={"name": name, "role": role, **extra})
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    return dict(response.json())


def database(server: Server) -> Path:
    url = load_settings(environ=server.env).database_url
    return Path(url.removeprefix("sqlite:///"))


def test_a_new_principals_token_works_and_is_listed_without_it(server: Server) -> None:
    created = add(server, "ci-deploy", "deployer", kind="service")
    token = created["token"]["token"]
    assert token.startswith("lw_") and len(token) > 40
    assert created["principal"] == created["principal"] | {
        "name": "ci-deploy",
        "kind": "service",
        "role": "deployer",
        "tokens": 1,
        "removed_at": None,
    }
    assert created["token"]["state"] == "active" and created["token"]["expires_at"] is None
    with as_(server, token) as http:
        assert http.get("/api/v1/apps").status_code == 200
    with server.http() as http:
        listed = http.get(PRINCIPALS)
        tokens = http.get(f"{PRINCIPALS}/ci-deploy/tokens")
    assert listed.status_code == 200 and tokens.status_code == 200
    for answer in (listed, tokens):
        assert token not in answer.text and auth.hash_token(token) not in answer.text
        assert "lw_" not in answer.text
    assert {p["name"]: p["role"] for p in listed.json()} == {
        "admin": "admin",
        "ci-deploy": "deployer",
    }
    (only,) = tokens.json()
    assert only["id"] == created["token"]["id"] and only["state"] == "active"
    assert only["last_used_at"] is not None  # it was used above


def test_a_revoked_token_is_refused_on_its_next_request(server: Server) -> None:
    created = add(server, "carol", "viewer")
    token, token_id = created["token"]["token"], created["token"]["id"]
    with as_(server, token) as http:
        assert http.get("/api/v1/apps").status_code == 200
        with server.http() as admin:
            revoked = admin.delete(f"/api/v1/access/tokens/{token_id}")
            assert revoked.status_code == 200, revoked.text
            assert revoked.json()["state"] == "revoked"
            assert admin.delete(f"/api/v1/access/tokens/{token_id}").status_code == 200
        refused = http.get("/api/v1/apps")
    assert refused.status_code == 401
    assert refused.json()["detail"] == "token revoked"
    assert refused.headers["www-authenticate"] == "Bearer"


def test_an_expired_token_is_refused(server: Server) -> None:
    created = add(server, "temp", "viewer", expires_in=3600)
    token, token_id = created["token"]["token"], created["token"]["id"]
    assert created["token"]["expires_at"] is not None
    with as_(server, token) as http:
        assert http.get("/api/v1/apps").status_code == 200
        engine = create_engine(f"sqlite:///{database(server)}")
        try:
            with engine.begin() as connection:
                connection.execute(
                    text("UPDATE tokens SET expires_at = '2020-01-01 00:00:00' WHERE id = :id"),
                    {"id": token_id},
                )
        finally:
            engine.dispose()
        refused = http.get("/api/v1/apps")
    assert refused.status_code == 401
    assert refused.json()["detail"] == "token expired"
    with server.http() as admin:
        (listed,) = admin.get(f"{PRINCIPALS}/temp/tokens").json()
        assert listed["state"] == "expired"
        assert {p["name"]: p["tokens"] for p in admin.get(PRINCIPALS).json()}["temp"] == 0


def test_another_token_and_removing_a_principal_refuses_all_its_tokens(server: Server) -> None:
    first = add(server, "dave", "deployer")["token"]["token"]
    with server.http() as admin:
        response = admin.post(f"{PRINCIPALS}/dave/tokens", json={"expires_in": 86400})
        assert response.status_code == 201, response.text
        assert response.headers["cache-control"] == "no-store"
        second = response.json()["token"]
        assert second != first
        assert [t["state"] for t in admin.get(f"{PRINCIPALS}/dave/tokens").json()] == [
            "active",
            "active",
        ]
        for token in (first, second):
            with as_(server, token) as http:
                assert http.get("/api/v1/apps").status_code == 200
        assert admin.delete(f"{PRINCIPALS}/dave").status_code == 200
        for token in (first, second):
            with as_(server, token) as http:
                refused = http.get("/api/v1/apps")
            assert (refused.status_code, refused.json()["detail"]) == (401, "token revoked")
        assert "dave" not in [p["name"] for p in admin.get(PRINCIPALS).json()]
        removed = admin.get(PRINCIPALS, params={"removed": "true"}).json()
        assert [p["removed_at"] is not None for p in removed if p["name"] == "dave"] == [True]
        # the name is free again, for a new principal whose tokens are its own
        again = add(server, "dave", "viewer")["token"]["token"]
        with as_(server, again) as http:
            assert http.get("/api/v1/apps").status_code == 200
        with as_(server, first) as http:
            assert http.get("/api/v1/apps").status_code == 401


@pytest.mark.parametrize("role", ["viewer", "deployer"])
def test_only_admins_manage_principals(server: Server, role: str) -> None:
    token = add(server, f"not-admin-{role}", role)["token"]["token"]
    with as_(server, token) as http:
        for method, url, body in [
            ("POST", PRINCIPALS, {"name": "mallory", "role": "admin"}),
            ("GET", PRINCIPALS, None),
            ("PATCH", f"{PRINCIPALS}/not-admin-{role}", {"role": "admin"}),
            ("DELETE", f"{PRINCIPALS}/admin", None),
            ("POST", f"{PRINCIPALS}/admin/tokens", {}),
            ("GET", f"{PRINCIPALS}/admin/tokens", None),
            ("DELETE", "/api/v1/access/tokens/0a0a0a0a", None),
        ]:
            response = http.request(method, url, json=body)
            assert response.status_code == 403, (method, url, response.text)
            assert response.json()["detail"] == (
                f"principal 'not-admin-{role}' has role {role}; this needs admin"
            )
    with server.http() as admin:
        assert "mallory" not in admin.get(PRINCIPALS).text


def test_the_last_admin_can_be_neither_removed_nor_demoted(server: Server) -> None:
    with server.http() as admin:
        for method, body in (("DELETE", None), ("PATCH", {"role": "deployer"})):
            response = admin.request(method, f"{PRINCIPALS}/admin", json=body)
            assert response.status_code == 409, response.text
            assert response.json()["detail"].startswith(
                "cannot remove 'admin': it is the last admin"
                if method == "DELETE"
                else "cannot demote 'admin' to deployer: it is the last admin"
            )
        # with a second admin, either may go; then the other is the last again
        add(server, "second", "admin")
        demoted = admin.patch(f"{PRINCIPALS}/second", json={"role": "viewer"})
        assert demoted.status_code == 200 and demoted.json()["role"] == "viewer"
        assert admin.patch(f"{PRINCIPALS}/second", json={"role": "admin"}).status_code == 200
        assert admin.delete(f"{PRINCIPALS}/second").status_code == 200
        assert admin.delete(f"{PRINCIPALS}/admin").status_code == 409
        assert admin.get(PRINCIPALS).status_code == 200


@pytest.mark.parametrize(
    ("method", "url", "body", "status", "says"),
    [
        ("POST", PRINCIPALS, {"name": "Bad_Name", "role": "viewer"}, 400, "name: expected lower"),
        ("POST", PRINCIPALS, {"name": "x" * 65, "role": "viewer"}, 400, "at most 64"),
        ("POST", PRINCIPALS, {"name": "ok", "role": "boss"}, 400, "role"),
        ("POST", PRINCIPALS, {"name": "ok", "role": "viewer", "kind": "robot"}, 400, "kind"),
        ("POST", PRINCIPALS, {"name": "ok", "role": "viewer", "expires_in": 59}, 400, "expires"),
        ("POST", PRINCIPALS, {"name": "ok", "role": "viewer", "expires_in": "30d"}, 400, "expi"),
        ("POST", PRINCIPALS, {"name": "ok", "role": "viewer", "token": "x"}, 400, "unknown"),
        ("POST", PRINCIPALS, {"name": "admin", "role": "viewer"}, 409, "exists already"),
        ("POST", f"{PRINCIPALS}/nobody/tokens", {}, 404, "no principal named 'nobody'"),
        ("GET", f"{PRINCIPALS}/nobody/tokens", None, 404, "no principal named 'nobody'"),
        ("DELETE", f"{PRINCIPALS}/nobody", None, 404, "no principal named 'nobody'"),
        ("DELETE", "/api/v1/access/tokens/0a0a0a0a", None, 404, "no token '0a0a0a0a'"),
        ("PATCH", f"{PRINCIPALS}/admin", {"role": "root"}, 400, "role"),
    ],
)
def test_bad_requests_say_what_and_change_nothing(
    server: Server, method: str, url: str, body: object, status: int, says: str
) -> None:
    with server.http() as admin:
        before = admin.get(PRINCIPALS, params={"removed": "true"}).json()
        response = admin.request(method, url, json=body)
        assert response.status_code == status, response.text
        assert says in response.json()["detail"]
        assert admin.get(PRINCIPALS, params={"removed": "true"}).json() == before


def test_no_token_is_in_the_store_in_plain_text(server: Server) -> None:
    made = [add(server, f"grep-{n}", "viewer")["token"]["token"] for n in range(3)]
    with server.http() as admin:
        response = admin.post(f"{PRINCIPALS}/grep-0/tokens", json={})
        made.append(response.json()["token"])
    made.append(server.token())
    for token in made:  # each used once, so that its last use is written too
        with as_(server, token) as http:
            assert http.get("/api/v1/apps").status_code == 200
    files = list(database(server).parent.glob(database(server).name + "*"))
    raw = b"".join(p.read_bytes() for p in files)
    assert raw  # the database and its write-ahead log
    for token in made:
        assert token.encode() not in raw
        assert token.removeprefix("lw_").encode() not in raw
        assert auth.hash_token(token).encode() in raw
    log = server.log.read_text()
    assert "lw_" not in log
    assert "admin added user grep-0 (viewer), token" in log  # who did what, by token id


def test_a_fresh_install_writes_its_first_admins_token_and_says_where(server: Server) -> None:
    config = server.home / "client.json"
    assert oct(config.stat().st_mode & 0o777) == "0o600"
    assert f"principal 'admin'; its token is in {config} (mode 0600)" in server.log.read_text()
    with server.http() as admin:
        (first,) = admin.get(f"{PRINCIPALS}/admin/tokens").json()
    assert first["state"] == "active" and first["expires_at"] is None
