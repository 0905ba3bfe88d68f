"""Rotating the seal key over a real store (SQLite and PostgreSQL): every value re-sealed,
the old key dropped, and a rotation cut short finished by the next one."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet, InvalidToken
from tests.integration.test_store import store  # noqa: F401  (the fixture, both databases)

from laneway.core.config import ConfigEntry
from laneway.core.types import Kind, ResourceRecord, ResourceType
from laneway.errors import Unavailable
from laneway.store import keyring, resealing
from laneway.store.repository import Store
from laneway.store.vault import Vault, first_key

SECRET = b"0" * 64


def fill(store: Store, vault: Vault, count: int) -> str:  # noqa: F811
    store.ensure_app("shop", "/repo")
    environment = store.create_environment(
        app="shop", name="qa", kind=Kind.STAGING, branch=None, ref=None, build_id=None
    )
    for version in range(1, count + 1):
        environment, _ = store.create_release(
            environment.id,
            expect_release=environment.release,
            build_id=None,
            commit=None,
            ref="main",
            config_version=version,
            config_sealed=vault.seal({"KEY": ConfigEntry(f"value-{version}", secret=True)}),
            description="config set KEY",
            created_by="test",
        )
    store.put_resource(
        ResourceRecord(
            environment.id, "db", ResourceType.POSTGRES, {"value": "postgresql://u:pw@h/d"}
        )
    )
    return environment.id


def opens(key: bytes, token: str) -> bool:
    try:
        Fernet(key).decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def test_a_rotation_reseals_every_value_and_drops_the_old_key(
    store: Store,  # noqa: F811
    tmp_path: Path,
) -> None:
    vault = Vault(SECRET)  # its own: a rotation changes the vault it is given
    store = Store(store.engine, vault=vault)
    environment_id = fill(store, vault, 3)
    done = resealing.rotate(tmp_path, store, vault)
    assert (done.configs, done.resources, done.dropped) == (3, 1, 1)
    ring = keyring.load(tmp_path)
    assert ring is not None and len(ring) == 1 and vault.keys == ring
    for number in (2, 3, 4):
        token = store.sealed_config(environment_id, number)
        assert opens(ring[0], token) and not opens(first_key(SECRET), token)
        assert vault.open(token)["KEY"].value == f"value-{number - 1}"
    (db,) = store.resources(environment_id)
    assert db.details == {"value": "postgresql://u:pw@h/d"}
    assert store.unsealed_by_newest(vault) == 0
    assert resealing.rotate(tmp_path, store, vault).dropped == 1, "and again"


def test_a_rotation_cut_short_is_finished_by_the_next(
    store: Store,  # noqa: F811
    tmp_path: Path,
) -> None:
    vault = Vault(SECRET)
    store = Store(store.engine, vault=vault)
    environment_id = fill(store, vault, 2)
    # what a crash leaves after the ring was written and one value re-sealed
    ring = [keyring.new_key(), first_key(SECRET)]
    keyring.save(tmp_path, ring)
    vault.use(ring)
    token = store.sealed_config(environment_id, 2)
    store._set_config(environment_id, 2, token, vault.reseal(token))
    restarted = Vault(SECRET, keyring.load(tmp_path))
    assert restarted.open(store.sealed_config(environment_id, 2))["KEY"].value == "value-1"
    assert restarted.open(store.sealed_config(environment_id, 3))["KEY"].value == "value-2"
    assert store.unsealed_by_newest(restarted) == 2  # the other config and the resource
    done = resealing.rotate(tmp_path, store, restarted)
    assert (done.configs, done.resources, done.dropped) == (2, 1, 2)
    assert keyring.load(tmp_path) == restarted.keys and len(restarted.keys) == 1


def test_a_keyring_that_lost_a_key_is_said_plainly(tmp_path: Path) -> None:
    (tmp_path / keyring.FILE).write_text('{"keys": ["not a key"]}')
    with pytest.raises(Unavailable, match="seal keyring .* cannot be read"):
        keyring.load(tmp_path)
    sealed = Vault(SECRET).seal({"KEY": ConfigEntry("v", secret=True)})
    other = Vault(SECRET, [keyring.new_key()])
    with pytest.raises(Unavailable, match="opens with none of the seal keys"):
        other.reseal(sealed)
