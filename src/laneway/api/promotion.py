"""`promote FROM TO --create`: a missing target made from the source's live build.

It is made exactly as `POST /apps/{app}/environments` makes any environment, through that
route's own checks (protection among them: a protected kind takes only a build that ran
healthy in the environment before it in the pipeline, unless hotfix), so creating by
promotion is never a way around them. One more check comes first, which can only refuse:
the pipeline the promotion itself was judged by (the source's running spec) also names an
environment before the target, and a protected target needs the build to have run there.
"""

from __future__ import annotations

from fastapi import Request

from laneway.api import protection, routes
from laneway.api.auth import Principal
from laneway.api.schemas import EnvironmentIn, PromoteIn, ReleaseOut
from laneway.controllers.context import Context
from laneway.core import pipeline
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
    kind = target_kind(body)
    _check_source_pipeline(ctx, app, body, kind, live.build_id)
    wanted = EnvironmentIn(
        name=body.target, kind=kind, build=live.build_id, hotfix=body.hotfix, reason=body.reason
    )
    ref, build_id = routes.checked_creation(request, app, wanted, principal)
    created = routes.make_environment(request, app, wanted, principal, ref=ref, build_id=build_id)
    environment = ctx.store.get_environment(app, created.name)
    ctx.store.add_event(
        environment.id,
        EventType.CREATED,
        f"created by {principal.name} to promote {live.build_id[7:19]} "
        f"from {body.source} {live.name}",
    )
    return ReleaseOut.of(ctx.store.get_release(environment.id, 1), events_after=0)


def _check_source_pipeline(
    ctx: Context, app: str, body: PromoteIn, kind: Kind, build_id: str
) -> None:
    """With the source's spec `pipeline: [staging, beta, production]`, a new `production` takes
    only what ran in `beta`, whatever the rules for a new environment would settle for."""
    spec = ctx.specs.of_build(build_id)
    standing, environments = protection.standing(ctx, app, name=body.target, kind=str(kind))
    before = pipeline.previous_for(spec.pipeline, body.target, str(kind))
    previous = environments.get(before) if before is not None else None
    pipeline.check_protection(
        target=body.target,
        protected=standing.protected or spec.protected(str(kind)),
        pipeline=spec.pipeline,
        build_id=build_id,
        previous_releases=ctx.store.releases(previous.id) if previous is not None else [],
        hotfix=body.hotfix,
        reason=body.reason,
        kind=str(kind),
    )
