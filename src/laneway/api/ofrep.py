"""Flag evaluation for apps: OFREP, and the flag set as flagd JSON for flagd's HTTP sync.

    POST /ofrep/v1/evaluate/flags/{key}   one flag (OFREP)
    POST /ofrep/v1/evaluate/flags         every flag, with an ETag; If-None-Match → 304
    GET  /flagd/v1/flags.json             the flagd document, with an ETag; If-None-Match → 304

The caller is an environment's client key (`Authorization: Bearer <key>`, or `X-API-Key`,
which OFREP providers also send), and the key alone says which environment's flags are
answered: no key can address another environment. laneway's API tokens are refused here
(403) whatever their role, since they name no environment. The bodies are
`laneway.flags.ofrep`'s. These routes are OFREP's and flagd's protocols, not laneway's API,
so they are left out of laneway's OpenAPI document (OFREP publishes its own).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from laneway.api import flag_service
from laneway.api.auth import hash_token
from laneway.api.edge import guarded
from laneway.errors import Forbidden, Unauthorized
from laneway.flags import evaluate, evaluate_all, export_flag_set, limits, ofrep
from laneway.flags.keys import looks_like_client_key
from laneway.flags.types import FlagSet

router = APIRouter(include_in_schema=False)

HINT = "`laneway flags key --env ENV` prints an environment's client key"


def _presented_key(request: Request) -> str:
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized(
                "malformed Authorization header: expected `Bearer <client key>`", hint=HINT
            )
        return token.strip()
    api_key = (request.headers.get("x-api-key") or "").strip()
    if not api_key:
        raise Unauthorized(
            "missing client key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
            hint=HINT,
        )
    return api_key


async def _flag_set(request: Request) -> FlagSet:
    """The flag set of the environment the request's client key was made for."""
    service = flag_service.get(request.app)
    key = _presented_key(request)
    environment_id = service.environment_of(key)
    if environment_id is None:
        if not looks_like_client_key(key):
            store = request.app.state.store
            if await asyncio.to_thread(store.token_by_hash, hash_token(key)) is not None:
                raise Forbidden(
                    "an API token cannot evaluate flags: this takes an environment's client key",
                    hint=HINT,
                )
        raise Unauthorized("unknown client key", hint=HINT)
    flag_set = service.cached(environment_id)
    if flag_set is None:
        flag_set = await asyncio.to_thread(service.load, environment_id)
    if flag_set is None:
        raise Unauthorized("the environment of this client key no longer exists")
    return flag_set


client_flag_set = Depends(guarded(_flag_set))
"""The flag set of the request's client key, checked before the body is read."""


async def _context(request: Request, key: str | None = None) -> dict[str, Any] | JSONResponse:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw.strip() else None
    except (UnicodeDecodeError, ValueError) as exc:
        status, answer = ofrep.invalid_context(f"request body: not JSON: {exc}", key)
        return JSONResponse(answer, status_code=status)
    except RecursionError:  # json's own limit, far past the context's
        message = f"context: nested deeper than the limit of {limits.MAX_DEPTH} levels"
        status, answer = ofrep.invalid_context(message, key)
        return JSONResponse(answer, status_code=status)
    try:
        return ofrep.read_context(body)
    except ofrep.InvalidContext as exc:
        status, answer = ofrep.invalid_context(exc.message, key)
        return JSONResponse(answer, status_code=status)


def _now(request: Request) -> float:
    return float(request.app.state.ctx.clock())


@router.post("/ofrep/v1/evaluate/flags/{key}")
async def evaluate_flag(
    key: str, request: Request, flag_set: FlagSet = client_flag_set
) -> Response:
    context = await _context(request, key)
    if isinstance(context, JSONResponse):
        return context
    status, body = ofrep.evaluation(key, evaluate(flag_set, key, context, now=_now(request)))
    return JSONResponse(body, status_code=status)


@router.post("/ofrep/v1/evaluate/flags")
async def evaluate_flags(request: Request, flag_set: FlagSet = client_flag_set) -> Response:
    context = await _context(request)
    if isinstance(context, JSONResponse):
        return context
    now = _now(request)
    etag = ofrep.etag(flag_set, context, now=now)
    if ofrep.not_modified(request.headers.get("if-none-match"), etag):
        return Response(status_code=ofrep.NOT_MODIFIED, headers={"ETag": etag})
    body = ofrep.bulk_evaluation(flag_set, evaluate_all(flag_set, context, now=now))
    return JSONResponse(body, headers={"ETag": etag})


@router.get("/flagd/v1/flags.json")
async def flagd_document(request: Request, flag_set: FlagSet = client_flag_set) -> Response:
    """The environment's flag set as flagd reads it (flagd's HTTP sync: `bearerToken` or
    `authHeader`, polling with If-None-Match)."""
    etag = f'"{flag_set.digest[:32]}"'
    if ofrep.not_modified(request.headers.get("if-none-match"), etag):
        return Response(status_code=ofrep.NOT_MODIFIED, headers={"ETag": etag})
    content = json.dumps(export_flag_set(flag_set), ensure_ascii=False).encode()
    return Response(content, media_type="application/json", headers={"ETag": etag})
