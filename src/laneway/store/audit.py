"""The audit log's store: records appended in one linear chain, its signed checkpoint, the
key that signs it (a file beside the store, never in it), reading with filters, verifying.

An append reads the checkpoint (the chain's head), inserts the next record and moves the
checkpoint, in one transaction: two writers that read the same head both insert the same
seq, the primary key refuses the second, and `retrying.run` runs it again on the new head.
Within one process a lock keeps writers from racing at all. The next record chains onto the
checkpoint, not onto the table's last row, so a deleted newest record stays missing; it takes
the seq after the table's last row, so a row added by hand blocks no append (and `verify`
names it: the next record is not chained to it).
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from laneway.core import audit
from laneway.core.audit import AuditRecord, Checkpoint, Verification
from laneway.errors import Unavailable
from laneway.store import db, retrying
from laneway.store.models import AuditCheckpointRow, AuditRow
from laneway.store.records import utcnow

KEY_BYTES = 32
PAGE = 1000
"""Records read at a time by `all` (verify, export)."""
APPEND_ATTEMPTS = 20


def audit_key(path: Path) -> bytes:
    """The key that signs the checkpoint: 32 random bytes in `path` (0600), made on first
    use; a second process making it at the same time reads the one that won."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(KEY_BYTES))
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise Unavailable(
            f"the audit key {path} holds {len(key)} bytes, not {KEY_BYTES}: it was damaged",
            hint="restore it from a backup; a new key makes the log's checkpoint unverifiable",
        )
    return key


def time_text() -> str:
    return utcnow().strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AuditLog:
    def __init__(self, engine: Engine, key: bytes) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._key = key
        self._lock = threading.Lock()

    @classmethod
    def open(cls, url: str, key: bytes) -> AuditLog:
        """A log of its own (tools, tests); the server shares `Store`'s engine instead."""
        engine = db.create_store_engine(url)
        db.migrate(engine)
        return cls(engine, key)

    def close(self) -> None:
        self.engine.dispose()

    def append(self, entry: AuditRecord) -> AuditRecord:
        """`entry` recorded as the chain's next record, stamped with the time now; its seq,
        previous and hash (what `entry` has there is ignored) come from the chain."""
        with self._lock:
            return retrying.run(lambda: self._append(entry), attempts=APPEND_ATTEMPTS)

    def _append(self, entry: AuditRecord) -> AuditRecord:
        with retrying.transaction(self._sessions) as s:
            row = s.get(AuditCheckpointRow, 1, with_for_update=True)
            last = s.scalar(select(AuditRow).order_by(AuditRow.seq.desc()).limit(1))
            head = None if row is None else Checkpoint(row.seq, row.hash, row.signature)
            if head is None and last is not None:  # the checkpoint was deleted
                head = Checkpoint(last.seq, last.hash)
            # past any row added by hand, still chained to the checkpoint: verify names it
            seq = max(0 if head is None else head.seq, 0 if last is None else last.seq) + 1
            record = audit.chained(replace(entry, time=time_text()), head=head, seq=seq)
            s.add(_row(record))
            s.flush()  # a concurrent writer's record of this seq: IntegrityError, LostRace
            checkpoint = audit.sign(self._key, record)
            if row is None:
                s.add(AuditCheckpointRow(id=1, **_checkpoint_fields(checkpoint)))
            else:
                moved = s.execute(
                    update(AuditCheckpointRow)
                    .where(AuditCheckpointRow.id == 1, AuditCheckpointRow.seq == row.seq)
                    .values(**_checkpoint_fields(checkpoint))
                )
                if db.rowcount(moved) != 1:
                    raise retrying.LostRace("the audit checkpoint moved")
            return record

    def records(
        self,
        *,
        app: str | None = None,
        environment: str | None = None,
        principal: str | None = None,
        action: str | None = None,
        since: str | None = None,
        limit: int = 100,
    ) -> list[AuditRecord]:
        """The newest `limit` records that match, oldest first. `action` matches a part of
        the action; `since` is a time as records write it (`2026-12-08T02:30:00.000000Z`)."""
        query = select(AuditRow)
        if app is not None:
            query = query.where(AuditRow.app == app)
        if environment is not None:
            query = query.where(AuditRow.environment == environment)
        if principal is not None:
            query = query.where(AuditRow.principal == principal)
        if action is not None:
            query = query.where(AuditRow.action.contains(action, autoescape=True))
        if since is not None:
            query = query.where(AuditRow.time >= since)
        with self._session() as s:
            rows = list(s.scalars(query.order_by(AuditRow.seq.desc()).limit(limit)))
        return [_record(row) for row in reversed(rows)]

    def page(self, *, after: int, size: int = PAGE) -> list[AuditRecord]:
        """Up to `size` records after seq `after`, in stored order."""
        with self._session() as s:
            rows = s.scalars(
                select(AuditRow).where(AuditRow.seq > after).order_by(AuditRow.seq).limit(size)
            )
            return [_record(row) for row in rows]

    def all(self) -> Iterator[AuditRecord]:
        """Every record in order, read a page at a time."""
        after = 0
        while batch := self.page(after=after):
            yield from batch
            after = batch[-1].seq

    def checkpoint(self) -> Checkpoint | None:
        with self._session() as s:
            row = s.get(AuditCheckpointRow, 1)
            return None if row is None else Checkpoint(row.seq, row.hash, row.signature)

    def verify(self) -> Verification:
        """The whole log held to its chain and its signed checkpoint. Appends wait meanwhile
        (the server is the one writer), so the checkpoint read is the walk's end."""
        with self._lock:
            return audit.verify(self.all(), self.checkpoint(), key=self._key)

    def _session(self) -> AbstractContextManager[Session]:
        return retrying.transaction(self._sessions)


def _checkpoint_fields(checkpoint: Checkpoint) -> dict[str, object]:
    return {"seq": checkpoint.seq, "hash": checkpoint.hash, "signature": checkpoint.signature}


def _row(record: AuditRecord) -> AuditRow:
    return AuditRow(
        seq=record.seq,
        time=record.time,
        principal=record.principal,
        token_id=record.token_id,
        action=record.action,
        app=record.app,
        environment=record.environment,
        outcome=record.outcome,
        status=record.status,
        source=record.source,
        detail_json=json.dumps(record.detail, sort_keys=True, ensure_ascii=False),
        previous=record.previous,
        hash=record.hash,
    )


def _record(row: AuditRow) -> AuditRecord:
    try:
        detail = json.loads(row.detail_json)
    except ValueError:
        detail = None
    if not isinstance(detail, dict):  # edited by hand: kept as found, so the hash tells
        detail = {"unreadable": row.detail_json}
    return AuditRecord(
        seq=row.seq,
        time=row.time,
        principal=row.principal,
        token_id=row.token_id,
        action=row.action,
        app=row.app,
        environment=row.environment,
        outcome=row.outcome,  # type: ignore[arg-type]  # checked by the hash, not here
        status=row.status,
        source=row.source,
        detail=detail,
        previous=row.previous,
        hash=row.hash,
    )
