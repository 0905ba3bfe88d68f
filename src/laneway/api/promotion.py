"""`promote FROM TO --create`: a missing target made from the source's live build.

It is made exactly as `POST /apps/{app}/environments` makes any environment, through that
route's own checks (protection among them: a protected kind takes only a build that ran
healthy in the environment before it in the pipeline, unless hotfix), so creating by
promotion is never a way around them.
"""

from __future__ import annotations

from fastapi import Request

from laneway.api import routes
from laneway.api.auth import Principal
from laneway.api.schemas import EnvironmentIn, PromoteIn, ReleaseOut
from laneway.controllers.context import Context
from laneway.core.types import EventType, Kind, Release
from laneway.spec.model import is_kind


def target_kind(body: PromoteIn) -> Kind:
    """The kind asked for, else the target's name where it names a kind (`staging`,
    `production`), else staging: an environment of the pipeline before production."""
    if body.kind is not None:
        return body.kind
    return Kind(body.target) if is_kind(body.target) else Kind.STAGING


def create_target(
    request: Request, app: str, body: PromoteIn, live: Release, principal: Principal
) -> ReleaseOut:
    ctx: Context = request.app.state.ctx
    assert live.build_id is not None
    created = routes.create_environment(
        app,
        EnvironmentIn(
            name=body.target,
            kind=target_kind(body),
            build=live.build_id,
            hotfix=body.hotfix,
            reason=body.reason,
        ),
        request,
        principal,
    )
    environment = ctx.store.get_environment(app, created.name)
    ctx.store.add_event(
        environment.id,
        EventType.CREATED,
        f"created by {principal.name} to promote {live.build_id[7:19]} "
        f"from {body.source} {live.name}",
    )
    return ReleaseOut.of(ctx.store.get_release(environment.id, 1), events_after=0)
