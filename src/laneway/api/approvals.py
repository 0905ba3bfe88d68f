"""Approvals: a deploy, promotion, canary or destroy of a protected environment whose running
spec asks for approvals (`environments.<kind>.approvals`) waits as a request until enough
principals other than the requester approve it; then it runs, as the requester's change,
under the protection rule of what runs then (docs/access.md "Approvals").

`api.holding.hold` opens the request (the same request again returns the one already
waiting: retries are safe); `GET /approvals`, `POST /approvals/{id}/approve` and
`/reject` are here. The
decision rules are `core.approvals`; the change itself is made by `api.pipeline.propose` or
by marking the environment for destruction, as the direct routes do.
"""

from __future__ import annotations

from typing import cast

from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import BaseModel, Field

from laneway.api import audit, pipeline, promotion, roles, routes
from laneway.api.auth import Principal, require
from laneway.api.holding import ApprovalOut
from laneway.api.holding import now as _now
from laneway.api.schemas import EnvironmentIn, PromoteIn, ReleaseOut
from laneway.controllers.context import Context
from laneway.controllers.manager import Manager
from laneway.core import approvals, rollout_json
from laneway.core.approvals import Action, State
from laneway.core.types import Desired, EventType, Role
from laneway.errors import Conflict, LanewayError, NotFound

router = APIRouter(prefix="/api/v1")
viewer = Depends(require(Role.VIEWER))
decider = Depends(roles.decides_approval())


class RejectIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


def _ctx(request: Request) -> Context:
    return cast(Context, request.app.state.ctx)  # starlette's State holds Any; app.py sets it


@router.get("/approvals", response_model=list[ApprovalOut])
def list_approvals(
    request: Request,
    app: str | None = Query(None, max_length=64),
    state: State | None = None,
    _: Principal = viewer,
) -> list[ApprovalOut]:
    """Requests, newest first; `state=pending` for what waits."""
    now = _now()
    found = _ctx(request).store.list_requests(app=app)
    return [ApprovalOut.of(r, now) for r in found if state is None or r.state_at(now) is state]


@router.get("/approvals/{request_id}", response_model=ApprovalOut)
def show_approval(request_id: str, request: Request, _: Principal = viewer) -> ApprovalOut:
    found, _version = _ctx(request).store.get_request(_checked(request_id))
    return ApprovalOut.of(found, _now())


@router.post("/approvals/{request_id}/approve", response_model=ApprovalOut)
def approve(request_id: str, request: Request, principal: Principal = decider) -> ApprovalOut:
    """One approval; the last one needed runs the change."""
    ctx = _ctx(request)
    now = _now()
    found, version = ctx.store.get_request(_checked(request_id))
    audit.note(request, environment=found.environment, approval=found.id, app=found.app)
    updated = approvals.approve(found, principal.name, now)
    if not ctx.store.save_request(updated, version):
        raise Conflict(f"request {found.id} changed meanwhile", hint="look again, then retry")
    if updated.state is State.APPROVED:
        updated = approvals.ran(updated, _run(request, updated))
        ctx.store.save_request(updated, version + 1)
    return ApprovalOut.of(updated, now)


@router.post("/approvals/{request_id}/reject", response_model=ApprovalOut)
def reject(
    request_id: str,
    request: Request,
    body: RejectIn = Body(...),
    principal: Principal = decider,
) -> ApprovalOut:
    ctx = _ctx(request)
    now = _now()
    found, version = ctx.store.get_request(_checked(request_id))
    audit.note(request, environment=found.environment, approval=found.id, app=found.app)
    updated = approvals.reject(found, principal.name, body.reason, now)
    if not ctx.store.save_request(updated, version):
        raise Conflict(f"request {found.id} changed meanwhile", hint="look again, then retry")
    return ApprovalOut.of(updated, now)


def _checked(request_id: str) -> str:
    if not (len(request_id) == 8 and all(c in "0123456789abcdef" for c in request_id)):
        raise NotFound(f"no approval request {request_id[:40]!r}")
    return request_id


def _run(request: Request, approved: approvals.Request) -> str:
    """Make the approved change, as its requester's, under the rule of what runs now. What
    it did, or why it could not (the request stays approved: ask again to retry)."""
    ctx = _ctx(request)
    by = ", ".join(a.principal for a in approved.approvals)
    try:
        requester = Principal(
            token_id="", name=approved.requester, role=Role.DEPLOYER, principal_id=""
        )
        if approved.action is Action.CREATE:
            return _make(request, approved, requester)
        if approved.params.get("create"):
            return _create(request, approved, requester)
        environment = ctx.store.get_environment(approved.app, approved.environment)
        if approved.action is Action.DESTROY:
            ctx.store.update_environment(environment.id, desired=Desired.DELETED)
            ctx.store.add_event(
                environment.id,
                EventType.DESTROY,
                f"destroy requested by {approved.requester}, approved by {by}",
            )
            cast(Manager, request.app.state.manager).wake(environment.id)
            return "destroy requested"
        params = approved.params
        strategy = params.get("strategy")
        pipeline.protect(
            request, environment, build_id=params["build_id"], hotfix=False, reason=None
        )
        release: ReleaseOut = pipeline.propose(
            request,
            environment,
            requester,
            build_id=params["build_id"],
            commit=params.get("commit"),
            ref=params.get("ref"),
            config=pipeline.config_of(ctx, environment.id, environment.release),
            description=f"{approved.description} (approved by {by})",
            strategy=rollout_json.strategy_of(strategy) if strategy else None,
        )
        return f"release {release.name}"
    except LanewayError as exc:  # what the requester would have been told, kept on the request
        return f"not run: {exc.message}; ask for it again"


def _create(request: Request, approved: approvals.Request, requester: Principal) -> str:
    """An approved promotion that creates its target: from the build the source ran when it
    was asked, which the source must still run."""
    ctx = _ctx(request)
    params = approved.params
    source = ctx.store.get_environment(approved.app, str(params["source"]))
    live = pipeline.live_release(ctx, source)
    if live is None or live.build_id != params["build_id"]:
        raise Conflict(
            f"{source.name} no longer runs build {str(params['build_id'])[7:19]}, the one approved"
        )
    body = PromoteIn.model_validate(
        {"from": source.name, "to": approved.environment, "create": True, "kind": params["kind"]}
    )
    release = promotion.create_target(request, approved.app, body, live, requester)
    return f"created {approved.environment}, release {release.name}"


def _make(request: Request, approved: approvals.Request, requester: Principal) -> str:
    """An approved `env create`: its protection checked again against what runs now."""
    params = approved.params
    branch, ref = params["branch"], params["ref"]
    body = EnvironmentIn.model_validate(
        {
            "name": approved.environment,
            "kind": params["kind"],
            "branch": branch,
            "ref": None if branch else ref,
            "build": None if branch or ref else params["build_id"],
        }
    )
    ctx = _ctx(request)
    routes.check_creation(ctx, approved.app, body, ref=params["ref"], build_id=params["build_id"])
    made = routes.make_environment(
        request, approved.app, body, requester, ref=params["ref"], build_id=params["build_id"]
    )
    return f"created {made.name}"
