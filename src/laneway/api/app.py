"""The control plane's ASGI app: routes, auth, problem+json errors, and the controllers' lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from laneway import __version__
from laneway.api import (
    access,
    approvals,
    audit,
    audit_routes,
    canary,
    config_access,
    edge,
    flags,
    grants,
    metrics,
    ofrep,
    openapi,
    operations,
    pipeline,
    problems,
    routes,
    secrets,
)
from laneway.api.flag_service import FlagService
from laneway.controllers.context import Context
from laneway.controllers.manager import Manager
from laneway.store.audit import AuditLog


def create_app(
    ctx: Context,
    *,
    flag_service: FlagService,
    audit_log: AuditLog | None = None,
    run_controllers: bool = True,
) -> FastAPI:
    """The API over `ctx`; `flag_service` serves flag sets and `audit_log` records changes
    and refusals (the composition root makes both)."""
    manager = Manager(ctx)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = None
        if run_controllers:
            await manager.prepare()
            task = asyncio.create_task(manager.run())
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = FastAPI(
        title="laneway",
        version=__version__,
        description="Environments per branch, staging and production on one machine.",
        lifespan=lifespan,
        # served by api/openapi.py to callers with a token, or not at all
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.ctx = ctx
    app.state.store = ctx.store
    app.state.manager = manager
    app.state.flags = flag_service
    app.state.audit = audit_log
    problems.install(app)
    openapi.install(app, serve=ctx.settings.api_docs)
    # the last added is the outermost: the audit sees the answers the edge gives itself
    app.add_middleware(edge.Edge)
    app.add_middleware(audit.Audit)
    for router in (
        routes.router,
        pipeline.router,
        canary.router,
        operations.router,
        config_access.router,
        flags.router,
        ofrep.router,
        metrics.router,
        secrets.router,
        access.router,
        grants.router,
        approvals.router,
        audit_routes.router,
    ):
        # the cap applies inside the edge, which answers 401 before it (api/edge.py)
        app.include_router(router, max_body_size=edge.BODY_LIMIT)
    return app
