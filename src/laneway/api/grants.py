"""Grants (role bindings), managed by admins (core/grants.py has the rules).

    POST   /access/principals/{name}/grants   a role on `app`+`environment`, or on `kind`
                                             (of `app`, or of every app without one)
    GET    /access/grants[?principal=NAME]    every grant of active principals
    DELETE /access/grants/{grant_id}          revoke one: from the caller's next request on

Every route needs the admin role, checked before the body is read.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from laneway.api.access import PrincipalName
from laneway.api.auth import Principal, require
from laneway.core import access
from laneway.core.grants import Grant
from laneway.core.types import Kind, Role
from laneway.spec.model import DNS_LABEL
from laneway.store.repository import Store

log = logging.getLogger("laneway.access")
router = APIRouter(prefix="/api/v1/access")
admin = Depends(require(Role.ADMIN))

GrantId = Annotated[
    str,
    Path(pattern=r"^[0-9a-f]{1,16}$", description="A grant's id, as `GET /access/grants` shows."),
]


class GrantIn(BaseModel):
    """One environment with its app, or one kind (of `app`, or of every app): core/grants.py
    `check_grant` refuses the rest, saying so."""

    model_config = ConfigDict(extra="forbid")
    role: Literal["developer", "deployer"] = Field(
        description="What a grant gives: viewer is everyone's already, admin is global only."
    )
    app: StrictStr | None = Field(None, pattern=DNS_LABEL, description="Absent: every app.")
    environment: StrictStr | None = Field(None, pattern=DNS_LABEL, description="One of its.")
    kind: Kind | None = Field(None, description="Every environment of this kind.")


class GrantOut(BaseModel):
    id: str
    principal: str
    role: str
    app: str | None
    environment: str | None
    kind: str | None
    scope: str
    """`shop/staging`, `shop/kind=production`, or `*/kind=production` (every app)."""
    created_at: datetime

    @classmethod
    def of(cls, g: Grant) -> GrantOut:
        return cls(
            id=g.id,
            principal=g.principal,
            role=str(g.role),
            app=g.app,
            environment=g.environment,
            kind=None if g.kind is None else str(g.kind),
            scope=g.scope,
            created_at=g.created_at,
        )


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


@router.post("/principals/{name}/grants", response_model=GrantOut, status_code=201)
async def grant(
    name: PrincipalName, body: GrantIn, request: Request, caller: Principal = admin
) -> GrantOut:
    """Give the principal `role` on one environment or one kind; the same scope again
    replaces the role it had there."""
    found = await asyncio.to_thread(
        _store(request).add_grant,
        name,
        Role(body.role),
        app=body.app,
        environment=body.environment,
        kind=None if body.kind is None else str(body.kind),
    )
    log.info("%s granted %s %s on %s", caller.name, name, found.role, found.scope)
    return GrantOut.of(found)


@router.get("/grants", response_model=list[GrantOut])
async def list_grants(
    request: Request,
    principal: str | None = Query(None, pattern=access.NAME, description="Of this one only."),
    _: Principal = admin,
) -> list[GrantOut]:
    found = await asyncio.to_thread(_store(request).grants, principal)
    return [GrantOut.of(g) for g in found]


@router.delete("/grants/{grant_id}", response_model=GrantOut)
async def revoke_grant(grant_id: GrantId, request: Request, caller: Principal = admin) -> GrantOut:
    """Take the grant back: its principal's next request is checked without it."""
    found = await asyncio.to_thread(_store(request).remove_grant, grant_id)
    log.info(
        "%s revoked the grant of %s %s on %s", caller.name, found.principal, found.role, found.scope
    )
    return GrantOut.of(found)
