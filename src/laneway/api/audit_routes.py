"""The audit log's routes, for admins: list with filters, verify, export as JSON lines."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from laneway.api.auth import Principal, require
from laneway.controllers.context import Context
from laneway.core import since as since_parser
from laneway.core.types import Role
from laneway.errors import Unavailable
from laneway.store.audit import AuditLog

router = APIRouter(prefix="/api/v1")
admin = Depends(require(Role.ADMIN))

MAX_LIMIT = 1000


class AuditRecordOut(BaseModel):
    seq: int
    time: str
    principal: str | None
    token_id: str | None
    action: str
    app: str | None
    environment: str | None
    outcome: str
    status: int
    source: str | None
    detail: dict[str, Any]
    previous: str
    hash: str


class VerificationOut(BaseModel):
    ok: bool
    records: int
    """How many records were read."""
    message: str
    bad: int | None
    """The seq of the first bad record (a missing one too), when not ok."""


def _log(request: Request) -> AuditLog:
    audit_log: AuditLog | None = getattr(request.app.state, "audit", None)
    if audit_log is None:
        raise Unavailable("this server keeps no audit log")
    return audit_log


@router.get("/audit", response_model=list[AuditRecordOut])
async def audit_list(
    request: Request,
    app: str | None = Query(None, max_length=64, description="Only records of this app."),
    environment: str | None = Query(
        None, max_length=64, description="Only records of this environment."
    ),
    principal: str | None = Query(None, max_length=64, description="Only this token's name."),
    action: str | None = Query(
        None, max_length=200, description="Only actions containing this (`canary`, `DELETE`)."
    ),
    since: str | None = Query(
        None,
        max_length=since_parser.MAX_TEXT,
        description="Records since then: a duration (30s, 10m, 2h, 1d) back from now, "
        "or an ISO 8601 timestamp (UTC unless it has an offset)",
    ),
    limit: int = Query(100, ge=1, le=MAX_LIMIT, description="The newest this many."),
    _: Principal = admin,
) -> list[AuditRecordOut]:
    """The newest audit records that match, oldest first."""
    audit_log = _log(request)
    ctx: Context = request.app.state.ctx
    start = None
    if since is not None:
        moment = datetime.fromtimestamp(since_parser.parse(since, now=ctx.clock()), UTC)
        start = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    records = await asyncio.to_thread(
        audit_log.records,
        app=app,
        environment=environment,
        principal=principal,
        action=action,
        since=start,
        limit=limit,
    )
    return [AuditRecordOut(**record.to_json()) for record in records]


@router.get("/audit/verify", response_model=VerificationOut)
async def audit_verify(request: Request, _: Principal = admin) -> VerificationOut:
    """Every record held to the hash chain and the signed checkpoint: ok, or the first bad
    record (edited, missing, out of order, rewritten) named in words."""
    verification = await asyncio.to_thread(_log(request).verify)
    return VerificationOut(**verification.to_json())


@router.get(
    "/audit/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/jsonl": {"schema": {"type": "string"}}}}},
)
async def audit_export(request: Request, _: Principal = admin) -> StreamingResponse:
    """Every record, oldest first, one JSON object a line (as `laneway audit list --json`
    shows each), with its hash and the hash before it."""
    audit_log = _log(request)

    async def lines() -> AsyncIterator[bytes]:
        after = 0
        while batch := await asyncio.to_thread(audit_log.page, after=after):
            yield b"".join(
                json.dumps(record.to_json(), ensure_ascii=False).encode() + b"\n"
                for record in batch
            )
            after = batch[-1].seq

    return StreamingResponse(lines(), media_type="application/jsonl")
