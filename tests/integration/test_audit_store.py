"""The audit log's store on a real SQLite file: one linear chain under concurrent writers,
even from two engines (two processes' worth); the key file made once, 0600."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import insert

from laneway.core import audit
from laneway.core.audit import AuditRecord
from laneway.errors import Unavailable
from laneway.store.audit import AuditLog, audit_key
from laneway.store.models import AuditRow

KEY = b"s" * 32


def entry(who: str, n: int) -> AuditRecord:
    return AuditRecord(
        seq=0,
        time="",
        principal=who,
        token_id=None,
        action="POST /apps/{app}/environments",
        app="shop",
        environment=f"env-{n}",
        outcome="ok",
        status=202,
        source="127.0.0.1",
        detail={"n": n},
    )


@pytest.fixture
def url(empty_store_url: str) -> str:
    return empty_store_url


def test_concurrent_writers_keep_one_chain(url: str) -> None:
    logs = [AuditLog.open(url, KEY), AuditLog.open(url, KEY)]
    start = threading.Barrier(4)
    failures: list[BaseException] = []

    def write(log: AuditLog, who: str) -> None:
        start.wait()
        try:
            for n in range(25):
                log.append(entry(who, n))
        except BaseException as exc:  # reported below, with the thread's name
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(logs[i % 2], f"writer-{i}")) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert failures == []
        records = list(logs[0].all())
        assert [r.seq for r in records] == list(range(1, 101))
        assert all(b.previous == a.hash for a, b in zip(records, records[1:], strict=False))
        assert records[0].time <= records[-1].time
        result = logs[1].verify()
        assert result.ok, result.message
        assert result.records == 100
    finally:
        for log in logs:
            log.close()


def test_records_filter_and_page(url: str) -> None:
    log = AuditLog.open(url, KEY)
    try:
        for n in range(5):
            log.append(entry("ann" if n % 2 else "bob", n))
        assert [r.seq for r in log.records(principal="ann")] == [2, 4]
        assert [r.seq for r in log.records(environment="env-3")] == [4]
        assert [r.seq for r in log.records(action="environments", limit=2)] == [4, 5]
        assert log.records(action="%") == [], "a wildcard is matched as itself"
        assert [r.seq for r in log.page(after=3)] == [4, 5]
        checkpoint = log.checkpoint()
        assert checkpoint is not None and checkpoint.seq == 5
    finally:
        log.close()


def test_a_wrong_key_fails_verification(url: str) -> None:
    log = AuditLog.open(url, KEY)
    log.append(entry("ann", 1))
    log.close()
    other = AuditLog.open(url, b"o" * 32)
    try:
        result = other.verify()
        assert not result.ok
        assert "audit key is not the one it was signed with" in result.message
    finally:
        other.close()


def test_the_key_is_made_once_and_kept_private(tmp_path: Path) -> None:
    path = tmp_path / "state" / "audit.key"
    key = audit_key(path)
    assert len(key) == 32
    assert path.stat().st_mode & 0o777 == 0o600
    assert audit_key(path) == key
    path.write_bytes(b"short")
    with pytest.raises(Unavailable, match="holds 5 bytes, not 32"):
        audit_key(path)


def test_a_row_added_by_hand_blocks_no_append_and_is_named(url: str) -> None:
    log = AuditLog.open(url, KEY)
    try:
        for n in range(2):
            log.append(entry("ann", n))
        [second] = log.page(after=1)
        forged = replace(second, seq=3, principal="mallory", previous=second.hash, hash="")
        forged = replace(forged, hash=audit.hash_of(forged))
        with log.engine.begin() as connection:
            connection.execute(insert(AuditRow).values(**_columns(forged)))
        assert log.verify().message.startswith("record 3 was added by hand")
        appended = log.append(entry("ann", 3))
        assert (appended.seq, appended.previous) == (4, second.hash)
        result = log.verify()
        assert (result.ok, result.bad) == (False, 3)
        assert "record 3 was rewritten" in result.message
    finally:
        log.close()


def _columns(record: AuditRecord) -> dict[str, object]:
    columns = record.to_json()
    columns["detail_json"] = json.dumps(columns.pop("detail"))
    return columns
