"""Gathering what a protection check needs: the specs of what runs now in the app, the build
already made of a commit, and the releases of the environment before in the pipeline. The
rules are `core.pipeline` (`standing`, `previous_for`, `check_protection`, `check_destroy`);
environment creation, every later release and destruction use this.

Protection is never read from the spec being proposed: a branch cannot lift the protection it
is deployed under, nor skip the pipeline by naming a new environment outside it.
"""

from __future__ import annotations

from laneway.api.auth import Principal
from laneway.controllers.context import Context
from laneway.core import pipeline
from laneway.core.types import Environment, ReleaseState, Role
from laneway.errors import Forbidden, InvalidInput, LanewayError, NotFound
from laneway.spec.model import Spec


def build_of_commit(ctx: Context, app: str, commit: str) -> str | None:
    """The build made of `commit` already, if any (builds are cached per commit)."""
    return next((b.id for b in ctx.store.list_builds(app) if b.commit == commit), None)


def build_of(ctx: Context, app: str, build: str) -> tuple[str, str]:
    """The id and commit of the one build of `app` that `build` (an id or a prefix) names."""
    matches = [b for b in ctx.store.find_builds(build) if b.app == app]
    if not matches:
        raise NotFound(f"no build {build!r} of app {app!r}", hint="`laneway builds` lists them")
    if len(matches) > 1:
        raise InvalidInput(f"build {build!r} is ambiguous: {len(matches)} builds match")
    return matches[0].id, matches[0].commit


def running_spec(ctx: Context, environment: Environment) -> Spec | None:
    """The spec of the environment's live release, if one serves."""
    live = next(
        (r for r in ctx.store.releases(environment.id) if r.state == ReleaseState.LIVE), None
    )
    if live is None or live.build_id is None:
        return None
    try:
        return ctx.specs.of_build(live.build_id)
    except LanewayError:  # a build whose record is gone: it decides nothing
        return None


def _default_pipeline() -> list[str]:
    default = Spec.model_fields["pipeline"].get_default(call_default_factory=True)
    return list(default)


def standing(
    ctx: Context, app: str, *, name: str, kind: str
) -> tuple[pipeline.Standing, dict[str, Environment]]:
    """Whether environment `name` of `kind` (existing or not) is protected and the pipeline
    it is in, from what runs now; and the app's environments by name."""
    environments = {e.name: e for e in ctx.store.list_environments(app)}
    own: pipeline.Standing | None = None
    same_kind: list[pipeline.Standing] = []
    others: list[pipeline.Standing] = []
    for environment in environments.values():
        spec = running_spec(ctx, environment)
        if spec is None:
            continue
        found = pipeline.Standing(
            spec.protected(kind),
            list(spec.pipeline),
            approvals=spec.approvals(kind),
            hotfix_role=spec.hotfix_role(kind),
        )
        if environment.name == name:
            own = found
        elif str(environment.kind) == kind:
            same_kind.append(found)
        else:
            others.append(found)
    decided = pipeline.standing(
        kind,
        own=own,
        same_kind=same_kind,
        default_pipeline=_default_pipeline(),
        others=others,
    )
    return decided, environments


def check(
    ctx: Context,
    *,
    app: str,
    name: str,
    kind: str,
    build_id: str | None,
    hotfix: bool,
    reason: str | None,
) -> None:
    """Refuse `build_id` for environment `name` if it is protected (`standing`) and the build
    has not run healthy in the environment before it in the pipeline."""
    decided, environments = standing(ctx, app, name=name, kind=kind)
    kinds = {n: str(e.kind) for n, e in environments.items()}
    for order in decided.pipelines():
        before = pipeline.previous_for(order, name, kind, kinds)
        previous = environments.get(before) if before is not None else None
        pipeline.check_protection(
            target=name,
            protected=decided.protected,
            pipeline=order,
            build_id=build_id,
            previous_releases=ctx.store.releases(previous.id) if previous is not None else [],
            hotfix=hotfix,
            reason=reason,
            kind=kind,
            kinds=kinds,
        )


def check_destroy(
    ctx: Context, environment: Environment, *, hotfix: bool, reason: str | None
) -> None:
    decided, _ = standing(ctx, environment.app, name=environment.name, kind=str(environment.kind))
    pipeline.check_destroy(
        name=environment.name, protected=decided.protected, hotfix=hotfix, reason=reason
    )


def approvals_needed(ctx: Context, environment: Environment) -> int:
    """Approvals a deploy, promotion, canary or destroy of `environment` needs, from what
    runs now (0: it runs at once)."""
    return approvals_for(ctx, environment.app, name=environment.name, kind=str(environment.kind))


def approvals_for(ctx: Context, app: str, *, name: str, kind: str) -> int:
    """The same for environment `name` of `kind`, which may not exist yet (a promotion that
    creates it)."""
    decided, _ = standing(ctx, app, name=name, kind=kind)
    return decided.approvals if decided.protected else 0


def check_hotfix_role(
    ctx: Context, principal: Principal, *, app: str, name: str, kind: str
) -> None:
    """Refuse `--hotfix` to a caller below the role that the running spec of a protected
    environment allows it to (`environments.<kind>.hotfix_role`); never decided by the spec
    being proposed."""
    decided, _ = standing(ctx, app, name=name, kind=kind)
    if not decided.protected:
        return
    needs = Role(decided.hotfix_role)
    has = principal.role_for(app, name, kind)
    if not has.includes(needs):
        raise Forbidden(
            f"{app}/{name} allows --hotfix to the {needs} role only (its running spec's "
            f"hotfix_role); principal {principal.name!r} has role {has} there",
            hint="ask an admin, or go through the pipeline (and its approvals)",
        )
