"""The flags store on both backends: per-environment flag sets, app-wide flags, versions
compared and set, invalid documents refused whole, the history appended."""

from __future__ import annotations

import secrets
import threading
from pathlib import Path

import psycopg
import pytest

from laneway.core.types import Kind
from laneway.errors import Conflict, NotFound
from laneway.flags import FlagDefinitionError, parse_flag_set
from laneway.flags.editing import boolean_flag, set_fields, with_flag, without_flag
from laneway.store.flags import FlagStore
from laneway.store.repository import Store
from laneway.testing import PG_ADMIN

COLOR = {"variants": {"red": "#f00", "blue": "#00f"}, "defaultVariant": "red"}


@pytest.fixture(params=["sqlite", "postgresql"])
def stores(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "sqlite":
        store = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
        yield store, FlagStore(store.engine)
        store.close()
        return
    name = f"lw_test_flags_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    store = Store.open(f"postgresql://postgres@127.0.0.1:5432/{name}")
    try:
        yield store, FlagStore(store.engine)
    finally:
        store.close()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def environment(store: Store, name: str, app: str = "shop") -> str:
    store.ensure_app(app, "/repo")
    return store.create_environment(
        app=app, name=name, kind=Kind.PREVIEW, branch=name, ref=name, build_id=None
    ).id


def flag(flags: FlagStore, environment_id: str, key: str) -> dict:
    return flags.flag_set(environment_id).document["flags"][key]


def test_a_created_flag_is_in_every_environment_disabled_unless_enabled_there(stores):
    store, flags = stores
    staging, production = environment(store, "staging"), environment(store, "production")
    assert flags.flag_set(staging).version == 0
    assert flags.flag_set(staging).document["flags"] == {}
    created = flags.create_flag(
        "shop", "new-checkout", boolean_flag(), actor="ana", enabled_in={staging}
    )
    assert sorted(s.environment_id for s in created) == sorted([staging, production])
    assert flag(flags, staging, "new-checkout")["state"] == "ENABLED"
    assert flag(flags, production, "new-checkout")["state"] == "DISABLED"
    assert flags.version(staging) == flags.version(production) == 1

    later = environment(store, "feature-x")  # made after the flag: it gets it too
    assert flags.version(later) == 0
    assert flag(flags, later, "new-checkout")["state"] == "DISABLED"
    assert [f.key for f in flags.app_flags("shop")] == ["new-checkout"]
    with pytest.raises(Conflict, match="exists already in app 'shop'"):
        flags.create_flag("shop", "new-checkout", boolean_flag(), actor="ana")
    with pytest.raises(NotFound, match="no app named 'nope'"):
        flags.create_flag("nope", "x", boolean_flag(), actor="ana")
    other_app = environment(store, "staging", app="blog")
    assert flags.flag_set(other_app).document["flags"] == {}


def test_each_environment_changes_on_its_own(stores):
    store, flags = stores
    staging, production = environment(store, "staging"), environment(store, "production")
    flags.create_flag("shop", "color", COLOR, actor="ana")
    flags.update(
        staging,
        lambda d: set_fields(d, "color", state="ENABLED", default_variant="blue"),
        actor="bo",
    )
    assert flag(flags, staging, "color") == {**COLOR, "state": "ENABLED", "defaultVariant": "blue"}
    assert flag(flags, production, "color") == {"state": "DISABLED", **COLOR}
    stored = flags.flag_set(staging)
    assert (stored.version, stored.updated_by) == (2, "bo")
    assert stored.digest == parse_flag_set(stored.document).digest

    same = flags.update(staging, lambda d: d, actor="bo")  # nothing changed: nothing written
    assert same.version == 2 and len(flags.history(staging)) == 2


def test_an_invalid_document_is_refused_whole_and_nothing_is_stored(stores):
    store, flags = stores
    staging = environment(store, "staging")
    flags.create_flag("shop", "color", COLOR, actor="ana")
    before = flags.flag_set(staging)

    def bad(document: dict) -> dict:
        document = set_fields(document, "color", state="ENABLED")
        return set_fields(document, "color", default_variant="green")

    with pytest.raises(FlagDefinitionError) as caught:
        flags.update(staging, bad, actor="bo")
    assert caught.value.problems == [
        "flags.color.defaultVariant: 'green' is not one of the variants (red, blue)"
    ]
    assert "staging" in (caught.value.hint or "")
    assert flags.flag_set(staging) == before
    assert len(flags.history(staging)) == 1

    with pytest.raises(FlagDefinitionError, match=r"flags.x.variants.a: null"):
        flags.create_flag("shop", "x", {"variants": {"a": None}}, actor="ana")
    with pytest.raises(FlagDefinitionError, match="flags.y.state: 'ON' is not ENABLED"):
        flags.create_flag("shop", "y", {**COLOR, "state": "ON"}, actor="ana")
    assert flags.flag_set(staging) == before
    assert [f.key for f in flags.app_flags("shop")] == ["color"]


def test_history_says_who_changed_what_when(stores):
    store, flags = stores
    staging = environment(store, "staging")
    flags.create_flag("shop", "color", COLOR, actor="ana")
    flags.update(staging, lambda d: set_fields(d, "color", state="ENABLED"), actor="bo")
    imported = {"flags": {"solo": {**boolean_flag(), "state": "ENABLED"}}}
    flags.update(staging, lambda _: imported, actor="cy", whole=True)
    history = flags.history(staging)
    assert [(c.flag_key, c.actor, c.version) for c in history] == [
        ("*", "cy", 3),
        ("color", "bo", 2),
        ("color", "ana", 1),
    ]
    assert history[1].before["state"] == "DISABLED" and history[1].after["state"] == "ENABLED"
    assert history[2].before is None
    assert history[0].after == imported and history[0].before["flags"]["color"]
    assert history[0].time >= history[1].time >= history[2].time
    assert [c.flag_key for c in flags.history(staging, "color")] == ["*", "color", "color"]
    assert flags.history(staging, "color", limit=1)[0].flag_key == "*"


def test_concurrent_changes_are_never_lost(stores):
    store, flags = stores
    staging = environment(store, "staging")
    flags.create_flag("shop", "seed", boolean_flag(), actor="ana")
    seen: list[tuple[str, int]] = []
    flags.add_listener(lambda environment_id, version: seen.append((environment_id, version)))
    writers, each = 6, 5
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(each):
                flags.update(
                    staging, lambda d, k=f"w{n}-{i}": with_flag(d, k, boolean_flag()), actor=f"w{n}"
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    stored = flags.flag_set(staging)
    assert len(stored.document["flags"]) == 1 + writers * each
    assert stored.version == 1 + writers * each
    assert sorted(v for _, v in seen) == list(range(2, 2 + writers * each))
    assert len(flags.history(staging, limit=1000)) == 1 + writers * each


def test_a_stale_expected_version_is_a_conflict(stores):
    store, flags = stores
    staging = environment(store, "staging")
    flags.create_flag("shop", "a", boolean_flag(), actor="ana")
    with pytest.raises(Conflict, match="changed meanwhile"):
        flags.update(staging, lambda d: without_flag(d, "a"), actor="bo", expected_version=0)
    assert (
        flags.update(
            staging, lambda d: without_flag(d, "a"), actor="bo", expected_version=1
        ).version
        == 2
    )


def test_create_refuses_a_key_an_environment_imported(stores):
    store, flags = stores
    staging, production = environment(store, "staging"), environment(store, "production")
    flags.update(staging, lambda d: with_flag(d, "solo", boolean_flag()), actor="bo")
    with pytest.raises(Conflict, match="exists already in environment 'staging'"):
        flags.create_flag("shop", "solo", boolean_flag(), actor="ana")
    assert "solo" not in flags.flag_set(production).document["flags"]
    assert flags.app_flags("shop") == []


def test_delete_removes_a_flag_everywhere(stores):
    store, flags = stores
    staging, production = environment(store, "staging"), environment(store, "production")
    flags.create_flag("shop", "a", boolean_flag(), actor="ana")
    flags.create_flag("shop", "b", boolean_flag(), actor="ana")
    removed = flags.delete_flag("shop", "a", actor="bo")
    assert sorted(s.environment_id for s in removed) == sorted([staging, production])
    assert list(flags.flag_set(staging).document["flags"]) == ["b"]
    assert [f.key for f in flags.app_flags("shop")] == ["b"]
    assert flags.history(staging, "a")[0].after is None
    with pytest.raises(NotFound, match="no flag 'a'"):
        flags.delete_flag("shop", "a", actor="bo")


def test_unknown_and_destroyed_environments(stores):
    store, flags = stores
    staging = environment(store, "staging")
    flags.create_flag("shop", "a", boolean_flag(), actor="ana")
    with pytest.raises(NotFound):
        flags.flag_set("nope")
    with pytest.raises(NotFound):
        flags.update("nope", lambda d: d, actor="bo")
    assert flags.version("nope") is None
    store.delete_environment_record(staging)
    assert flags.version(staging) is None  # its key stops working at once
    assert flags.prune() == 0  # the flag set went with the environment's record
