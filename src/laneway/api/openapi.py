"""The OpenAPI document, completed with what every route may answer besides its success.

FastAPI documents a route's success and a 422 of its own shape; laneway answers every error
as problem+json (api/problems.py), with the statuses below, and checks an API token on every
route (api/edge.py). `complete` adds those to each operation, so that the document is true
for the routes added later too, with nothing to repeat in their decorators.
"""

from __future__ import annotations

from typing import Any, cast

from fastapi import APIRouter, Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.routing import APIRoute, RouteContext

from laneway.api import edge, problems
from laneway.api.auth import Principal, require
from laneway.core.types import Role

PROBLEM = "#/components/schemas/Problem"

ANSWERS = {
    400: "Invalid input: a bad path, query or body (each problem named with its field).",
    401: "No token, a malformed `Authorization` header, or an unknown token.",
    403: "The caller's role, on the environment this touches, may not do this (the detail names the role needed, and where).",
    404: "The app, environment, build, release or flag does not exist.",
    409: "It exists already, or another change is under way.",
    413: "The request body is over the route's limit ({limit}).",
    422: "Understood but not done: the build failed, or its artifact is unsafe.",
    503: "A dependency (PostgreSQL, git) is unreachable; try again.",
}

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An error, as RFC 9457 problem details.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string", "description": "The kind of error, e.g. `not found`."},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "What is wrong, and where."},
        "hint": {"type": "string", "description": "What to do about it, if anything."},
    },
    "required": ["type", "title", "status", "detail"],
}


def install(app: FastAPI, *, serve: bool) -> None:
    """Complete the app's document; with `serve`, publish it (and Swagger UI on `/docs`) to
    callers with a token. The app is made without FastAPI's own, unchecked, routes."""
    app.openapi = lambda: document(app)  # type: ignore[method-assign]
    if serve:
        app.include_router(_router(app), max_body_size=edge.BODY_LIMIT)


def _router(app: FastAPI) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    viewer = Depends(require(Role.VIEWER))

    @router.get("/openapi.json")
    def openapi_json(_: Principal = viewer) -> JSONResponse:
        return JSONResponse(app.openapi())

    @router.get("/docs")
    def docs(_: Principal = viewer) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} API")

    return router


def document(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, made once."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        complete(schema, edge.api_routes(app))
        app.openapi_schema = schema
    return app.openapi_schema


def complete(schema: dict[str, Any], routes: list[RouteContext]) -> None:
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    components["securitySchemes"] = {
        "token": {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token: `laneway token create`, or the admin token in "
            "the client config the server wrote on its first start.",
        }
    }
    for route in routes:
        if not route.include_in_schema:
            continue
        limit = edge.limit_of(route)
        for method in route.methods or ():
            operation = schema["paths"].get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            for status, text in ANSWERS.items():
                responses[str(status)] = {
                    "description": text.format(limit=problems.size(limit)),
                    "content": {"application/problem+json": {"schema": {"$ref": PROBLEM}}},
                }
            if edge.checks_of(cast(APIRoute, route.original_route)):
                operation["security"] = [{"token": []}]
