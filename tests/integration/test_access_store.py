"""The store's principals and tokens on real SQLite (store/access.py), and migration 0011,
which makes each token of before a principal of its name and role."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import text

from laneway.api import auth
from laneway.core.access import PrincipalKind
from laneway.core.types import Role
from laneway.errors import Conflict, InvalidInput
from laneway.store import db
from laneway.store.repository import Store

pytestmark = pytest.mark.integration


@pytest.fixture
def url(empty_store_url: str) -> str:
    return empty_store_url


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    s = Store.open(url)
    try:
        yield s
    finally:
        s.close()


def test_two_admins_removing_each_other_at_once_leave_one(store: Store) -> None:
    for name in ("ann", "bob"):
        store.add_token(name=name, token_hash=auth.hash_token(name), role=Role.ADMIN)
    outcomes: dict[str, str] = {}
    start = threading.Barrier(2)

    def remove(name: str) -> None:
        start.wait()
        try:
            store.remove_principal(name)
            outcomes[name] = "removed"
        except Conflict as exc:
            outcomes[name] = exc.message

    threads = [threading.Thread(target=remove, args=(n,)) for n in ("ann", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes.values())[1] == "removed"
    assert "last admin" in sorted(outcomes.values())[0]
    now = datetime.now(UTC)
    assert [p.role for p in store.principals(now=now)] == [Role.ADMIN]


def test_a_token_is_found_by_its_hash_with_its_principal(store: Store) -> None:
    principal, token = store.create_principal(
        "ci",
        kind=PrincipalKind.SERVICE,
        role=Role.DEPLOYER,
        token_hash="h" * 64,
        expires_at=datetime.now(UTC) + timedelta(days=1),
    )
    found = store.credential("h" * 64)
    assert found is not None
    assert (found.principal.id, found.principal.role, found.token) == (
        principal.id,
        Role.DEPLOYER,
        token,
    )
    assert store.token_by_hash("h" * 64) == (token.id, "ci", Role.DEPLOYER)
    assert store.credential("x" * 64) is None
    with pytest.raises(InvalidInput, match="principal name 'CI'"):
        store.create_principal("CI", kind=PrincipalKind.USER, role=Role.VIEWER, token_hash="y")
    with pytest.raises(Conflict, match="has role deployer, not admin"):
        store.add_token(name="ci", token_hash="z" * 64, role=Role.ADMIN)


def test_last_use_is_written_once_a_minute(store: Store) -> None:
    _, token = store.create_principal(
        "u", kind=PrincipalKind.USER, role=Role.VIEWER, token_hash="h" * 64
    )
    now = datetime.now(UTC)
    store.touch_token(token.id, now=now)
    store.touch_token(token.id, now=now + timedelta(seconds=30))
    assert store.tokens_of("u")[0].last_used_at == now
    store.touch_token(token.id, now=now + timedelta(seconds=61))
    assert store.tokens_of("u")[0].last_used_at == now + timedelta(seconds=61)


def _old_store(url: str, tokens: list[tuple[str, str, str, str]]) -> str:
    engine = db.create_store_engine(url)
    config = db.alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0010")
        for token_id, name, role, made in tokens:
            connection.execute(
                text("INSERT INTO tokens VALUES (:id, :name, :hash, :role, :made)"),
                {"id": token_id, "name": name, "hash": token_id * 8, "role": role, "made": made},
            )
    engine.dispose()
    return url


def test_migration_makes_each_token_a_principal_of_its_name_and_role(url: str) -> None:
    _old_store(
        url,
        [
            ("00000001", "admin", "admin", "2026-01-01 00:00:00"),
            ("00000002", "ci", "deployer", "2026-01-02 00:00:00"),
            ("00000003", "ci", "deployer", "2026-01-03 00:00:00"),
            ("00000004", "ci", "viewer", "2026-01-04 00:00:00"),
            ("00000005", "Release Bot", "viewer", "2026-01-05 00:00:00"),
        ],
    )
    store = Store.open(url)
    try:
        now = datetime.now(UTC)
        listed = {(p.name, p.role, p.tokens) for p in store.principals(now=now)}
        assert listed == {
            ("admin", Role.ADMIN, 1),
            ("ci", Role.DEPLOYER, 2),
            ("ci-2", Role.VIEWER, 1),
            ("release-bot", Role.VIEWER, 1),
        }
        for token_id, name, role in [
            ("00000001", "admin", Role.ADMIN),
            ("00000003", "ci", Role.DEPLOYER),
            ("00000004", "ci-2", Role.VIEWER),
            ("00000005", "release-bot", Role.VIEWER),
        ]:
            assert store.token_by_hash(token_id * 8) == (token_id, name, role)
        assert [t.id for t in store.tokens_of("ci")] == ["00000002", "00000003"]
        assert store.count_tokens() == 5
    finally:
        store.close()


def test_migration_down_keeps_the_tokens_that_are_good(url: str) -> None:
    _old_store(
        url,
        [
            ("00000001", "admin", "admin", "2026-01-01 00:00:00"),
            ("00000002", "ci", "deployer", "2026-01-02 00:00:00"),
        ],
    )
    store = Store.open(url)
    store.revoke_token("00000002")
    store.close()
    engine = db.create_store_engine(url)
    config = db.alembic_config()
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0010")
            rows = connection.execute(text("SELECT id, name, role FROM tokens")).all()
        assert [tuple(r) for r in rows] == [("00000001", "admin", "admin")]
    finally:
        engine.dispose()
