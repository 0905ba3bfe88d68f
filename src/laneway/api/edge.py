"""The API's edge: every request is checked before its body is read, and its body is capped.

FastAPI reads and parses a body before it resolves a route's dependencies, so a check made
in a dependency comes after a 100 MB body was read. `Edge` is a pure ASGI middleware that,
before the app sees the request:

1. finds the route (a path whose methods do not include the request's: 405 with `Allow`);
2. runs the route's guard, the `check` of its `guarded(check)` dependency (an API token and
   role for laneway's API, a client key for OFREP), from the headers alone: 401/403;
3. caps the body at the route's limit (`body_limit(n)` in its decorator, else `BODY_LIMIT`):
   a `Content-Length` over it is refused at once, a chunked body after limit + 1 bytes: 413.

A route's dependency then returns what its guard found, so a check is made once per
request. A route without a guard reads no body (the tests hold every API route to one).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from laneway.api import problems
from laneway.errors import LanewayError, MethodNotAllowed, PayloadTooLarge

T = TypeVar("T")
Check = Callable[[Request], Awaitable[Any]]

MiB = 1024 * 1024
BODY_LIMIT = 1 * MiB
"""A route's body limit unless it names another: ample for every JSON body of the API."""

LIMIT_KEY = "x-body-limit"
_CHECKED = "laneway.checked"


def body_limit(limit: int) -> dict[str, Any]:
    """`openapi_extra` of a route whose bodies may be larger than `BODY_LIMIT`; the OpenAPI
    document shows it."""
    return {LIMIT_KEY: limit}


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


def limit_of(route: APIRoute) -> int:
    return int((route.openapi_extra or {}).get(LIMIT_KEY, BODY_LIMIT))


class Edge:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            route = _route(scope)
            if route is None:  # not found: the router answers, reading no body
                await self.app(scope, receive, send)
                return
            request = Request(scope)
            checked = scope.setdefault(_CHECKED, {})
            for check in checks_of(route):
                checked[check] = await check(request)
            receive = await _capped(scope, receive, limit_of(route))
        except LanewayError as exc:
            # the body stays unread: the server closes the connection after this answer
            await problems.of(exc)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _route(scope: Scope) -> APIRoute | None:
    allowed: list[str] = []
    for route in scope["app"].router.routes:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return route if isinstance(route, APIRoute) else None
        if match == Match.PARTIAL and isinstance(route, APIRoute):
            allowed += sorted(route.methods or ())
    if allowed:
        allow = list(dict.fromkeys(allowed))
        raise MethodNotAllowed(
            f"{scope['method']} is not allowed on {scope['path']}; allowed: {', '.join(allow)}",
            allow=allow,
        )
    return None


async def _capped(scope: Scope, receive: Receive, limit: int) -> Receive:
    """`receive` with the body read up to `limit` first (a body over it: PayloadTooLarge)."""
    headers = dict(scope["headers"])
    length = headers.get(b"content-length")
    chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
    if length is None and not chunked:
        return receive
    too_large = PayloadTooLarge(
        f"request body over this route's limit of {limit} bytes ({_size(limit)})"
    )
    if length is not None and length.isdigit() and int(length) > limit:
        raise too_large
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return _replay([], message, receive)  # the client went away
        parts.append(message.get("body", b""))
        size += len(parts[-1])
        if size > limit:
            raise too_large
        if not message.get("more_body", False):
            break
    body: Message = {"type": "http.request", "body": b"".join(parts), "more_body": False}
    return _replay([body], None, receive)


def _replay(messages: list[Message], last: Message | None, receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        if last is not None:
            return last
        return await receive()

    return replay


def _size(limit: int) -> str:
    return f"{limit / MiB:g} MiB" if limit >= MiB else f"{limit / 1024:g} KiB"
