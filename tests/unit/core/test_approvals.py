"""Approval requests (core/approvals.py): who may approve, when it is done, expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from laneway.core import approvals
from laneway.core.approvals import Action, State
from laneway.errors import Conflict, Forbidden

NOW = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)


def request(needed: int = 2) -> approvals.Request:
    return approvals.open_request(
        id="0a1b2c3d",
        app="shop",
        environment="production",
        action=Action.PROMOTE,
        description="promote build 3f2a from staging v4",
        params={"build_id": "sha256:3f2a", "commit": "c", "ref": None},
        requester="alice",
        needed=needed,
        now=NOW,
    )


def test_it_runs_once_others_have_approved_enough() -> None:
    once = approvals.approve(request(), "bob", NOW)
    assert (once.state, once.waiting_for) == (State.PENDING, 1)
    twice = approvals.approve(once, "carol", NOW + timedelta(minutes=5))
    assert (twice.state, twice.waiting_for) == (State.APPROVED, 0)
    assert [a.principal for a in twice.approvals] == ["bob", "carol"]


def test_nobody_approves_their_own_or_twice() -> None:
    with pytest.raises(Forbidden, match="alice asked for request 0a1b2c3d"):
        approvals.approve(request(), "alice", NOW)
    once = approvals.approve(request(), "bob", NOW)
    with pytest.raises(Conflict, match="bob has approved request 0a1b2c3d already"):
        approvals.approve(once, "bob", NOW)


def test_a_request_expires_and_then_takes_no_approval() -> None:
    late = NOW + approvals.EXPIRES_AFTER
    assert request().state_at(late - timedelta(seconds=1)) is State.PENDING
    assert request().state_at(late) is State.EXPIRED
    with pytest.raises(Conflict, match="is expired, not pending"):
        approvals.approve(request(), "bob", late)


def test_a_rejected_request_is_over() -> None:
    rejected = approvals.reject(request(), "bob", "not during the sale", NOW)
    assert (rejected.state, rejected.reason) == (State.REJECTED, "bob: not during the sale")
    with pytest.raises(Conflict, match="is rejected"):
        approvals.approve(rejected, "carol", NOW)


def test_a_request_survives_the_store() -> None:
    made = approvals.ran(approvals.approve(request(1), "bob", NOW), "release v7")
    assert approvals.from_json(approvals.to_json(made)) == made


def test_a_request_needs_one_to_five_approvals() -> None:
    with pytest.raises(ValueError, match="1 to 5 approvals"):
        request(0)
