"""API routes: apps, builds, environments, their events and logs.

Handlers validate, write desired state, wake the controller and return the new status; the
controllers act. Streams (build output, events) are server-sent events, written by
sse-starlette (which pings idle streams and stops a stream whose client went away); logs are
plain text.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import PlainTextResponse, StreamingResponse
from sse_starlette import EventSourceResponse, ServerSentEvent

from laneway.api import audit, holding, operations, preview_config, protection, roles
from laneway.api import logs as logfiles
from laneway.api.auth import Principal, require
from laneway.api.holding import PendingOut
from laneway.api.schemas import (
    AppIn,
    AppName,
    AppOut,
    BuildId,
    BuildIn,
    BuildOut,
    EnvironmentIn,
    EnvironmentName,
    EnvironmentOut,
    EventOut,
    ReleaseOut,
)
from laneway.builds import git
from laneway.controllers import builds, hidden
from laneway.controllers.context import Context
from laneway.controllers.manager import Manager
from laneway.core import grep as grep_patterns
from laneway.core import pipeline, routing
from laneway.core import since as since_parser
from laneway.core.approvals import Action
from laneway.core.redaction import Redactor
from laneway.core.types import BuildRecord, Desired, Environment, Event, EventType, Kind, Role
from laneway.errors import Conflict, InvalidInput, LanewayError, NotFound
from laneway.spec.names import DNS_LABEL

router = APIRouter(prefix="/api/v1")
SSE = "text/event-stream"
SSE_ANSWER = {
    "content": {
        SSE: {
            "schema": {
                "type": "object",
                "description": "One server-sent event; `data` is JSON.",
                "properties": {
                    "event": {"type": "string"},
                    "data": {"type": "string"},
                    "id": {"type": "string"},
                },
            }
        }
    }
}
STREAM_TIMEOUT = Query(
    3600.0,
    gt=0,
    le=86_400,
    description="With `follow`: seconds after which the server ends the stream (default an "
    "hour, at most a day); a client that wants more reconnects.",
)
viewer = Depends(require(Role.VIEWER))
changer = Depends(roles.changes_environment())
app_changer = Depends(roles.changes_app())


def _ctx(request: Request) -> Context:
    return cast(Context, request.app.state.ctx)  # starlette's State holds Any; app.py sets it


def _manager(request: Request) -> Manager:
    return cast(Manager, request.app.state.manager)


def _url(ctx: Context, environment: Environment) -> str:
    host = routing.hostname_for(environment.app, environment.name, domain=ctx.settings.domain)
    _, port = ctx.settings.router
    return f"http://{host}:{port}/"


def _out(ctx: Context, environment: Environment) -> EnvironmentOut:
    return EnvironmentOut.of(environment, url=_url(ctx, environment))


@router.get("/status")
def status(request: Request, _: Principal = viewer) -> dict[str, object]:
    ctx = _ctx(request)
    manager = _manager(request)
    host, port = ctx.settings.router
    return {
        "version": request.app.version,
        "router": {"address": f"{host}:{port}", "pid": manager.router.router_pid()},
        "environments": len(ctx.store.list_environments()),
    }


@router.get("/apps", response_model=list[AppOut])
def list_apps(request: Request, _: Principal = viewer) -> list[AppOut]:
    return [
        AppOut(name=a.name, repo=a.repo, created_at=a.created_at)
        for a in _ctx(request).store.list_apps()
    ]


@router.put("/apps/{app}", response_model=AppOut)
def register_app(
    app: AppName, body: AppIn, request: Request, principal: Principal = app_changer
) -> AppOut:
    """Register the app (every CLI command that builds does, again and again: a developer's
    right); pointing a registered app at another repository needs a deployer of it."""
    repo = Path(body.repo)
    if not repo.is_absolute():
        raise InvalidInput(f"repo: expected an absolute path, got {body.repo!r}")
    if not git.is_repo(repo):
        raise InvalidInput(f"repo: {body.repo} is not a git repository")
    ctx = _ctx(request)
    try:
        moved = ctx.store.get_app(app).repo != str(repo)
    except NotFound:
        moved = False
    if moved:
        roles.authorize_app(principal, app, Role.DEPLOYER)
    record = ctx.store.ensure_app(app, str(repo))
    return AppOut(name=record.name, repo=record.repo, created_at=record.created_at)


@router.get("/apps/{app}/environments", response_model=list[EnvironmentOut])
def list_environments(
    app: AppName, request: Request, _: Principal = viewer
) -> list[EnvironmentOut]:
    ctx = _ctx(request)
    ctx.store.get_app(app)
    return [_out(ctx, e) for e in ctx.store.list_environments(app)]


@router.post(
    "/apps/{app}/environments", response_model=EnvironmentOut | PendingOut, status_code=202
)
def create_environment(
    app: AppName, body: EnvironmentIn, request: Request, principal: Principal = app_changer
) -> EnvironmentOut | PendingOut:
    ref, build_id = checked_creation(request, app, body, principal)
    ctx = _ctx(request)
    kind = str(body.kind)
    needed = 0 if body.hotfix else protection.approvals_for(ctx, app, name=body.name, kind=kind)
    if needed and not any(e.name == body.name for e in ctx.store.list_environments(app)):
        params = {"kind": kind, "branch": body.branch, "ref": ref, "build_id": build_id}
        return holding.hold(
            request,
            body.name,
            principal,
            Action.CREATE,
            f"create {body.name} ({kind}) from {body.branch or ref or build_id}",
            params,
            needed,
            app=app,
        )
    return make_environment(request, app, body, principal, ref=ref, build_id=build_id)


def checked_creation(
    request: Request, app: str, body: EnvironmentIn, principal: Principal
) -> tuple[str | None, str | None]:
    """Every check of a new environment (names, the caller's role, a hotfix's role, its
    source, protection); the ref pinned to its commit and the build, to create it from."""
    audit.note(request, environment=body.name)
    if body.hotfix:
        audit.note(request, hotfix=body.reason or "")
    ctx = _ctx(request)
    ctx.store.get_app(app)
    pipeline.check_name_and_kind(body.name, str(body.kind))
    roles.authorize_change(ctx, principal, app=app, name=body.name, kind=str(body.kind))
    if body.hotfix:
        protection.check_hotfix_role(ctx, principal, app=app, name=body.name, kind=str(body.kind))
    sources = [s for s in (body.branch, body.ref, body.build) if s]
    if len(sources) != 1:
        raise InvalidInput("give exactly one of branch, ref or build")
    build_id = None
    ref = body.branch or body.ref
    if ref:
        # pinned: the commit whose spec was checked is the one that will be built
        ref = builds.check_spec_at(Path(ctx.store.get_app(app).repo), ref, app=app)
    if body.build:
        build_id, _ = protection.build_of(ctx, app, body.build)
    check_creation(ctx, app, body, ref=ref, build_id=build_id)
    return ref, build_id


def make_environment(
    request: Request,
    app: str,
    body: EnvironmentIn,
    principal: Principal,
    *,
    ref: str | None,
    build_id: str | None,
) -> EnvironmentOut:
    """Create the environment, its checks passed (or, for one that waited, approved)."""
    ctx = _ctx(request)
    copied, source = (
        preview_config.copied_config(ctx, app) if body.kind == Kind.PREVIEW else ({}, None)
    )
    try:
        environment = ctx.store.create_environment(
            app=app,
            name=body.name,
            kind=body.kind,
            branch=body.branch,
            ref=ref,
            build_id=build_id,
            commit=ctx.store.get_build(build_id).commit if build_id else None,
            created_by=principal.name,
            hotfix_reason=body.reason if body.hotfix else None,
            config_sealed=ctx.vault.seal(copied),
        )
    except Conflict:
        existing = ctx.store.get_environment(app, body.name)
        same = (
            existing.desired == Desired.RUNNING
            and existing.kind == body.kind
            and existing.branch == body.branch
            and (existing.ref == ref if ref else existing.build_id == build_id)
        )
        if not same:
            raise
        return _out(ctx, existing)  # the same request again (a retry): nothing to do
    ctx.store.add_event(environment.id, EventType.CREATED, f"environment {body.name} requested")
    if copied:
        ctx.store.add_event(
            environment.id,
            EventType.CREATED,
            f"config copied from {source}, as the spec it runs allows: {', '.join(sorted(copied))}",
        )
    _manager(request).wake()
    return _out(ctx, environment)


def check_creation(
    ctx: Context, app: str, body: EnvironmentIn, *, ref: str | None, build_id: str | None
) -> None:
    """An environment of a protected kind starts, like every later release, only with a build
    that ran healthy in the environment before it in the pipeline (or `hotfix` and a reason).
    Whether it is protected is decided by what runs now, not by the spec it starts with."""
    if build_id is None:
        assert ref is not None
        build_id = protection.build_of_commit(ctx, app, ref)
    protection.check(
        ctx,
        app=app,
        name=body.name,
        kind=str(body.kind),
        build_id=build_id,
        hotfix=body.hotfix,
        reason=body.reason,
    )


@router.get("/apps/{app}/environments/{name}", response_model=EnvironmentOut)
def show_environment(
    app: AppName, name: EnvironmentName, request: Request, _: Principal = viewer
) -> EnvironmentOut:
    ctx = _ctx(request)
    environment = ctx.store.get_environment(app, name)
    return _out(ctx, environment).model_copy(
        update={"scale": operations.wanted_replicas(ctx, environment)}
    )


@router.get("/apps/{app}/environments/{name}/releases", response_model=list[ReleaseOut])
def list_releases(
    app: AppName, name: EnvironmentName, request: Request, _: Principal = viewer
) -> list[ReleaseOut]:
    ctx = _ctx(request)
    environment = ctx.store.get_environment(app, name)
    return [ReleaseOut.of(r) for r in ctx.store.releases(environment.id)]


@router.delete(
    "/apps/{app}/environments/{name}", response_model=EnvironmentOut | PendingOut, status_code=202
)
def destroy_environment(
    app: AppName,
    name: EnvironmentName,
    request: Request,
    hotfix: bool = Query(False, description="A protected environment: destroy it anyway."),
    reason: str | None = Query(
        None, max_length=500, description="Why (needed with hotfix); recorded in its events."
    ),
    principal: Principal = changer,
) -> EnvironmentOut | PendingOut:
    """Destroy an environment. A protected one (as its live release's spec says, or its kind)
    needs `hotfix` and a `reason`, as a deploy of a build it would refuse does, or, where
    what runs asks for approvals, waits for them."""
    ctx = _ctx(request)
    environment = ctx.store.get_environment(app, name)
    if environment.desired != Desired.DELETED:
        needed = 0 if hotfix else protection.approvals_needed(ctx, environment)
        if needed:
            return holding.hold(
                request, environment, principal, Action.DESTROY, f"destroy {name}", {}, needed
            )
        if hotfix:
            audit.note(request, hotfix=reason or "")
            protection.check_hotfix_role(
                ctx, principal, app=app, name=name, kind=str(environment.kind)
            )
        protection.check_destroy(ctx, environment, hotfix=hotfix, reason=reason)
        note = f" by {principal.name} (hotfix: {reason})" if hotfix else ""
        environment = ctx.store.update_environment(environment.id, desired=Desired.DELETED)
        ctx.store.add_event(environment.id, EventType.DESTROY, f"destroy requested{note}")
    _manager(request).wake(environment.id)
    return _out(ctx, environment)


@router.get(
    "/apps/{app}/environments/{name}/events",
    response_model=list[EventOut],
    responses={200: SSE_ANSWER},
)
async def environment_events(
    app: AppName,
    name: EnvironmentName,
    request: Request,
    after: int = Query(0, ge=-1, le=2**62, description="-1: only what happens from now on"),
    follow: bool = False,
    timeout: float = STREAM_TIMEOUT,
    last_event_id: int = Header(
        None, ge=0, le=2**62, description="a reconnecting client resumes after this event"
    ),
    _: Principal = viewer,
) -> EventSourceResponse | list[EventOut]:
    """The environment's events (JSON); with `follow`, a server-sent event stream of them
    (each with its id), a `status` event every 100 ms, and `end` once the environment is gone
    or `timeout` once the stream has lasted `timeout` seconds (resume with `Last-Event-ID`)."""
    ctx = _ctx(request)
    # the store is read in threads: a slow disk or a busy PostgreSQL never holds the loop
    environment = await asyncio.to_thread(ctx.store.get_environment, app, name)
    if last_event_id is not None:
        after = last_event_id
    redactor = await asyncio.to_thread(hidden.following, ctx, environment)
    if not follow:

        def read() -> list[EventOut]:
            hiding = redactor()
            return [_event(e, hiding) for e in ctx.store.events(environment.id, after=after)]

        return await asyncio.to_thread(read)

    deadline = asyncio.get_running_loop().time() + timeout

    def poll(cursor: int) -> tuple[list[ServerSentEvent], int, EnvironmentOut | None]:
        """The events after `cursor`, the new cursor, and the environment as it is now
        (None once it is gone, with every event it left)."""
        hiding = redactor()
        events = ctx.store.events(environment.id, after=cursor)
        current = ctx.store.get_environment_by_id(environment.id)
        if current is None:
            events += ctx.store.events(environment.id, after=events[-1].id if events else cursor)
        cursor = events[-1].id if events else cursor
        out = _out(ctx, current) if current is not None else None
        return [_sse_event(e, hiding) for e in events], cursor, out

    async def stream() -> AsyncIterator[ServerSentEvent]:
        cursor = (
            await asyncio.to_thread(ctx.store.latest_event_id, environment.id)
            if after < 0
            else after
        )
        while True:
            if asyncio.get_running_loop().time() >= deadline:
                message = f"the stream ended after {timeout:g}s; resume after event {cursor}"
                yield ServerSentEvent(json.dumps({"message": message}), event="timeout")
                return
            events, cursor, current = await asyncio.to_thread(poll, cursor)
            for event in events:
                yield event
            if current is None:
                yield ServerSentEvent(json.dumps({"deleted": True}), event="end")
                return
            yield ServerSentEvent(current.model_dump_json(), event="status")
            await asyncio.sleep(0.1)

    return EventSourceResponse(stream())


@router.get(
    "/apps/{app}/environments/{name}/logs",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def environment_logs(
    app: AppName,
    name: EnvironmentName,
    request: Request,
    service: str | None = Query(None, pattern=DNS_LABEL, description="Only this service."),
    tail: int | None = Query(
        None,
        ge=0,
        le=10_000,
        description="Lines of each file to start with: 100, or with since 10000 (the most).",
    ),
    follow: bool = False,
    since: str | None = Query(
        None,
        max_length=since_parser.MAX_TEXT,
        description="Lines written since then: a duration (30s, 10m, 2h, 1d) back from now, "
        "or an ISO 8601 timestamp (UTC unless it has an offset)",
    ),
    grep: str | None = Query(
        None,
        max_length=grep_patterns.MAX_PATTERN,
        description="Only lines matching this regular expression (Python syntax)",
    ),
    timeout: float = STREAM_TIMEOUT,
    _: Principal = viewer,
) -> StreamingResponse:
    """The replicas' and the release hook's output, each line labelled with its file; the
    environment's secrets (and their common encodings) are hidden in every line served.
    With `follow`, new lines as they are written, until the environment is gone or the stream
    has lasted `timeout` seconds."""
    ctx = _ctx(request)
    environment = await asyncio.to_thread(ctx.store.get_environment, app, name)
    directory = ctx.log_dir(environment.id)
    files = await asyncio.to_thread(logfiles.log_files, directory, service)
    if service is not None and not files and service != "release":
        raise NotFound(f"no logs for service {service!r} in environment {name!r}")
    if tail is None:
        tail = logfiles.DEFAULT_TAIL if since is None else logfiles.MAX_TAIL
    selection = logfiles.Selection(
        tail=tail,
        since=since_parser.parse(since, now=ctx.clock()) if since is not None else None,
        pattern=grep_patterns.compile_pattern(grep) if grep is not None else None,
    )
    redactor = await asyncio.to_thread(hidden.following, ctx, environment)
    lines, offsets = await logfiles.read(
        directory, service, selection, await asyncio.to_thread(redactor)
    )
    stream = logfiles.stream(
        directory,
        service,
        selection,
        lines=lines,
        offsets=offsets,
        follow=follow,
        alive=lambda: ctx.store.get_environment_by_id(environment.id) is not None,
        disconnected=request.is_disconnected,
        redactor=redactor,
        until=asyncio.get_running_loop().time() + timeout,
    )
    return StreamingResponse(stream, media_type="text/plain; charset=utf-8")


@router.get("/apps/{app}/builds", response_model=list[BuildOut])
def list_builds(app: AppName, request: Request, _: Principal = viewer) -> list[BuildOut]:
    ctx = _ctx(request)
    ctx.store.get_app(app)
    return [_build(b) for b in ctx.store.list_builds(app)]


@router.post("/apps/{app}/builds", response_class=EventSourceResponse, responses={200: SSE_ANSWER})
async def create_build(
    app: AppName, body: BuildIn, request: Request, _: Principal = app_changer
) -> EventSourceResponse:
    """Build a ref; the answer streams the build's output, then its result or error."""
    ctx = _ctx(request)
    ctx.store.get_app(app)
    queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    def output(line: str) -> None:
        message = ("output", json.dumps({"line": line.rstrip("\n")}))
        loop.call_soon_threadsafe(queue.put_nowait, message)

    def run() -> None:
        try:
            build, cached = builds.build_and_record(ctx, app, body.ref, on_output=output)
            payload = _build(build).model_dump(mode="json") | {"cached": cached}
            loop.call_soon_threadsafe(queue.put_nowait, ("result", json.dumps(payload)))
        except LanewayError as exc:
            problem = {
                "title": exc.title,
                "status": exc.status_code,
                "detail": exc.message,
                "hint": exc.hint,
            }
            loop.call_soon_threadsafe(queue.put_nowait, ("error", json.dumps(problem)))
        except Exception as exc:  # reported as a problem, never a traceback
            problem = {"title": "internal error", "status": 500, "detail": exc.__class__.__name__}
            loop.call_soon_threadsafe(queue.put_nowait, ("error", json.dumps(problem)))

    task = asyncio.create_task(asyncio.to_thread(run))

    async def stream() -> AsyncIterator[ServerSentEvent]:
        while True:
            kind, data = await queue.get()
            yield ServerSentEvent(data, event=kind)
            if kind in ("result", "error"):
                await task
                return

    return EventSourceResponse(stream())


@router.get("/builds/{build_id}", response_model=BuildOut)
def show_build(build_id: BuildId, request: Request, _: Principal = viewer) -> BuildOut:
    return _build(_ctx(request).store.get_build(build_id))


def _build(build: BuildRecord) -> BuildOut:
    return BuildOut(
        id=build.id,
        app=build.app,
        commit=build.commit,
        ref=build.ref,
        spec_digest=build.spec_digest,
        created_at=build.created_at,
    )


def _event(event: Event, redactor: Redactor) -> EventOut:
    """An event as served: its message redacted again (what a process printed may be in it)."""
    message = redactor.text(event.message)
    return EventOut(id=event.id, time=event.time, type=event.type, message=message)


def _sse_event(event: Event, redactor: Redactor) -> ServerSentEvent:
    out = _event(event, redactor)
    return ServerSentEvent(out.model_dump_json(), event=event.type, id=str(event.id))
