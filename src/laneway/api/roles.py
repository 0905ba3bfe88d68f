"""The checks of routes that touch an environment: the caller's role for that environment
(its own role and its grants, core/grants.py), against the role the change needs there:
developer where the environment is not protected, deployer where it is. Protection is what
runs decides (api/protection.py `standing`), never the request.

Each is a dependency the edge runs before the body is read (api/edge.py): the environment
is named by the path (`request.path_params`). Where the body names it (a new environment, a
promotion's target), the edge checks that the caller may change some environment of the app,
and the route calls `authorize_change` once it has read which.

    changes_environment   /apps/{app}/environments/{name}/...   its environment
    changes_app           /apps/{app}/...                       one environment of the app
    changes_every_environment                                   each of the app's environments
    decides_approval      /approvals/{request_id}/...           deployer of its environment
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import cast

from fastapi import Request

from laneway.api import protection
from laneway.api.auth import Principal, caller
from laneway.api.edge import guarded
from laneway.controllers.context import Context
from laneway.core import grants
from laneway.core.types import Role
from laneway.errors import NotFound

Dependency = Callable[[Request], Awaitable[Principal]]


def _ctx(request: Request) -> Context:
    return cast(Context, request.app.state.ctx)


def authorize_change(
    ctx: Context, principal: Principal, *, app: str, name: str, kind: str | None
) -> None:
    """Refuse (403) a change to environment `app/name` of `kind` (None: it does not exist,
    kind unknown) unless the caller's role there is the one the change needs."""
    has = principal.role_for(app, name, kind)
    if has.includes(Role.DEPLOYER):  # enough anywhere: no need to ask what runs
        return
    where = f"{app}/{name}"
    if kind is None:  # nothing runs to say: the route answers 404 or decides later
        needs = Role.DEVELOPER
    else:
        decided, _ = protection.standing(ctx, app, name=name, kind=kind)
        needs = grants.needed_to_change(protected=decided.protected)
    if not has.includes(needs):
        raise grants.refuse(principal.name, has, needs, where=where)


def _authorize_existing(ctx: Context, principal: Principal, app: str, name: str) -> None:
    if principal.can(Role.DEPLOYER):  # its own role suffices anywhere: nothing to read
        return
    try:
        kind: str | None = str(ctx.store.get_environment(app, name).kind)
    except NotFound:
        kind = None
    authorize_change(ctx, principal, app=app, name=name, kind=kind)


def authorize_app(principal: Principal, app: str | None, role: Role) -> None:
    """`role` on some environment of `app` (None: of any app)."""
    has = grants.best_in(principal.role, principal.grants, app=app)
    if not has.includes(role):
        where = "any environment" if app is None else f"any environment of {app}"
        raise grants.refuse(principal.name, has, role, where=where)


def _authorize_every(ctx: Context, principal: Principal, app: str) -> None:
    authorize_app(principal, app, Role.DEVELOPER)
    for environment in ctx.store.list_environments(app):
        authorize_change(ctx, principal, app=app, name=environment.name, kind=str(environment.kind))


def _authorize_approval(ctx: Context, principal: Principal, request_id: str) -> None:
    try:
        found, _ = ctx.store.get_request(request_id)
    except NotFound:  # the route answers 404 to who may decide some request
        authorize_app(principal, None, Role.DEPLOYER)
        return
    try:
        kind: str | None = str(ctx.store.get_environment(found.app, found.environment).kind)
    except NotFound:
        kind = None
    has = principal.role_for(found.app, found.environment, kind)
    if not has.includes(Role.DEPLOYER):
        where = f"{found.app}/{found.environment}"
        raise grants.refuse(principal.name, has, Role.DEPLOYER, where=where)


def _scoped(decide: Callable[[Context, Principal, Request], None]) -> Dependency:
    async def check(request: Request) -> Principal:
        principal = await caller(request)
        await asyncio.to_thread(decide, _ctx(request), principal, request)
        return principal

    return guarded(check)


def changes_environment() -> Dependency:
    """The caller may change the environment the path names."""
    return _scoped(
        lambda ctx, p, r: _authorize_existing(ctx, p, r.path_params["app"], r.path_params["name"])
    )


def changes_app(role: Role = Role.DEVELOPER) -> Dependency:
    """The caller holds `role` on some environment of the path's app (the route checks the
    environment its body names with `authorize_change`)."""
    return _scoped(lambda ctx, p, r: authorize_app(p, r.path_params["app"], role))


def changes_every_environment() -> Dependency:
    """The caller may change each environment of the path's app (an app's flag definitions)."""
    return _scoped(lambda ctx, p, r: _authorize_every(ctx, p, r.path_params["app"]))


def decides_approval() -> Dependency:
    """The caller is a deployer of the environment the approval request is for."""
    return _scoped(lambda ctx, p, r: _authorize_approval(ctx, p, r.path_params["request_id"]))
