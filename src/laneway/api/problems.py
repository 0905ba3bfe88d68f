"""Errors as RFC 9457 problem+json: the same text the CLI prints, never a traceback."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.requests import ClientDisconnect

from laneway.core import access
from laneway.errors import LanewayError, MethodNotAllowed
from laneway.spec import names

ABSOLUTE_PATH = "^/"
PATTERNS = {
    names.DNS_LABEL: names.LABEL_RULE,
    names.BUILD_ID: names.BUILD_RULE,
    ABSOLUTE_PATH: "an absolute path",
    access.NAME: access.NAME_RULE,
}
"""What each pattern of a request's fields means, in words (never the pattern itself)."""

log = logging.getLogger("laneway.api")


def problem(
    status: int,
    title: str,
    detail: str,
    hint: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if hint:
        body["hint"] = hint
    return JSONResponse(
        body, status_code=status, media_type="application/problem+json", headers=headers
    )


def of(exc: LanewayError) -> JSONResponse:
    """The problem+json answer to `exc`, with the headers its status calls for."""
    headers = {}
    if isinstance(exc, MethodNotAllowed):
        headers["Allow"] = ", ".join(exc.allow)
    if exc.status_code == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return problem(exc.status_code, exc.title, exc.message, exc.hint, headers)


SECRET_FIELDS = frozenset({"set"})
"""Body fields whose values are config values (`PATCH …/config`): a bad one is named, never
echoed back."""


def install(app: FastAPI) -> None:
    @app.exception_handler(LanewayError)
    async def _laneway(_: Request, exc: LanewayError) -> JSONResponse:
        return of(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        lines = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"] if p != "body")
            if SECRET_FIELDS & {str(p) for p in error["loc"]}:
                error = {**error, "input": None}  # a config value may be a secret: not echoed
            lines.append(f"{where}: {_plain(error)}")
        return problem(400, "invalid input", "; ".join(lines))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        title = HTTPStatus(exc.status_code).phrase.lower()
        detail = str(exc.detail)
        limit = request.scope.get(MAX_BODY_SIZE_SCOPE_KEY)
        if exc.status_code == 413 and limit is not None:
            detail = f"the request body is over this route's limit of {size(limit)}"
        return problem(exc.status_code, title, detail, headers=exc.headers)

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, _: ClientDisconnect) -> Response:
        """The client went away before its body arrived: nobody to answer, nothing wrong."""
        log.debug("client went away during %s %s", request.method, request.url.path)
        return Response(status_code=400)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "internal error", "the server failed; see its log")


def size(limit: int) -> str:
    mib = limit / (1024 * 1024)
    return f"{limit} bytes ({mib:g} MiB)" if mib >= 1 else f"{limit} bytes"


def _plain(error: Any) -> str:
    got = error.get("input")
    if error["type"] == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern")
        return f"expected {PATTERNS.get(pattern, f'text matching {pattern}')}, got {got!r}"
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "missing":
        return "required"
    return (
        f"{error['msg']}, got {got!r}"
        if got is not None and not isinstance(got, dict)
        else str(error["msg"])
    )
