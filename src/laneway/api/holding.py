"""Holding a change for approvals: the request it becomes (`hold`), and how a request is
shown (`ApprovalOut`). `api.pipeline.ship` and the destroy route call `hold` when what runs
asks for approvals; `api.approvals` serves the requests and runs an approved one.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any, cast

from fastapi import Request
from pydantic import BaseModel

from laneway.api.auth import Principal
from laneway.controllers.context import Context
from laneway.core import approvals
from laneway.core.approvals import Action, State
from laneway.core.types import Environment, EventType


def now() -> datetime:
    return datetime.now(UTC)


class ApprovalOut(BaseModel):
    """A change waiting for approvals, or what became of it."""

    id: str
    app: str
    environment: str
    action: str
    description: str
    requester: str
    state: str
    needed: int
    approved_by: list[str]
    waiting_for: int
    created: datetime
    expires: datetime
    reason: str | None = None
    outcome: str | None = None

    @classmethod
    def of(cls, request: approvals.Request, now: datetime) -> ApprovalOut:
        return cls(
            id=request.id,
            app=request.app,
            environment=request.environment,
            action=str(request.action),
            description=request.description,
            requester=request.requester,
            state=str(request.state_at(now)),
            needed=request.needed,
            approved_by=[a.principal for a in request.approvals],
            waiting_for=request.waiting_for,
            created=request.created,
            expires=request.expires,
            reason=request.reason,
            outcome=request.outcome,
        )


class PendingOut(BaseModel):
    """The answer to a change that waits for approvals instead of running."""

    approval: ApprovalOut


def hold(
    request: Request,
    environment: Environment | str,
    principal: Principal,
    action: Action,
    description: str,
    params: dict[str, Any],
    needed: int,
    *,
    app: str | None = None,
) -> PendingOut:
    """Open a request for the change (or return the same one already waiting). The
    environment, or the name of one that does not exist yet (with `app`: a promotion that
    would create it)."""
    ctx = cast(Context, request.app.state.ctx)  # starlette's State holds Any
    at = now()
    if isinstance(environment, str):
        assert app is not None
        name, environment_id = environment, None
    else:
        app, name, environment_id = environment.app, environment.name, environment.id
    for waiting in ctx.store.list_requests(app=app, state=str(State.PENDING)):
        if waiting.state_at(at) is State.PENDING and (
            waiting.environment,
            waiting.action,
            waiting.params,
            waiting.requester,
        ) == (name, action, params, principal.name):
            return PendingOut(approval=ApprovalOut.of(waiting, at))
    opened = approvals.open_request(
        id=secrets.token_hex(4),
        app=app,
        environment=name,
        action=action,
        description=description,
        params=params,
        requester=principal.name,
        needed=needed,
        now=at,
    )
    ctx.store.add_request(opened)
    if environment_id is not None:
        ctx.store.add_event(
            environment_id,
            EventType.DEPLOY,
            f"{description}: waits for {needed} approval(s), request {opened.id} "
            f"by {principal.name}",
        )
    return PendingOut(approval=ApprovalOut.of(opened, at))
