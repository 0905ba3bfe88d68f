"""Tokens and roles. Only a token's sha256 is stored; the plain token is shown once.

Lookup is by hash, so the stored value an attacker could time against is a digest of their
own guess; roles are checked per route through `require(role)`. A token belongs to a
principal (core/access.py), whose role and grants (core/grants.py) it carries; a revoked or expired token, or one of a
removed principal, is refused with 401 saying which, and no more.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from fastapi import Request

from laneway.api.edge import guarded
from laneway.core import access, grants
from laneway.core.grants import Grant
from laneway.core.types import Role
from laneway.errors import Unauthorized, Unavailable
from laneway.store.repository import Store


@dataclass(frozen=True)
class Principal:
    """The caller of a request: the principal its token belongs to."""

    token_id: str
    name: str
    role: Role
    principal_id: str
    """The principal's own id: its name may be given to another once it is removed."""
    grants: tuple[Grant, ...] = ()
    """Its roles on environments or kinds (core/grants.py), read with its token."""

    def can(self, role: Role) -> bool:
        """Whether its own (global) role includes `role`; api/roles.py adds the grants."""
        return self.role.includes(role)

    def role_for(self, app: str, environment: str, kind: str | None) -> Role:
        return grants.role_for(self.role, self.grants, app=app, environment=environment, kind=kind)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "lw_" + secrets.token_urlsafe(32)


def ensure_admin_token(store: Store, client_config: Path, api_url: str) -> str | None:
    """On first start, make an admin token and write it to the client config (0600)."""
    if store.count_tokens() > 0:
        return None
    token = new_token()
    # the file first: a crash between the two leaves no stored token, so the next start
    # simply makes a new one, never a token that nobody holds
    try:
        write_client_config(client_config, url=api_url, token=token)
    except OSError as exc:
        raise Unavailable(
            f"cannot write the client config {client_config}: {exc.strerror}"
        ) from None
    store.add_token(name="admin", token_hash=hash_token(token), role=Role.ADMIN)
    return token


def write_client_config(path: Path, *, url: str, token: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"url": url, "token": token}, f)
    os.replace(tmp, path)


def authenticate(store: Store, authorization: str | None) -> Principal:
    if not authorization:
        raise Unauthorized("missing token: send `Authorization: Bearer <token>`")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("malformed Authorization header: expected `Bearer <token>`")
    found = store.credential(hash_token(token.strip()))
    if found is None:
        raise Unauthorized("unknown token")
    now = datetime.now(UTC)
    refused = access.refusal(found, now=now)
    if refused is not None:
        raise Unauthorized(refused)
    if access.touch_due(found.token.last_used_at, now=now):
        store.touch_token(found.token.id, now=now)
    held = store.grants_of_principal(found.principal.id, found.principal.name)
    return Principal(
        found.token.id, found.principal.name, found.principal.role, found.principal.id, tuple(held)
    )


async def caller(request: Request) -> Principal:
    """The request's principal, from its `Authorization` header."""
    store = cast(Store, request.app.state.store)  # starlette's State holds Any
    authorization = request.headers.get("authorization")
    return await asyncio.to_thread(authenticate, store, authorization)


def require(role: Role) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency: the caller, whose own role must include `role` (for routes that
    touch no environment; api/roles.py has the checks of those that do). The API's edge
    checks it from the headers, before the request's body is read (api/edge.py)."""

    async def check(request: Request) -> Principal:
        principal = await caller(request)
        if not principal.can(role):
            raise grants.refuse(principal.name, principal.role, role, where=None)
        return principal

    return guarded(check)
