"""Principals and tokens, managed by admins (core/access.py has the rules).

    POST   /access/principals                   a user or service, with its first token
    GET    /access/principals                   every principal (never a token or a hash)
    PATCH  /access/principals/{name}            its role
    DELETE /access/principals/{name}            remove (disable) it: all its tokens refused
    POST   /access/principals/{name}/tokens     another token for it
    GET    /access/principals/{name}/tokens     its tokens: id, dates, state (never the token)
    DELETE /access/tokens/{token_id}            revoke a token

Grants, a principal's role on an environment or kind, are api/grants.py's.

A new token is in the answer that makes it and nowhere else, ever (`Cache-Control: no-store`).
Every route needs the admin role, checked before the body is read. Each change is logged
(who, what, which token id; never a token) until the audit log records it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from laneway.api.auth import Principal, hash_token, new_token, require
from laneway.api.schemas import JSON_NUMBER
from laneway.core import access
from laneway.core.access import PrincipalKind, PrincipalRecord, TokenRecord
from laneway.core.grants import Grant
from laneway.core.types import Role
from laneway.store.repository import Store

log = logging.getLogger("laneway.access")
router = APIRouter(prefix="/api/v1/access")
admin = Depends(require(Role.ADMIN))

PrincipalName = Annotated[
    str,
    Path(pattern=access.NAME, description="A principal's name, e.g. ci-deploy."),
]
TokenId = Annotated[
    str,
    Path(pattern=r"^[0-9a-f]{1,16}$", description="A token's id, as its principal's list shows."),
]
NOT_SHOWN_AGAIN = "store this token now: it is not shown again"
ExpiresIn = Annotated[
    int,
    Field(
        ge=access.MIN_EXPIRY_SECONDS,
        le=access.MAX_EXPIRY_SECONDS,
        description="Seconds the token lives, a minute to a year; absent: until revoked.",
    ),
    JSON_NUMBER,
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PrincipalIn(_Body):
    name: StrictStr = Field(pattern=access.NAME, description="e.g. alice or ci-deploy.")
    role: Role
    kind: PrincipalKind = PrincipalKind.USER
    expires_in: ExpiresIn | None = None


class PrincipalPatch(_Body):
    role: Role


class TokenIn(_Body):
    expires_in: ExpiresIn | None = None


class PrincipalOut(BaseModel):
    name: str
    kind: str
    role: str
    created_at: datetime
    removed_at: datetime | None
    tokens: int
    """Its tokens that are neither revoked nor expired."""
    grants: list[str] = []
    """Its grants as `ROLE on SCOPE` (`deployer on shop/staging`), in a list of principals."""

    @classmethod
    def of(cls, p: PrincipalRecord, grants: list[Grant] | None = None) -> PrincipalOut:
        return cls(
            name=p.name,
            kind=str(p.kind),
            role=str(p.role),
            created_at=p.created_at,
            removed_at=p.removed_at,
            tokens=p.tokens,
            grants=[f"{g.role} on {g.scope}" for g in grants or []],
        )


class TokenOut(BaseModel):
    id: str
    principal: str
    state: str
    """active, expired or revoked."""
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    """To the minute."""
    revoked_at: datetime | None

    @classmethod
    def of(cls, t: TokenRecord, *, now: datetime) -> TokenOut:
        return cls(
            id=t.id,
            principal=t.principal,
            state=str(t.state(now)),
            created_at=t.created_at,
            expires_at=t.expires_at,
            last_used_at=t.last_used_at,
            revoked_at=t.revoked_at,
        )


class NewTokenOut(TokenOut):
    token: str
    """The token itself: in this answer only."""
    warning: str = NOT_SHOWN_AGAIN


class CreatedOut(BaseModel):
    principal: PrincipalOut
    token: NewTokenOut


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _now() -> datetime:
    return datetime.now(UTC)


def _new(record: TokenRecord, token: str, response: Response) -> NewTokenOut:
    response.headers["Cache-Control"] = "no-store"
    return NewTokenOut(**TokenOut.of(record, now=_now()).model_dump(), token=token)


@router.post("/principals", response_model=CreatedOut, status_code=201)
async def create_principal(
    body: PrincipalIn, request: Request, response: Response, caller: Principal = admin
) -> CreatedOut:
    """A user or service principal with its first token, which this answer alone shows."""
    expires_at = access.expires_at(body.expires_in, now=_now())
    token = new_token()
    principal, record = await asyncio.to_thread(
        _store(request).create_principal,
        body.name,
        kind=body.kind,
        role=body.role,
        token_hash=hash_token(token),
        expires_at=expires_at,
    )
    log.info(
        "%s added %s %s (%s), token %s", caller.name, body.kind, body.name, body.role, record.id
    )
    return CreatedOut(principal=PrincipalOut.of(principal), token=_new(record, token, response))


@router.get("/principals", response_model=list[PrincipalOut])
async def list_principals(
    request: Request,
    removed: bool = Query(False, description="The removed principals too."),
    _: Principal = admin,
) -> list[PrincipalOut]:
    found = await asyncio.to_thread(_store(request).principals, removed=removed, now=_now())
    held: dict[str, list[Grant]] = {}
    for g in await asyncio.to_thread(_store(request).grants):
        held.setdefault(g.principal, []).append(g)
    return [PrincipalOut.of(p, held.get(p.name) if p.removed_at is None else None) for p in found]


@router.patch("/principals/{name}", response_model=PrincipalOut)
async def update_principal(
    name: PrincipalName, body: PrincipalPatch, request: Request, caller: Principal = admin
) -> PrincipalOut:
    """Change its role; the last admin keeps the admin role (409)."""
    found = await asyncio.to_thread(_store(request).set_role, name, body.role)
    log.info("%s gave %s the role %s", caller.name, name, body.role)
    return PrincipalOut.of(found)


@router.delete("/principals/{name}", response_model=PrincipalOut)
async def remove_principal(
    name: PrincipalName, request: Request, caller: Principal = admin
) -> PrincipalOut:
    """Disable it: every token of it is refused from the next request on. The last admin
    cannot be removed (409)."""
    found = await asyncio.to_thread(_store(request).remove_principal, name)
    log.info("%s removed %s and revoked its tokens", caller.name, name)
    return PrincipalOut.of(found)


@router.post("/principals/{name}/tokens", response_model=NewTokenOut, status_code=201)
async def create_token(
    name: PrincipalName,
    request: Request,
    response: Response,
    body: TokenIn | None = None,
    caller: Principal = admin,
) -> NewTokenOut:
    """Another token for the principal, which this answer alone shows."""
    expires_at = access.expires_at(body.expires_in if body else None, now=_now())
    token = new_token()
    record = await asyncio.to_thread(
        _store(request).add_principal_token,
        name,
        token_hash=hash_token(token),
        expires_at=expires_at,
    )
    log.info("%s made token %s for %s", caller.name, record.id, name)
    return _new(record, token, response)


@router.get("/principals/{name}/tokens", response_model=list[TokenOut])
async def list_tokens(
    name: PrincipalName, request: Request, _: Principal = admin
) -> list[TokenOut]:
    """Its tokens, revoked and expired ones included, oldest first: never a token itself."""
    now = _now()
    return [
        TokenOut.of(t, now=now) for t in await asyncio.to_thread(_store(request).tokens_of, name)
    ]


@router.delete("/tokens/{token_id}", response_model=TokenOut)
async def revoke_token(token_id: TokenId, request: Request, caller: Principal = admin) -> TokenOut:
    """Revoke it: refused (401, `token revoked`) from its next request on."""
    record = await asyncio.to_thread(_store(request).revoke_token, token_id)
    log.info("%s revoked token %s of %s", caller.name, token_id, record.principal)
    return TokenOut.of(record, now=_now())
