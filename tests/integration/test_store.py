"""The store on both backends: SQLite (the default) and PostgreSQL (a database made per test)."""

from __future__ import annotations

import json
import secrets
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from alembic import command
from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker

from laneway.core import rollouts
from laneway.core.types import (
    BuildRecord,
    Desired,
    EventType,
    Kind,
    Phase,
    ReplicaState,
    ReplicaStatus,
    ResourceRecord,
    ResourceType,
    Role,
)
from laneway.errors import Conflict, NotFound, Unavailable
from laneway.store import db, retrying
from laneway.store.repository import Store
from laneway.store.vault import Vault
from laneway.testing import PG_ADMIN, promote_now

VAULT = Vault(b"0" * 64)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "sqlite":
        s = Store.open(f"sqlite:///{tmp_path / 'state.db'}", vault=VAULT)
        yield s
        s.close()
        return
    name = f"lw_test_store_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    s = Store.open(f"postgresql://postgres@127.0.0.1:5432/{name}", vault=VAULT)
    try:
        yield s
    finally:
        s.close()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_environments(store: Store):
    store.ensure_app("shop", "/repo")
    created = store.create_environment(
        app="shop", name="x", kind=Kind.PREVIEW, branch="x", ref="x", build_id=None
    )
    assert (created.phase, created.desired, created.release) == (Phase.PENDING, Desired.RUNNING, 1)
    with pytest.raises(Conflict, match="exists already"):
        store.create_environment(
            app="shop", name="x", kind=Kind.PREVIEW, branch="x", ref="x", build_id=None
        )
    replicas = (ReplicaStatus("web", 0, pid=1, port=20000, state=ReplicaState.HEALTHY),)
    updated = store.update_environment(created.id, phase=Phase.RUNNING, replicas=replicas)
    assert store.get_environment("shop", "x") == updated
    assert updated.replicas == replicas
    assert store.get_environment("shop", "x").replicas[0].state is ReplicaState.HEALTHY
    store.update_environment(created.id, desired=Desired.DELETED)
    with pytest.raises(Conflict, match="still being destroyed"):
        store.create_environment(
            app="shop", name="x", kind=Kind.PREVIEW, branch="x", ref="x", build_id=None
        )
    store.delete_environment_record(created.id)
    with pytest.raises(NotFound):
        store.get_environment("shop", "x")


def test_port_leases_are_stable_and_unique(store: Store):
    first = store.lease_port("e1", "web", 0, iter(range(20000, 20010)))
    assert store.lease_port("e1", "web", 0, iter(range(20000, 20010))) == first
    second = store.lease_port("e2", "web", 0, iter(range(20000, 20010)))
    assert second.port != first.port
    store.release_ports("e1")
    assert [lease.environment_id for lease in store.leases()] == ["e2"]


def test_resources_tokens_events(store: Store):
    store.put_resource(
        ResourceRecord("e1", "db", ResourceType.POSTGRES, {"value": "postgresql://a"})
    )
    store.put_resource(
        ResourceRecord("e1", "db", ResourceType.POSTGRES, {"value": "postgresql://b"})
    )
    assert store.resources("e1") == [
        ResourceRecord("e1", "db", ResourceType.POSTGRES, {"value": "postgresql://b"})
    ]
    store.add_token(name="ci", token_hash="h" * 64, role=Role.VIEWER)
    assert store.token_by_hash("h" * 64)[1:] == ("ci", Role.VIEWER)
    assert store.token_by_hash("h" * 64)[2] is Role.VIEWER
    assert store.resources("e1")[0].type is ResourceType.POSTGRES
    assert store.token_by_hash("x" * 64) is None
    store.add_event("e1", EventType.PHASE, "one")
    store.add_event("e2", EventType.PHASE, "two")
    assert store.latest_event_id("e2") > store.latest_event_id("e1") > 0
    assert store.prune_events({"e1"}, before=datetime.now(UTC) + timedelta(seconds=5)) == 1
    assert [(e.type, e.message) for e in store.events("e1")] == [(EventType.PHASE, "one")]
    assert store.events("e1")[0].type is EventType.PHASE and store.events("e2") == []


def test_migrations_run_again_without_change(store: Store):
    again = Store(store.engine)

    db.migrate(again.engine)
    assert again.list_apps() == store.list_apps()


def test_builds(store: Store):
    from laneway.core.types import BuildRecord

    store.ensure_app("shop", "/repo")
    build = BuildRecord(
        "sha256:" + "ab" * 32,
        "shop",
        "c" * 40,
        "main",
        "app: shop",
        "sha256:" + "0" * 64,
        datetime.now(UTC),
    )
    store.record_build(build)
    store.record_build(replace(build, ref="again"))
    assert store.get_build(build.id).ref == "main"
    assert store.find_builds("abab") == [store.get_build(build.id)]


def test_an_environment_starts_with_release_v1(store: Store):
    from laneway.core.types import ReleaseState

    store.ensure_app("shop", "/repo")
    e = store.create_environment(
        app="shop", name="x", kind=Kind.PREVIEW, branch="x", ref="x", build_id=None, created_by="ci"
    )
    (v1,) = store.releases(e.id)
    assert (v1.name, v1.state, v1.created_by, v1.build_id) == (
        "v1",
        ReleaseState.PENDING,
        "ci",
        None,
    )
    store.update_release(e.id, 1, state=ReleaseState.LIVE, build_id="sha256:" + "a" * 64)
    assert store.releases(e.id)[0].state == ReleaseState.LIVE
    store.delete_environment_record(e.id)
    assert store.releases(e.id) == []


def test_concurrent_check_then_inserts_all_succeed(store: Store):
    """The same app, build and ports asked for at once: the losers of each insert run
    again and find what the winner wrote."""
    import threading

    build = BuildRecord(
        id="sha256:" + "ab" * 32,
        app="shop",
        commit="c" * 40,
        ref="main",
        spec_text="app: shop\n",
        spec_digest="d",
        created_at=datetime.now(UTC),
    )
    callers = 6
    barrier = threading.Barrier(callers)
    leases: list[int] = []
    failures: list[BaseException] = []

    def call(n: int) -> None:
        try:
            barrier.wait()
            store.ensure_app("shop", "/repo")
            store.record_build(build)
            leases.append(store.lease_port(f"e{n}", "web", 0, iter(range(20000, 20100))).port)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=call, args=(n,)) for n in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert [a.name for a in store.list_apps()] == ["shop"]
    assert [b.id for b in store.list_builds("shop")] == [build.id]
    assert len(set(leases)) == callers


def test_of_concurrent_releases_with_one_expectation_exactly_one_wins(store: Store):
    import threading

    from laneway.core.types import ReleaseState

    store.ensure_app("shop", "/repo")
    e = store.create_environment(
        app="shop", name="x", kind=Kind.STAGING, branch="x", ref="x", build_id=None
    )
    promote_now(store, e.id)
    for round_ in range(8):
        expect = store.get_environment_by_id(e.id).release
        barrier = threading.Barrier(4)
        won: list[int] = []
        lost: list[str] = []

        def attempt(
            n: int, expect=expect, barrier=barrier, won=won, lost=lost, round_=round_
        ) -> None:
            barrier.wait()
            try:
                _, release = store.create_release(
                    e.id,
                    expect_release=expect,
                    build_id=None,
                    commit=None,
                    ref="x",
                    config_version=0,
                    config_sealed="",
                    description=f"round {round_} caller {n}",
                    created_by="t",
                )
                won.append(release.number)
            except Conflict as exc:
                lost.append(exc.message)

        threads = [threading.Thread(target=attempt, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(won) == 1 and len(lost) == 3, (won, lost)
        assert store.get_environment_by_id(e.id).release == won[0]
        promote_now(store, e.id)
    states = [r.state for r in store.releases(e.id)]
    assert states.count(ReleaseState.LIVE) == 1 and ReleaseState.PENDING not in states


def test_a_release_is_refused_for_an_environment_being_destroyed(store: Store):
    store.ensure_app("shop", "/repo")
    e = store.create_environment(
        app="shop", name="x", kind=Kind.STAGING, branch="x", ref="x", build_id=None
    )
    store.update_environment(e.id, desired=Desired.DELETED)
    with pytest.raises(Conflict, match="being destroyed"):
        store.create_release(
            e.id,
            expect_release=1,
            build_id=None,
            commit=None,
            ref="x",
            config_version=0,
            config_sealed="",
            description="late",
            created_by="t",
        )
    assert [r.number for r in store.releases(e.id)] == [1]


def test_transactions_translate_sqlalchemy_errors(tmp_path: Path):
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    sessions = sessionmaker(engine)
    with retrying.transaction(sessions) as s:
        s.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        s.execute(text("INSERT INTO t VALUES (1)"))
    with (
        pytest.raises(retrying.LostRace, match="a concurrent change won: UNIQUE"),
        retrying.transaction(sessions) as s,
    ):
        s.execute(text("INSERT INTO t VALUES (1)"))
    with retrying.transaction(sessions) as s:
        assert s.execute(text("SELECT count(*) FROM t")).scalar() == 1
    engine.dispose()

    unreachable = sessionmaker(create_engine(f"sqlite:///{tmp_path}"))  # a directory
    with (
        pytest.raises(Unavailable, match="store: unable to open database file"),
        retrying.transaction(unreachable) as s,
    ):
        s.execute(text("SELECT 1"))


def test_resource_details_are_sealed_at_rest(store: Store):
    address = "postgresql://lw_e1:s3cret-pass-word@127.0.0.1:5432/lw_e1"
    store.put_resource(ResourceRecord("e1", "db", ResourceType.POSTGRES, {"value": address}))
    with store.engine.connect() as connection:
        raw = connection.execute(text("SELECT details_json FROM resources")).scalar_one()
    assert "s3cret" not in raw and "lw_e1" not in raw
    assert store.resources("e1")[0].details == {"value": address}
    other = Store(store.engine, vault=Vault(b"1" * 64))
    with pytest.raises(Unavailable, match="instance secret"):
        other.resources("e1")
    with pytest.raises(Unavailable, match="instance secret"):
        Store(store.engine).resources("e1")


def test_migration_seals_a_plain_row_from_before(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = db.create_store_engine(url)
    config = db.alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0004")
        connection.execute(
            text("INSERT INTO resources VALUES ('e1', 'db', 'postgres', :details)"),
            {"details": json.dumps({"value": "postgresql://u:plain-pass@h/d"})},
        )
    engine.dispose()
    with pytest.raises(Unavailable, match="instance secret"):
        Store.open(url)  # without the secret it cannot seal, and changes nothing
    store = Store.open(url, vault=VAULT)
    try:
        with store.engine.connect() as connection:
            raw = connection.execute(text("SELECT details_json FROM resources")).scalar_one()
        assert "plain-pass" not in raw
        assert store.resources("e1")[0].details == {"value": "postgresql://u:plain-pass@h/d"}
    finally:
        store.close()


def test_a_release_records_the_flag_set_version_it_went_live_with(store: Store):
    from laneway.store.flags import FlagStore

    store.ensure_app("shop", "/repo")
    e = store.create_environment(
        app="shop", name="fv", kind=Kind.STAGING, branch="x", ref="x", build_id=None
    )
    flags = FlagStore(store.engine)
    flags.create_flag(
        "shop",
        "beta",
        {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off"},
        actor="t",
    )
    version = flags.version(e.id)
    assert version is not None
    promote_now(store, e.id)
    assert store.get_release(e.id, 1).flags_version == version


@pytest.mark.parametrize(
    ("env", "releases", "stable", "canary", "weight", "warm"),
    [
        # settled: v2 live on its own processes, v1 warm
        ((2, 2, 2, 1, 99.0), [(1, "superseded", 1), (2, "live", 2)], (2, 2), None, 0, (1, 1)),
        # a deploy under way: v3 starting beside live v2
        ((3, 3, 2, 0, 0.0), [(2, "live", 2), (3, "pending", 3)], (2, 2), (3, 3), 0, None),
        # switched to v3 but killed before it was marked live: all clients on v3, to confirm
        ((3, 3, 3, 2, 9.0), [(2, "live", 2), (3, "pending", 3)], (2, 2), (3, 3), 10_000, (2, 2)),
        # a first release never live
        ((1, 1, 0, 0, 0.0), [(1, "pending", 1)], None, (1, 1), 0, None),
    ],
)
def test_migration_makes_each_environments_rollout_status_from_its_numbers(
    tmp_path: Path,
    env: tuple[int, int, int, int, float],
    releases: list[tuple[int, str, int]],
    stable: tuple[int, int] | None,
    canary: tuple[int, int] | None,
    weight: int,
    warm: tuple[int, int] | None,
) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = db.create_store_engine(url)
    config = db.alembic_config()
    release, target, live, warm_generation, warm_until = env
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0006")
        connection.execute(text("INSERT INTO apps VALUES ('shop', '/r', '2026-01-01')"))
        connection.execute(
            text(
                "INSERT INTO environments (id, app, name, kind, desired, phase, message, "
                "release, hook_release, replicas_json, created_at, updated_at, target, live, "
                "warm, warm_until) VALUES ('e1', 'shop', 's', 'staging', 'running', 'running', "
                "'', :release, :release, '[]', '2026-01-01', '2026-01-01', :target, :live, "
                ":warm, :warm_until)"
            ),
            {
                "release": release,
                "target": target,
                "live": live,
                "warm": warm_generation,
                "warm_until": warm_until,
            },
        )
        for number, state, generation in releases:
            connection.execute(
                text(
                    "INSERT INTO releases (environment_id, number, state, message, created_by, "
                    "created_at, updated_at, description, generation, config_version) VALUES "
                    "('e1', :n, :state, '', 't', '2026-01-01', '2026-01-01', '', :g, 0)"
                ),
                {"n": number, "state": state, "g": generation},
            )
    engine.dispose()
    store = Store.open(url, vault=VAULT)
    try:
        status = store.get_environment_by_id("e1").rollout
        side = lambda pair: None if pair is None else rollouts.Side(*pair)  # noqa: E731
        assert (status.stable, status.canary, status.weight, status.warm) == (
            side(stable),
            side(canary),
            weight,
            side(warm),
        )
        assert status.exposed == (weight > 0)
    finally:
        store.close()
