"""API routes of the pipeline: deploy, promote, roll back, change config, compare.

Each handler checks the request against the pipeline's rules (core.pipeline), then writes
one new release as the environment's target (compare-and-set, so two deploys never
interleave) and wakes the environment's controller, which does the rest; the caller follows
the environment's events. Deploying what already runs changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path as FilePath
from typing import Any, cast

from fastapi import APIRouter, Depends, Path, Query, Request

from laneway.api import audit, config_access, flag_service, holding, promotion, protection, roles
from laneway.api.auth import Principal, require
from laneway.api.holding import PendingOut
from laneway.api.schemas import (
    AppName,
    ConfigIn,
    ConfigVarOut,
    DeployIn,
    DiffOut,
    DiffRowOut,
    EnvironmentName,
    PromoteIn,
    ReleaseOut,
    RollbackIn,
)
from laneway.controllers import builds, hooks
from laneway.controllers.context import Context
from laneway.controllers.manager import Manager
from laneway.core import config as configs
from laneway.core import pipeline, rollout_json, rollouts
from laneway.core.approvals import Action
from laneway.core.config import ConfigEntry
from laneway.core.types import Environment, EventType, Release, ReleaseState, Role
from laneway.errors import Conflict, InvalidInput, LanewayError, NotFound
from laneway.spec.model import Spec

router = APIRouter(prefix="/api/v1")
viewer = Depends(require(Role.VIEWER))
changer = Depends(roles.changes_environment())
app_changer = Depends(roles.changes_app())

HOOK_OUTPUT_LINES = 200
MAX_RELEASE = 2**31 - 1


def _ctx(request: Request) -> Context:
    return cast(Context, request.app.state.ctx)  # starlette's State holds Any; app.py sets it


def _manager(request: Request) -> Manager:
    return cast(Manager, request.app.state.manager)


def wake(request: Request, environment_id: str) -> None:
    """Make the environment's worker pass now: an intent was recorded."""
    _manager(request).wake(environment_id)


# reading ------------------------------------------------------------------------------------


def live_release(ctx: Context, environment: Environment) -> Release | None:
    return next(
        (r for r in ctx.store.releases(environment.id) if r.state == ReleaseState.LIVE), None
    )


def config_of(ctx: Context, environment_id: str, number: int) -> dict[str, ConfigEntry]:
    return ctx.vault.open(ctx.store.sealed_config(environment_id, number))


def config_out(ctx: Context, config: dict[str, ConfigEntry]) -> list[ConfigVarOut]:
    return [
        ConfigVarOut(
            key=key,
            value=None if entry.secret else entry.value,
            secret=entry.secret,
            fingerprint=ctx.vault.fingerprint(entry.value) if entry.secret else None,
        )
        for key, entry in sorted(config.items())
    ]


def _spec(request: Request, build_id: str) -> Spec:
    return _ctx(request).specs.of_build(build_id)


# writing ------------------------------------------------------------------------------------


def propose(
    request: Request,
    environment: Environment,
    principal: Principal,
    *,
    build_id: str | None,
    commit: str | None,
    ref: str | None,
    config: dict[str, ConfigEntry],
    description: str,
    hotfix_reason: str | None = None,
    generation: int | None = None,
    replicas: dict[str, int] | None = None,
    restart: bool = False,
    restarts: dict[str, float] | None = None,
    strategy: rollouts.Strategy | None = None,
) -> ReleaseOut:
    """Make the next release the environment's target, unless it is what runs already (a
    restart is made all the same, and does not run the release hook again). `replicas`: its
    scale counts, by default the current release's."""
    ctx = _ctx(request)
    pipeline.check_not_in_progress(environment)
    current = ctx.store.get_release(environment.id, environment.release)
    current_config = config_of(ctx, environment.id, environment.release)
    if (
        not environment.failure
        and build_id is not None
        and build_id == current.build_id
        and config == current_config
        and generation is None
        and (replicas is None or replicas == current.replicas)
        and not restart
        and not restarts
    ):
        return ReleaseOut.of(current, unchanged=True)
    version = current.config_version + (0 if config == current_config else 1)
    # read before the release exists: the worker may write its first steps at once, and a
    # follower must see every one of them (an instant rollback switches within a pass)
    first = ctx.store.latest_event_id(environment.id)
    environment, release = ctx.store.create_release(
        environment.id,
        expect_release=environment.release,
        build_id=build_id,
        commit=commit,
        ref=ref,
        config_version=version,
        config_sealed=ctx.vault.seal(config),
        description=description,
        created_by=principal.name,
        hotfix_reason=hotfix_reason,
        generation=generation,
        replicas=replicas,
        skip_hook=restart,
        restarts=restarts,
        strategy=strategy,
    )
    note = f" (hotfix: {hotfix_reason})" if hotfix_reason else ""
    ctx.store.add_event(environment.id, EventType.DEPLOY, f"{release.name}: {description}{note}")
    _manager(request).wake(environment.id)
    return ReleaseOut.of(release, events_after=first)


def protect(
    request: Request,
    environment: Environment,
    build_id: str | None,
    hotfix: bool,
    reason: str | None,
) -> None:
    """Protection is read from what runs now (the live release's spec, or the kind's
    standing in the app), never from the build proposed: a build cannot lift it."""
    if hotfix:
        audit.note(request, hotfix=reason or "")
    protection.check(
        _ctx(request),
        app=environment.app,
        name=environment.name,
        kind=str(environment.kind),
        build_id=build_id,
        hotfix=hotfix,
        reason=reason,
    )


def ship(
    request: Request,
    environment: Environment,
    principal: Principal,
    *,
    build_id: str | None,
    commit: str | None,
    ref: str | None,
    description: str,
    hotfix: bool,
    reason: str | None,
    strategy: rollouts.Strategy | None = None,
    action: Action = Action.DEPLOY,
) -> ReleaseOut | PendingOut:
    """A build into an environment, with the config in force: what a deploy, a promotion
    and a canary share. Protection is checked first, from what runs (`protect`); where what
    runs asks for approvals, the change waits for them instead (a hotfix does not)."""
    if hotfix:
        protection.check_hotfix_role(
            _ctx(request),
            principal,
            app=environment.app,
            name=environment.name,
            kind=str(environment.kind),
        )
    protect(request, environment, build_id=build_id, hotfix=hotfix, reason=reason)
    needed = 0 if hotfix else protection.approvals_needed(_ctx(request), environment)
    if needed:
        params: dict[str, Any] = {"build_id": build_id, "commit": commit, "ref": ref}
        if strategy is not None:
            params["strategy"] = rollout_json.strategy_json(strategy)
        return holding.hold(request, environment, principal, action, description, params, needed)
    return propose(
        request,
        environment,
        principal,
        build_id=build_id,
        commit=commit,
        ref=ref,
        config=config_of(_ctx(request), environment.id, environment.release),
        description=description,
        hotfix_reason=reason if hotfix else None,
        strategy=strategy,
    )


@router.post(
    "/apps/{app}/environments/{name}/deploys",
    response_model=ReleaseOut | PendingOut,
    status_code=202,
)
def deploy(
    app: AppName,
    name: EnvironmentName,
    body: DeployIn,
    request: Request,
    principal: Principal = changer,
) -> ReleaseOut | PendingOut:
    """Deploy a ref (built if it has not been) or a build; answers with the new release."""
    ctx = _ctx(request)
    environment = ctx.store.get_environment(app, name)
    source = resolve_source(ctx, environment, ref=body.ref, build=body.build)
    return ship(
        request,
        environment,
        principal,
        build_id=source.build_id,
        commit=source.commit,
        ref=source.ref,
        description=f"deploy {source.what}",
        hotfix=body.hotfix,
        reason=body.reason,
    )


@dataclass(frozen=True)
class Source:
    """What a deploy or a canary rolls out: its build (None until a ref is built)."""

    build_id: str | None
    commit: str
    ref: str | None
    what: str


def resolve_source(
    ctx: Context, environment: Environment, *, ref: str | None, build: str | None
) -> Source:
    if (ref is None) == (build is None):
        raise InvalidInput("give exactly one of ref or build")
    if build:
        found, built = protection.build_of(ctx, environment.app, build)
        return Source(found, built, environment.ref, f"build {found[7:19]}")
    assert ref is not None
    repo = FilePath(ctx.store.get_app(environment.app).repo)
    commit = builds.check_spec_at(repo, ref, app=environment.app)
    build_id = protection.build_of_commit(ctx, environment.app, commit)
    return Source(build_id, commit, commit, f"{ref} (commit {commit[:12]})")


@router.post(
    "/apps/{app}/environments/{name}/deploys/cancel", response_model=ReleaseOut, status_code=202
)
def cancel_deploy(
    app: AppName, name: EnvironmentName, request: Request, principal: Principal = changer
) -> ReleaseOut:
    """Stop the deploy under way: its release is marked failed, the live one keeps serving, and
    the new processes are stopped by the next pass. Answers with the release that serves."""
    ctx = _ctx(request)
    environment = ctx.store.get_environment(app, name)
    if not environment.deploying:
        raise Conflict(
            f"no deploy of {name} is under way"
            + ("" if environment.live else " (a first release cannot be cancelled; destroy it)")
        )
    environment = ctx.store.change_rollout(
        environment.id, lambda status: rollouts.abort(status, f"cancelled by {principal.name}")
    )
    _manager(request).wake(environment.id)
    stable = environment.rollout.stable
    assert stable is not None
    return ReleaseOut.of(ctx.store.get_release(environment.id, stable.release))


@router.post("/apps/{app}/promotions", response_model=ReleaseOut | PendingOut, status_code=202)
def promote(
    app: AppName, body: PromoteIn, request: Request, principal: Principal = app_changer
) -> ReleaseOut | PendingOut:
    """Deploy to `to` the very build `from` runs, with `to`'s own config. With `create`, a
    missing `to` is created with that build, under the rules of any environment's creation
    (an existing one is promoted to as without it)."""
    audit.note(request, environment=body.target, source=body.source)
    ctx = _ctx(request)
    _authorize_target(ctx, principal, app, body)
    source = ctx.store.get_environment(app, body.source)
    live = live_release(ctx, source)
    if live is None or live.build_id is None:
        raise InvalidInput(f"{body.source} has no live release to promote")
    spec = _spec(request, live.build_id)
    pipeline.check_promotion(spec.pipeline, body.source, body.target)
    try:
        target = ctx.store.get_environment(app, body.target)
    except NotFound as exc:
        if not body.create:
            raise NotFound(
                exc.message,
                hint=f"`laneway promote {body.source} {body.target} --create` creates it "
                f"with the build {body.source} runs",
            ) from None
        kind = str(promotion.target_kind(body))
        needed = (
            0 if body.hotfix else protection.approvals_for(ctx, app, name=body.target, kind=kind)
        )
        if needed:
            created = f"create {body.target} ({kind}) with build {live.build_id[7:19]} "
            return holding.hold(
                request,
                body.target,
                principal,
                Action.PROMOTE,
                created + f"from {body.source} {live.name}",
                {"create": True, "source": body.source, "kind": kind, "build_id": live.build_id},
                needed,
                app=app,
            )
        return promotion.create_target(request, app, body, live, principal)
    if body.kind is not None and body.kind != target.kind:
        raise Conflict(f"{body.target} exists already, of kind {target.kind}, not {body.kind}")
    return ship(
        request,
        target,
        principal,
        build_id=live.build_id,
        commit=live.commit,
        ref=target.ref,
        description=f"promote build {live.build_id[7:19]} from {body.source} {live.name}",
        hotfix=body.hotfix,
        reason=body.reason,
        action=Action.PROMOTE,
    )


def _authorize_target(ctx: Context, principal: Principal, app: str, body: PromoteIn) -> None:
    """The caller's role on the promotion's target (its kind: as it is, or as `create` would
    make it), before anything is read of the source."""
    try:
        kind = ctx.store.get_environment(app, body.target).kind
    except NotFound:
        kind = promotion.target_kind(body)
    roles.authorize_change(ctx, principal, app=app, name=body.target, kind=str(kind))


@router.post("/apps/{app}/environments/{name}/rollback", response_model=ReleaseOut, status_code=202)
def rollback(
    app: AppName,
    name: EnvironmentName,
    body: RollbackIn,
    request: Request,
    principal: Principal = changer,
) -> ReleaseOut:
    """A new release with an earlier release's build and config. If that release's processes
    are still warm, it is only a switch of the router."""
    ctx = _ctx(request)
    environment = ctx.store.get_environment(app, name)
    pipeline.check_not_in_progress(environment)
    live = live_release(ctx, environment)
    chosen = pipeline.rollback_target(ctx.store.releases(environment.id), live, body.to)
    warm = (
        chosen.generation
        if chosen.generation == environment.warm and environment.warm_until > ctx.clock()
        else None
    )
    answer = propose(
        request,
        environment,
        principal,
        build_id=chosen.build_id,
        commit=chosen.commit,
        ref=environment.ref,
        config=config_of(ctx, environment.id, chosen.number),
        description=f"rollback to {chosen.name}",
        generation=warm,
        replicas=chosen.replicas,
    )
    flags = flag_service.get(request.app).store
    now = flags.version(environment.id) if chosen.flags_version is not None else None
    if now is not None and now != chosen.flags_version:
        answer.flags_version = chosen.flags_version
        answer.flags_now = now
    return answer


@router.get("/apps/{app}/environments/{name}/config", response_model=list[ConfigVarOut])
def list_config(
    app: AppName,
    name: EnvironmentName,
    request: Request,
    reveal: bool = config_access.REVEAL,
    principal: Principal = viewer,
) -> list[ConfigVarOut]:
    """The config of the environment's newest release; secrets as fingerprints, or with
    `reveal` their values."""
    ctx = _ctx(request)
    environment = ctx.store.get_environment(app, name)
    config = config_access.current_config(ctx, environment)
    return config_access.shown(ctx, environment, config, principal, reveal=reveal, request=request)


@router.patch("/apps/{app}/environments/{name}/config", response_model=ReleaseOut, status_code=202)
def change_config(
    app: AppName,
    name: EnvironmentName,
    body: ConfigIn,
    request: Request,
    principal: Principal = changer,
) -> ReleaseOut:
    """Set and unset variables: a new release with the same build, restarted with zero
    downtime. Nothing is written if a name or value is refused."""
    audit.note(request, set=", ".join(sorted(body.set)), unset=", ".join(sorted(body.unset)))
    ctx = _ctx(request)
    environment = ctx.store.get_environment(app, name)
    if not body.set and not body.unset:
        raise InvalidInput("nothing to change: give variables to set or unset")
    problems = [
        p
        for key, value in body.set.items()
        for p in (configs.check_key(key) or configs.check_value(key, value),)
        if p
    ]
    problems += [p for key in body.unset if (p := configs.check_key(key))]
    if problems:
        raise InvalidInput("; ".join(problems))
    if environment.build_id is None:
        raise InvalidInput(f"{name} has no build yet; wait for its first release")
    if body.secret:
        configs.check_secrets(body.set)
    config = config_of(ctx, environment.id, environment.release)
    if body.unset:
        config = configs.without(config, body.unset)
    config = configs.with_set(config, body.set, secret=body.secret)
    configs.check_release(config)
    parts = []
    if body.set:
        parts.append("set " + ", ".join(sorted(body.set)) + (" (secret)" if body.secret else ""))
    if body.unset:
        parts.append("unset " + ", ".join(sorted(body.unset)))
    return propose(
        request,
        environment,
        principal,
        build_id=environment.build_id,
        commit=environment.commit,
        ref=environment.ref,
        config=config,
        description="config " + "; ".join(parts),
    )


@router.get("/apps/{app}/environments/{name}/releases/{number}", response_model=ReleaseOut)
def show_release(
    app: AppName,
    name: EnvironmentName,
    request: Request,
    number: int = Path(ge=1, le=MAX_RELEASE),
    _: Principal = viewer,
) -> ReleaseOut:
    """One release with its config (secrets as fingerprints) and its release hook's output."""
    ctx = _ctx(request)
    environment = ctx.store.get_environment(app, name)
    release = ctx.store.get_release(environment.id, number)
    output = hooks.read_output(ctx, environment.id, number, lines=HOOK_OUTPUT_LINES)
    return ReleaseOut.of(
        release,
        config=config_out(ctx, config_of(ctx, environment.id, number)),
        hook_output=output,
    )


@router.get("/apps/{app}/diff", response_model=DiffOut)
def diff(
    app: AppName,
    request: Request,
    left: str = Query(..., description="Environment name."),
    right: str = Query(..., description="Environment name."),
    _: Principal = viewer,
) -> DiffOut:
    """Build, release, config (secrets by fingerprint), resources, spec overrides and flags of
    two environments side by side; `in_parity` is false if anything undeclared differs."""
    ctx = _ctx(request)
    sides = [_side(request, ctx.store.get_environment(app, n)) for n in (left, right)]
    declared: set[str] = set()
    for side_spec in (s[1] for s in sides if s[1] is not None):
        declared |= set(side_spec.parity.config)
    drift = pipeline.diff(sides[0][0], sides[1][0], declared_config=declared)
    return DiffOut(
        app=app,
        left=left,
        right=right,
        in_parity=drift.in_parity,
        rows=[DiffRowOut(**row.__dict__) for row in drift.rows],
    )


def _side(request: Request, environment: Environment) -> tuple[pipeline.Side, Spec | None]:
    ctx = _ctx(request)
    live = live_release(ctx, environment)
    release = live or ctx.store.get_release(environment.id, environment.release)
    spec = _spec(request, release.build_id) if release.build_id else None
    config = config_of(ctx, environment.id, release.number)
    resources = {}
    for record in ctx.store.resources(environment.id):
        provider = ctx.providers.get(record.type)
        try:
            resources[record.name] = provider.version() if provider else record.type
        except LanewayError as exc:
            resources[record.name] = f"{record.type} (unknown: {exc.message})"
    overrides: dict[str, object] = {}
    if spec is not None:
        section = spec.overrides_for(environment.kind)
        if section is not None:
            overrides = section.model_dump(mode="json", exclude_defaults=True, by_alias=True)
    flag_set = flag_service.get(request.app).load(environment.id)
    flags = {
        key: f"{flag.state}"
        + (f" default={flag.default_variant}" if flag.default_variant else "")
        + (f" targeting={json.dumps(flag.targeting, sort_keys=True)}" if flag.targeting else "")
        for key, flag in (flag_set.flags.items() if flag_set is not None else ())
    }
    return (
        pipeline.Side(
            name=environment.name,
            build_id=release.build_id,
            commit=release.commit,
            release=release.name,
            config={
                key: (
                    ctx.vault.fingerprint(entry.value),
                    entry.secret,
                    None if entry.secret else entry.value,
                )
                for key, entry in config.items()
            },
            resources=resources,
            overrides=overrides,
            flags=flags,
        ),
        spec,
    )
