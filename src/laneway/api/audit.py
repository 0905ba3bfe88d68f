"""Recording requests in the audit log: every change under /api/v1 (POST, PUT, PATCH, DELETE)
and every refused request (401, 403: failed logins included), with who, what, when, from
where and the outcome.

`Audit` is a pure ASGI middleware outside the edge (which answers 401/403 itself, before any
route runs). It records once the answer's status is known and before the answer goes out,
so a client that has its answer finds the record. The action is the method and the route's
template (`POST /apps/{app}/environments/{name}/canary`), the app and environment come from
the path; a route may add names with `note` (a promotion's target). A request's body is
never recorded: it may hold secrets. A failed write to the log is logged, and the answer
goes out all the same.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from fastapi import Request
from fastapi.routing import RouteContext
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from laneway.api import edge
from laneway.api.auth import Principal, authenticate
from laneway.core.audit import AuditRecord, outcome_of
from laneway.errors import LanewayError
from laneway.store.audit import AuditLog
from laneway.store.repository import Store

log = logging.getLogger("laneway.audit")

CHANGES = {"POST", "PUT", "PATCH", "DELETE"}
REFUSED = {401, 403}
API = "/api/v1"
NOTE = "laneway.audit"
READ = "read"
"""Set among the notes by `record_read`: this request is recorded though it changes nothing.
Kept inside the notes' dict, which the middleware puts in the scope first: the routes see
a copy of the scope, whose nested dicts are the same objects."""
CHECKED = "laneway.checked"
"""Where the edge keeps what each guard found (api/edge.py)."""
NOTE_LIMIT = 500
"""Characters kept of each name a route notes."""
REASON_LIMIT = 300
"""Characters of a refusal's reason kept (it names a role or says the token is unknown)."""


def record_read(request: Request, **detail: str) -> None:
    """Record this read too (a secret's value revealed), with `detail` (names, never the
    values): reads are otherwise not recorded."""
    request.scope.setdefault(NOTE, {})[READ] = True
    note(request, **detail)


def note(request: Request, *, environment: str | None = None, **detail: str) -> None:
    """Names for the request's audit record that its path does not hold (a promotion's
    target): never a value that may be secret."""
    noted: dict[str, Any] = request.scope.setdefault(NOTE, {})
    if environment is not None:
        noted["environment"] = environment
    noted.update({key: value[:NOTE_LIMIT] for key, value in detail.items()})


class Audit:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.routes: list[RouteContext] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        changes = scope["method"] in CHANGES and scope["path"].startswith(API + "/")
        noted: dict[str, Any] = scope.setdefault(NOTE, {})
        recorded = False
        held: list[Message] = []

        async def sending(message: Message) -> None:
            nonlocal recorded
            if message["type"] == "http.response.start" and not recorded:
                status = int(message["status"])
                if status in REFUSED:
                    held.append(message)  # the reason is in the body, which is small
                    return
                if changes or noted.get(READ):
                    recorded = True
                    await self._record(scope, status, None)
            elif held and message["type"] == "http.response.body":
                held.append(message)
                if message.get("more_body", False):
                    return
                recorded = True
                await self._record(scope, int(held[0]["status"]), _reason(held[1:]))
                for kept in held:
                    await send(kept)
                held.clear()
                return
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            if changes and not recorded:
                await self._record(scope, 500, None)
            raise

    async def _record(self, scope: Scope, status: int, reason: str | None) -> None:
        state = scope["app"].state
        audit_log: AuditLog | None = getattr(state, "audit", None)
        if audit_log is None:
            return
        try:
            entry = await self._entry(scope, state.store, status, reason)
            if entry is None:
                return
            await asyncio.to_thread(audit_log.append, entry)
        except LanewayError as exc:
            log.error("audit: the request %s %s was not recorded: %s", *_line(scope), exc)
        except Exception as exc:  # the answer goes out: an unforeseen error is logged
            name = exc.__class__.__name__
            log.error("audit: the request %s %s was not recorded: %s", *_line(scope), name)

    async def _entry(
        self, scope: Scope, store: Store, status: int, reason: str | None
    ) -> AuditRecord | None:
        """The record of the request; None for a change to a path no route has (a 404 or
        405 that changed nothing: recording those would let anyone fill the log)."""
        if self.routes is None:
            self.routes = edge.api_routes(scope["app"])
        found = _route(self.routes, scope)
        if found is None and status not in REFUSED:
            return None
        template, params = found or (str(scope["path"]).removeprefix(API), {})
        principal = await _principal(scope, store)
        noted: dict[str, Any] = dict(scope.get(NOTE, {}))
        noted.pop(READ, None)
        detail: dict[str, Any] = {"path": scope["path"]}
        if reason is not None:
            detail["reason"] = reason
        environment = noted.pop("environment", None) or (
            params.get("name") if "/environments/{name}" in template else None
        )
        detail.update(noted)
        client = scope.get("client")
        return AuditRecord(
            seq=0,
            time="",
            principal=None if principal is None else principal.name,
            token_id=None if principal is None else principal.token_id,
            action=f"{scope['method']} {template}",
            app=params.get("app"),
            environment=environment,
            outcome=outcome_of(status),
            status=status,
            source=None if not client else str(client[0]),
            detail=detail,
        )


def _route(routes: list[RouteContext], scope: Scope) -> tuple[str, dict[str, str]] | None:
    """The route's template (less /api/v1) and its path parameters."""
    for context in routes:
        match, child = context.matches(scope)
        if match == Match.FULL:
            template = str(context.path_format or context.path or scope["path"])
            params = {k: str(v) for k, v in child.get("path_params", {}).items()}
            return template.removeprefix(API), params
    return None


async def _principal(scope: Scope, store: Store) -> Principal | None:
    """Who the edge found; for a refusal made before it kept them (a role too low), the
    token looked up again. None when the token is missing or unknown."""
    for found in scope.get(CHECKED, {}).values():
        if isinstance(found, Principal):
            return found
    headers = dict(scope.get("headers", []))
    authorization = headers.get(b"authorization")
    if not authorization:
        return None
    try:
        return await asyncio.to_thread(authenticate, store, authorization.decode("latin-1"))
    except LanewayError:
        return None


def _reason(body: list[Message]) -> str | None:
    """The `detail` of a problem+json answer."""
    text = b"".join(message.get("body", b"") for message in body)
    try:
        problem = json.loads(text)
    except ValueError:
        return None
    detail = problem.get("detail") if isinstance(problem, dict) else None
    return str(detail)[:REASON_LIMIT] if detail is not None else None


def _line(scope: Scope) -> tuple[str, str]:
    return str(scope["method"]), str(scope["path"])
