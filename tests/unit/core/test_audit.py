"""The audit log's chain and checkpoint: each kind of tampering is caught and the first bad
record named."""

from __future__ import annotations

from dataclasses import replace

import pytest

from laneway.core import audit
from laneway.core.audit import AuditRecord, Checkpoint

KEY = b"k" * 32


def entry(n: int) -> AuditRecord:
    return AuditRecord(
        seq=0,
        time=f"2026-12-08T02:30:{n:02d}.000000Z",
        principal="admin",
        token_id="t1",
        action="POST /apps/{app}/environments/{name}/deploys",
        app="shop",
        environment="staging",
        outcome="ok",
        status=202,
        source="127.0.0.1",
        detail={"path": f"/api/v1/apps/shop/environments/staging/deploys#{n}"},
    )


def chain(count: int) -> tuple[list[AuditRecord], Checkpoint]:
    records: list[AuditRecord] = []
    head: Checkpoint | None = None
    for n in range(count):
        record = audit.chained(entry(n), head=head)
        records.append(record)
        head = audit.sign(KEY, record)
    assert head is not None
    return records, head


def test_an_untouched_log_verifies() -> None:
    records, checkpoint = chain(5)
    result = audit.verify(records, checkpoint, key=KEY)
    assert result.ok, result.message
    assert (result.records, result.bad) == (5, None)
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    assert records[0].previous == audit.GENESIS
    assert records[3].previous == records[2].hash


def test_an_empty_log_verifies() -> None:
    assert audit.verify([], None, key=KEY).ok


def test_an_edited_record_is_named() -> None:
    records, checkpoint = chain(5)
    records[2] = replace(records[2], detail={"path": "/somewhere/else"})
    result = audit.verify(records, checkpoint, key=KEY)
    assert not result.ok
    assert result.bad == 3
    assert result.message == "record 3 was edited: its content does not match its hash"


@pytest.mark.parametrize("field", ["principal", "outcome", "time", "previous", "hash"])
def test_an_edit_of_any_field_is_caught(field: str) -> None:
    records, checkpoint = chain(3)
    records[1] = replace(records[1], **{field: "x" * 64})
    result = audit.verify(records, checkpoint, key=KEY)
    assert (result.ok, result.bad) == (False, 2)


def test_a_rewritten_record_with_a_new_hash_is_named() -> None:
    """An editor who also recomputes the record's hash breaks the link to the next one."""
    records, checkpoint = chain(5)
    edited = replace(records[1], principal="someone else")
    records[1] = replace(edited, hash=audit.hash_of(edited))
    result = audit.verify(records, checkpoint, key=KEY)
    assert (result.ok, result.bad) == (False, 2)
    assert "record 2 was rewritten" in result.message


def test_a_deleted_record_in_the_middle_is_named() -> None:
    records, checkpoint = chain(5)
    del records[2]
    result = audit.verify(records, checkpoint, key=KEY)
    assert (result.ok, result.bad) == (False, 3)
    assert result.message == "record 3 is missing (deleted): record 4 follows record 2"


def test_the_oldest_deleted_are_named() -> None:
    records, checkpoint = chain(5)
    result = audit.verify(records[2:], checkpoint, key=KEY)
    assert (result.ok, result.bad) == (False, 1)
    assert result.message.startswith("records 1 to 2 are missing")


def test_the_newest_deleted_are_caught_by_the_checkpoint() -> None:
    records, checkpoint = chain(5)
    result = audit.verify(records[:4], checkpoint, key=KEY)
    assert (result.ok, result.bad) == (False, 5)
    assert "record 5 is missing (the newest were deleted)" in result.message
    assert "the log ends at record 4" in result.message


def test_every_record_deleted_is_caught_by_the_checkpoint() -> None:
    _, checkpoint = chain(3)
    result = audit.verify([], checkpoint, key=KEY)
    assert (result.ok, result.bad) == (False, 1)
    assert result.message.startswith("records 1 to 3 are missing")


def test_reordered_records_are_named() -> None:
    records, checkpoint = chain(5)
    records[1], records[3] = records[3], records[1]
    result = audit.verify(records, checkpoint, key=KEY)
    assert not result.ok
    assert result.bad == 2
    assert result.message.startswith("records 2 to 3 are missing")
    records, checkpoint = chain(5)
    records[2], records[3] = records[3], records[2]
    result = audit.verify(records, checkpoint, key=KEY)
    assert result.bad == 3


def test_a_record_moved_back_is_out_of_order() -> None:
    records, checkpoint = chain(4)
    records.append(records[1])
    result = audit.verify(records, checkpoint, key=KEY)
    assert (result.ok, result.bad) == (False, 2)
    assert result.message == "record 2 is out of order: it comes after record 4"


def test_a_forged_checkpoint_is_refused() -> None:
    records, checkpoint = chain(5)
    forged = Checkpoint(4, records[3].hash, checkpoint.signature)
    result = audit.verify(records[:4], forged, key=KEY)
    assert not result.ok
    assert "signature is not valid" in result.message
    other_key = audit.sign(b"o" * 32, records[3])
    assert not audit.verify(records[:4], other_key, key=KEY).ok


def test_a_missing_checkpoint_is_caught() -> None:
    records, _ = chain(2)
    result = audit.verify(records, None, key=KEY)
    assert (result.ok, result.message) == (
        False,
        "the signed checkpoint is missing: it was deleted",
    )


def test_a_record_past_the_checkpoint_was_added_by_hand() -> None:
    records, _ = chain(3)
    early = audit.sign(KEY, records[1])
    result = audit.verify(records, early, key=KEY)
    assert (result.ok, result.bad) == (False, 3)


def test_a_chain_rewritten_to_its_end_differs_from_the_checkpoint() -> None:
    """Rewriting every hash from a record on leaves a valid chain: the signed checkpoint
    still names the old newest hash."""
    records, checkpoint = chain(3)
    head: Checkpoint | None = Checkpoint(1, records[0].hash)
    rewritten = records[:1]
    for record in records[1:]:
        again = audit.chained(replace(record, principal="mallory"), head=head)
        rewritten.append(again)
        head = Checkpoint(again.seq, again.hash)
    result = audit.verify(rewritten, checkpoint, key=KEY)
    assert (result.ok, result.bad) == (False, 3)
    assert "not the one the signed checkpoint names" in result.message


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "ok"),
        (202, "ok"),
        (401, "refused"),
        (403, "refused"),
        (404, "failed"),
        (500, "failed"),
    ],
)
def test_outcome_of_a_status(status: int, outcome: str) -> None:
    assert audit.outcome_of(status) == outcome


def test_the_canonical_form_is_stable_and_leaves_the_hash_out() -> None:
    records, _ = chain(1)
    assert audit.canonical(records[0]) == audit.canonical(replace(records[0], hash="other"))
    assert b'"hash"' not in audit.canonical(records[0])
    text = audit.canonical(replace(records[0], detail={}))
    assert text.startswith(b'{"action":"POST /apps/{app}/environments/{name}/deploys","app":')
    assert b", " not in text and b": " not in text
