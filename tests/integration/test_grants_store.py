"""The store's grants (store/grants.py) on SQLite and PostgreSQL, and migration 0013 down."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import text

from laneway.api import auth
from laneway.core.types import Kind, Role
from laneway.errors import InvalidInput, NotFound
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


def test_grants_are_kept_replaced_and_revoked(store: Store) -> None:
    store.add_token(name="dana", token_hash=auth.hash_token("d"), role=Role.DEVELOPER)
    one = store.add_grant("dana", Role.DEVELOPER, app="shop", environment="staging", kind=None)
    kind = store.add_grant("dana", Role.DEPLOYER, app=None, environment=None, kind="production")
    again = store.add_grant("dana", Role.DEPLOYER, app="shop", environment="staging", kind=None)
    assert again.id == one.id and again.role is Role.DEPLOYER
    held = store.grants("dana")
    assert [(g.scope, g.role) for g in held] == [
        ("shop/staging", Role.DEPLOYER),
        ("*/kind=production", Role.DEPLOYER),
    ]
    assert held[1].kind is Kind.PRODUCTION
    credential = store.credential(auth.hash_token("d"))
    assert credential is not None
    assert len(store.grants_of_principal(credential.principal.id, "dana")) == 2
    assert store.remove_grant(kind.id).scope == "*/kind=production"
    with pytest.raises(NotFound, match="no grant"):
        store.remove_grant(kind.id)
    with pytest.raises(NotFound, match="no principal named 'nobody'"):
        store.add_grant("nobody", Role.DEPLOYER, app="shop", environment="x", kind=None)
    with pytest.raises(InvalidInput):
        store.add_grant("dana", Role.ADMIN, app="shop", environment="x", kind=None)


def test_a_removed_principals_grants_do_not_pass_to_a_new_one_of_its_name(store: Store) -> None:
    store.add_token(name="admin", token_hash=auth.hash_token("a"), role=Role.ADMIN)
    store.add_token(name="dana", token_hash=auth.hash_token("d"), role=Role.VIEWER)
    store.add_grant("dana", Role.DEPLOYER, app="shop", environment="staging", kind=None)
    store.remove_principal("dana")
    store.add_token(name="dana", token_hash=auth.hash_token("d2"), role=Role.VIEWER)
    assert store.grants() == []
    credential = store.credential(auth.hash_token("d2"))
    assert credential is not None
    assert store.grants_of_principal(credential.principal.id, "dana") == []


def test_migration_down_drops_grants_and_makes_developers_viewers(url: str) -> None:
    store = Store.open(url)
    store.add_token(name="dana", token_hash=auth.hash_token("d"), role=Role.DEVELOPER)
    store.add_grant("dana", Role.DEPLOYER, app="shop", environment="staging", kind=None)
    store.close()
    engine = db.create_store_engine(url)
    config = db.alembic_config()
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0012")
            roles = connection.execute(text("SELECT name, role FROM principals")).all()
            assert [tuple(r) for r in roles] == [("dana", "viewer")]
            command.upgrade(config, "head")
            assert connection.execute(text("SELECT count(*) FROM role_bindings")).scalar() == 0
    finally:
        engine.dispose()
