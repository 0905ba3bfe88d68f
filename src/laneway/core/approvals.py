"""Approvals of changes to a protected environment: a request waits for N approvals from
principals other than the one who asked, then runs; a rejection or its expiry ends it.

Which changes need them, and how many, is read from what runs (`core.pipeline.Standing`);
never a rollback or an abort, which stay immediate. A request is a small state machine:
pending, then approved (it ran, or was handed to run), rejected or expired. Pure: the
caller passes the time and the principal.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from laneway.errors import Conflict, Forbidden

EXPIRES_AFTER = timedelta(hours=24)
"""How long a request waits for its approvals before it expires."""
MAX_APPROVALS = 5


class Action(StrEnum):
    """What a request asks to do to its environment."""

    CREATE = "create"
    DEPLOY = "deploy"
    PROMOTE = "promote"
    CANARY = "canary"
    DESTROY = "destroy"


class State(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Approval:
    principal: str
    time: datetime


@dataclass(frozen=True)
class Request:
    """One change waiting for approvals, and what became of it."""

    id: str
    app: str
    environment: str
    action: Action
    description: str
    """What it does, as the requester's command said it: `promote build 3f2a… from staging`."""
    params: dict[str, Any]
    """What the change needs to run once approved (a build id, a strategy); no secret."""
    requester: str
    created: datetime
    expires: datetime
    needed: int
    approvals: tuple[Approval, ...] = ()
    state: State = State.PENDING
    reason: str | None = None
    """Why it was rejected."""
    outcome: str | None = None
    """What running it did: `release v7`, or why it could not run."""

    def state_at(self, now: datetime) -> State:
        if self.state is State.PENDING and now >= self.expires:
            return State.EXPIRED
        return self.state

    @property
    def waiting_for(self) -> int:
        return max(self.needed - len(self.approvals), 0)


def open_request(
    *,
    id: str,
    app: str,
    environment: str,
    action: Action,
    description: str,
    params: dict[str, Any],
    requester: str,
    needed: int,
    now: datetime,
) -> Request:
    if not 1 <= needed <= MAX_APPROVALS:
        raise ValueError(f"a request needs 1 to {MAX_APPROVALS} approvals, not {needed}")
    return Request(
        id=id,
        app=app,
        environment=environment,
        action=action,
        description=description,
        params=params,
        requester=requester,
        created=now,
        expires=now + EXPIRES_AFTER,
        needed=needed,
    )


def approve(request: Request, principal: str, now: datetime) -> Request:
    """One more approval; the request is approved once it has all it needs."""
    _check_pending(request, now)
    if principal == request.requester:
        raise Forbidden(
            f"{principal} asked for request {request.id}: its approvals must come from others"
        )
    if any(a.principal == principal for a in request.approvals):
        raise Conflict(f"{principal} has approved request {request.id} already")
    approvals = (*request.approvals, Approval(principal, now))
    done = len(approvals) >= request.needed
    return replace(request, approvals=approvals, state=State.APPROVED if done else State.PENDING)


def reject(request: Request, principal: str, reason: str, now: datetime) -> Request:
    """Anyone who may approve may reject (the requester too: a withdrawal)."""
    _check_pending(request, now)
    return replace(request, state=State.REJECTED, reason=f"{principal}: {reason}")


def ran(request: Request, outcome: str) -> Request:
    return replace(request, outcome=outcome)


def _check_pending(request: Request, now: datetime) -> None:
    state = request.state_at(now)
    if state is not State.PENDING:
        raise Conflict(f"request {request.id} is {state}, not pending")


def to_json(request: Request) -> dict[str, Any]:
    return {
        "id": request.id,
        "app": request.app,
        "environment": request.environment,
        "action": str(request.action),
        "description": request.description,
        "params": request.params,
        "requester": request.requester,
        "created": request.created.isoformat(),
        "expires": request.expires.isoformat(),
        "needed": request.needed,
        "approvals": [
            {"principal": a.principal, "time": a.time.isoformat()} for a in request.approvals
        ],
        "state": str(request.state),
        "reason": request.reason,
        "outcome": request.outcome,
    }


def from_json(data: dict[str, Any]) -> Request:
    return Request(
        id=str(data["id"]),
        app=str(data["app"]),
        environment=str(data["environment"]),
        action=Action(data["action"]),
        description=str(data["description"]),
        params=dict(data["params"]),
        requester=str(data["requester"]),
        created=datetime.fromisoformat(data["created"]),
        expires=datetime.fromisoformat(data["expires"]),
        needed=int(data["needed"]),
        approvals=tuple(
            Approval(str(a["principal"]), datetime.fromisoformat(a["time"]))
            for a in data.get("approvals") or ()
        ),
        state=State(data["state"]),
        reason=data.get("reason"),
        outcome=data.get("outcome"),
    )
