"""The API's edge: every request's caller is checked before its body is read.

FastAPI reads and parses a body before it resolves a route's dependencies, so a check made
in a dependency comes after a 100 MB body was read. `Edge` is a pure ASGI middleware that,
before the app sees the request:

1. finds the route (a path whose methods do not include the request's: 405 with `Allow`);
2. runs the route's guard, the `check` of its `guarded(check)` dependency (an API token and
   role for laneway's API, a client key for OFREP), on the headers and the path's parameters
   alone (the environment a route changes, api/roles.py): 401/403, with the body unread.

The route's dependency then returns what its guard found, so a check is made once. Bodies
are capped by FastAPI's own `max_body_size` (Starlette's body limit): `BODY_LIMIT` for every
router the app includes (app.py; not the app's own, which would answer 413 before the edge
answers 401), more where a route says so (`@router.put(..., max_body_size=...)`); a
Content-Length over it is refused before a byte is read, a chunked body after the limit:
413 (api/problems.py names the limit). A route without a guard must read no body; the tests
hold every route of the API to one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from laneway.api import problems
from laneway.errors import LanewayError, MethodNotAllowed, PayloadTooLarge

T = TypeVar("T")
Check = Callable[[Request], Awaitable[Any]]

MiB = 1024 * 1024
BODY_LIMIT = 1 * MiB
"""A route's body limit unless it names another: ample for every JSON body of the API."""

_CHECKED = "laneway.checked"


def guarded(check: Callable[[Request], Awaitable[T]]) -> Callable[[Request], Awaitable[T]]:
    """A dependency whose `check` the edge runs on the headers before the body is read; the
    dependency answers with what `check` returned."""

    async def dependency(request: Request) -> T:
        checked: dict[Check, Any] = request.scope.setdefault(_CHECKED, {})
        if check not in checked:  # an app served without the edge (never in laneway)
            checked[check] = await check(request)
        return checked[check]  # type: ignore[no-any-return]

    dependency.laneway_check = check  # type: ignore[attr-defined]
    return dependency


def checks_of(route: APIRoute) -> list[Check]:
    """The guards of a route, in the order its dependencies declare them."""
    return [
        check
        for dependant in route.dependant.dependencies
        if (check := getattr(dependant.call, "laneway_check", None)) is not None
    ]


def limit_of(route: RouteContext) -> int:
    """The body limit in force on `route`: its own, its router's, or the app's."""
    limit = getattr(route, "max_body_size", None)
    return BODY_LIMIT if limit is None else int(limit)


def api_routes(app: FastAPI) -> list[RouteContext]:
    """The app's FastAPI routes (included routers flattened), with their effective settings."""
    return [c for c in iter_route_contexts(app.routes) if isinstance(c.original_route, APIRoute)]


class Edge:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.routes: list[RouteContext] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            if self.routes is None:  # the app's routes are all in place by its first request
                self.routes = api_routes(scope["app"])
            found = _route(self.routes, scope)
            if found is None:  # not found: the router answers, reading no body
                await self.app(scope, receive, send)
                return
            route, child = found
            # with the route's path parameters: a check may depend on the environment named
            request = Request({**scope, **child})
            checked = scope.setdefault(_CHECKED, {})
            for check in checks_of(cast(APIRoute, route.original_route)):
                checked[check] = await check(request)
            _check_length(request, limit_of(route))
        except LanewayError as exc:
            # the body stays unread: the server closes the connection after this answer
            await problems.of(exc)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _check_length(request: Request, limit: int) -> None:
    """A declared length over the limit, answered here as problem+json (Starlette's limit
    would answer it in plain text); a chunked body is counted by Starlette as it is read."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(
            f"the request body is over this route's limit of {problems.size(limit)}"
        )


def _route(routes: list[RouteContext], scope: Scope) -> tuple[RouteContext, Scope] | None:
    allowed: list[str] = []
    for context in routes:
        match, child = context.matches(scope)
        if match == Match.FULL:
            return context, child
        if match == Match.PARTIAL:
            allowed += sorted(context.methods or ())
    if allowed:
        allow = list(dict.fromkeys(allowed))
        raise MethodNotAllowed(
            f"{scope['method']} is not allowed on {scope['path']}; allowed: {', '.join(allow)}",
            allow=allow,
        )
    return None
