"""The audit log's records, their hash chain and its signed checkpoint: pure, no I/O.

Each record's hash is sha256 over the hash of the record before it and the record's own
canonical JSON, so editing, deleting or reordering any record breaks the chain at that
record. The chain alone cannot tell that the newest records were deleted (what is left is a
valid chain), so the head of the chain, its (seq, hash), is kept as a **checkpoint** signed
with HMAC-SHA256 under a key that is kept out of the store: a log that ends before the
checkpoint's record, or whose record there has another hash, is caught too.

`store/audit.py` keeps the records and the checkpoint; `api/audit.py` records requests.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

GENESIS = "0" * 64
"""The `previous` hash of the first record."""

Outcome = Literal["ok", "refused", "failed"]


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    """1, 2, 3… with no gap: the record's place in the chain."""
    time: str
    """UTC, ISO 8601 with microseconds (`2026-12-08T02:30:00.123456Z`): kept as text, so
    the hashed form is the stored form."""
    principal: str | None
    """The token's name; None when the caller was not identified (a failed login)."""
    token_id: str | None
    action: str
    """`POST /apps/{app}/environments/{name}/canary/pause`: the method and route template."""
    app: str | None
    environment: str | None
    outcome: Outcome
    status: int
    """The HTTP status answered."""
    source: str | None
    """The caller's address."""
    detail: dict[str, Any] = field(default_factory=dict)
    """Words and names, never a request body nor a secret's value."""
    previous: str = GENESIS
    """The hash of the record before it."""
    hash: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def outcome_of(status: int) -> Outcome:
    if status in (401, 403):
        return "refused"
    return "ok" if status < 400 else "failed"


def canonical(record: AuditRecord) -> bytes:
    """The record's content as hashed: sorted keys, no spaces, UTF-8; `hash` left out."""
    content = record.to_json()
    del content["hash"]
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def hash_of(record: AuditRecord) -> str:
    """sha256 over the previous hash and the canonical record (which holds it too)."""
    return hashlib.sha256(record.previous.encode() + b"\n" + canonical(record)).hexdigest()


def chained(record: AuditRecord, *, head: Checkpoint | None, seq: int | None = None) -> AuditRecord:
    """`record` as the next one after `head` (None: the first): its seq (the one after the
    head's unless given), previous and hash."""
    after, previous = (0, GENESIS) if head is None else (head.seq, head.hash)
    number = after + 1 if seq is None else seq
    linked = AuditRecord(**{**record.to_json(), "seq": number, "previous": previous, "hash": ""})
    return AuditRecord(**{**linked.to_json(), "hash": hash_of(linked)})


@dataclass(frozen=True)
class Checkpoint:
    """The newest record's seq and hash, signed: the log has at least `seq` records."""

    seq: int
    hash: str
    signature: str = ""


def _signature(key: bytes, seq: int, hash_: str) -> str:
    return hmac.new(key, f"laneway audit checkpoint\n{seq}\n{hash_}".encode(), "sha256").hexdigest()


def sign(key: bytes, record: AuditRecord) -> Checkpoint:
    return Checkpoint(record.seq, record.hash, _signature(key, record.seq, record.hash))


def signed(key: bytes, checkpoint: Checkpoint) -> bool:
    """Whether the checkpoint's signature is the key's (compared in constant time)."""
    expected = _signature(key, checkpoint.seq, checkpoint.hash)
    return hmac.compare_digest(expected, checkpoint.signature)


@dataclass(frozen=True)
class Verification:
    ok: bool
    records: int
    """How many records were read."""
    message: str
    bad: int | None = None
    """The seq of the first bad record (a missing one included), when not ok."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def verify(
    records: Iterable[AuditRecord], checkpoint: Checkpoint | None, *, key: bytes
) -> Verification:
    """Walk the records in stored order and name the first that is not where the chain
    says: edited, missing (deleted), out of order, rewritten; then hold the end of the
    log to the signed checkpoint."""
    count = 0
    last: AuditRecord | None = None
    for record in records:
        count += 1
        problem = _problem(record, last)
        if problem is not None:
            bad, message = problem
            return Verification(False, count, message, bad)
        last = record
    return _against_checkpoint(last, checkpoint, count, key=key)


def _problem(record: AuditRecord, last: AuditRecord | None) -> tuple[int, str] | None:
    expected = 1 if last is None else last.seq + 1
    if record.seq > expected:
        after = "the log starts" if last is None else f"record {last.seq}"
        return expected, (
            f"{_records(expected, record.seq - 1)} missing (deleted): "
            f"record {record.seq} follows {after}"
        )
    if record.seq < expected:
        return (
            record.seq,
            f"record {record.seq} is out of order: it comes after record {expected - 1}",
        )
    if hash_of(record) != record.hash:
        return record.seq, f"record {record.seq} was edited: its content does not match its hash"
    previous = GENESIS if last is None else last.hash
    if record.previous != previous:
        if last is None:
            return record.seq, "record 1 does not start the chain: it was rewritten"
        return last.seq, (
            f"record {last.seq} was rewritten: record {record.seq} was chained to another "
            f"record {last.seq}"
        )
    return None


def _against_checkpoint(
    last: AuditRecord | None, checkpoint: Checkpoint | None, count: int, *, key: bytes
) -> Verification:
    if checkpoint is None:
        if last is None:
            return Verification(True, 0, "the audit log is empty")
        return Verification(False, count, "the signed checkpoint is missing: it was deleted", 1)
    if not signed(key, checkpoint):
        return Verification(
            False,
            count,
            "the checkpoint's signature is not valid: it was edited, or the audit key is not "
            "the one it was signed with",
            checkpoint.seq,
        )
    end = 0 if last is None else last.seq
    if end < checkpoint.seq:
        return Verification(
            False,
            count,
            f"{_records(end + 1, checkpoint.seq)} missing (the newest were deleted): the signed "
            f"checkpoint names record {checkpoint.seq}, the log ends "
            + ("before record 1" if last is None else f"at record {end}"),
            end + 1,
        )
    if end > checkpoint.seq:
        return Verification(
            False,
            count,
            f"record {checkpoint.seq + 1} was added by hand: the signed checkpoint names "
            f"record {checkpoint.seq} as the newest",
            checkpoint.seq + 1,
        )
    assert last is not None  # end == checkpoint.seq >= 1
    if not hmac.compare_digest(last.hash, checkpoint.hash):
        return Verification(
            False,
            count,
            f"record {end} is not the one the signed checkpoint names: the chain was rewritten",
            end,
        )
    return Verification(
        True, count, f"the audit log is intact: records 1 to {end}, and the signed checkpoint"
    )


def _records(first: int, last: int) -> str:
    return f"record {first} is" if first == last else f"records {first} to {last} are"
