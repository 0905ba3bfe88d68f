"""API routes of the everyday operations: scale, restart, and one-off processes (run).

`scale` and `restart` are releases (same build, same config) written as a deploy writes one,
so they show in the release list, can be rolled back, and are converged by the environment
reconciler: a scale is served by the live generation's processes (replicas are started or
stopped beside them), a restart starts a generation of its own and switches to it once it is
healthy. Neither changes code, so a protected environment takes them from a deployer without
a hotfix. `run` starts a one-off process as a labelled job of the runtime and streams its
output and exit code (`controllers/runs.py`).
"""

from __future__ import annotations

import asyncio
import json
import shlex
import threading
from collections.abc import AsyncIterator
from typing import Annotated, cast

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field, StrictStr
from sse_starlette import EventSourceResponse, ServerSentEvent

from laneway.api import pipeline as releasing  # a module: api.pipeline imports this one
from laneway.api import roles
from laneway.api.auth import Principal, require
from laneway.api.schemas import JSON_NUMBER, AppName, EnvironmentName, ReleaseOut, _Body
from laneway.controllers import hidden, runs
from laneway.controllers.context import Context
from laneway.core import pipeline, scaling
from laneway.core.types import Environment, EventType, Role
from laneway.errors import Conflict, InvalidInput, LanewayError
from laneway.spec.model import DNS_LABEL, Spec

router = APIRouter(prefix="/api/v1")
viewer = Depends(require(Role.VIEWER))
changer = Depends(roles.changes_environment())

Count = Annotated[int, Field(ge=0, le=scaling.MAX_REPLICAS), JSON_NUMBER]
ServiceName = Annotated[StrictStr, Field(pattern=DNS_LABEL)]


class ScaleIn(_Body):
    replicas: dict[ServiceName, Count] = Field(
        min_length=1,
        max_length=64,
        description='Replicas per service, e.g. {"web": 3}.',
        json_schema_extra={"additionalProperties": False},  # keys are service names only
    )


class RestartIn(_Body):
    service: ServiceName | None = Field(
        default=None, description="Only this service's replicas, one at a time."
    )


class ScaleOut(BaseModel):
    release: str
    replicas: dict[str, int]
    """Replicas per service the release wants."""
    overrides: dict[str, int]
    """Those set by `laneway scale` rather than the spec."""


class RunIn(_Body):
    service: ServiceName = Field(description="Whose process environment the command gets.")
    command: list[Annotated[StrictStr, Field(min_length=1, max_length=4096)]] = Field(
        min_length=1,
        max_length=256,
        description="One item: a shell line; more: a program and its arguments.",
    )
    timeout: Annotated[
        int,
        Field(ge=1, le=runs.MAX_TIMEOUT, description="Seconds after which it is stopped."),
        JSON_NUMBER,
    ] = runs.DEFAULT_TIMEOUT


SHOWN_COMMAND = 300
"""Characters of a run's command kept in its events."""


def check_command(command: list[str]) -> None:
    if any("\x00" in part for part in command):
        raise InvalidInput("command: NUL characters cannot be passed to a process")


def _ctx(request: Request) -> Context:
    return cast(Context, request.app.state.ctx)


def _serving_spec(ctx: Context, environment: Environment) -> Spec:
    """The spec of the release that runs now (the newest, when none is live yet)."""
    if environment.build_id is None:
        raise Conflict(
            f"{environment.name} has no build yet; wait for its first release",
            hint=f"`laneway env show {environment.name}`",
        )
    return ctx.specs.of_build(environment.build_id)


def wanted_replicas(ctx: Context, environment: Environment) -> dict[str, int] | None:
    """Replicas per service the newest release wants; None before it has a build."""
    if environment.build_id is None:
        return None
    try:
        spec = ctx.specs.of_build(environment.build_id)
        overrides = ctx.store.get_release(environment.id, environment.release).replicas
    except LanewayError:
        return None
    return scaling.counts(spec, str(environment.kind), overrides)


def _again(
    request: Request,
    environment: Environment,
    principal: Principal,
    *,
    description: str,
    generation: int | None = None,
    replicas: dict[str, int] | None = None,
    restart: bool = False,
    restarts: dict[str, float] | None = None,
) -> ReleaseOut:
    """A release of what the environment has now (its build, commit, ref and config), with
    other counts or a restart: scale and restart change nothing else."""
    ctx = _ctx(request)
    return releasing.propose(
        request,
        environment,
        principal,
        build_id=environment.build_id,
        commit=environment.commit,
        ref=environment.ref,
        config=releasing.config_of(ctx, environment.id, environment.release),
        description=description,
        generation=generation,
        replicas=replicas,
        restart=restart,
        restarts=restarts,
    )


@router.get("/apps/{app}/environments/{name}/scale", response_model=ScaleOut)
def show_scale(
    app: AppName, name: EnvironmentName, request: Request, _: Principal = viewer
) -> ScaleOut:
    """Replicas per service of the newest release, and which of them `scale` set."""
    ctx = _ctx(request)
    environment = ctx.store.get_environment(app, name)
    release = ctx.store.get_release(environment.id, environment.release)
    return ScaleOut(
        release=release.name,
        replicas=wanted_replicas(ctx, environment) or {},
        overrides=release.replicas,
    )


@router.post("/apps/{app}/environments/{name}/scale", response_model=ReleaseOut, status_code=202)
def scale(
    app: AppName,
    name: EnvironmentName,
    body: ScaleIn,
    request: Request,
    principal: Principal = changer,
) -> ReleaseOut:
    """Set replica counts: a new release of the same build and config, served by the live
    release's processes (replicas are started or stopped beside them)."""
    ctx = _ctx(request)
    environment = ctx.store.get_environment(app, name)
    pipeline.check_not_in_progress(environment)
    spec = _serving_spec(ctx, environment)
    scaling.check(body.replicas, spec)
    current = ctx.store.get_release(environment.id, environment.release)
    replicas = scaling.merged(current.replicas, body.replicas)
    kind = str(environment.kind)
    if scaling.counts(spec, kind, replicas) == scaling.counts(spec, kind, current.replicas):
        return ReleaseOut.of(current, unchanged=True)
    return _again(
        request,
        environment,
        principal,
        description=scaling.describe(body.replicas),
        generation=environment.live if environment.live and not environment.failure else None,
        replicas=replicas,
    )


@router.post("/apps/{app}/environments/{name}/restart", response_model=ReleaseOut, status_code=202)
def restart(
    app: AppName,
    name: EnvironmentName,
    request: Request,
    body: RestartIn | None = None,
    principal: Principal = changer,
) -> ReleaseOut:
    """Restart with zero downtime. Every replica: a new release of the same build, config and
    counts, started beside the live one and switched to once healthy, as a deploy is; its
    release hook is not run again. One service: a release served by the live processes, whose
    replicas of that service are replaced one at a time, each new one beside the old until
    it is healthy."""
    ctx = _ctx(request)
    environment = ctx.store.get_environment(app, name)
    pipeline.check_not_in_progress(environment)
    spec = _serving_spec(ctx, environment)
    service = body.service if body is not None else None
    if service is not None:
        scaling.check({service: 0}, spec)
        if not environment.live or environment.failure:
            raise Conflict(
                f"{name} has no live release whose {service} replicas could be restarted",
                hint=f"`laneway restart {name}` restarts everything",
            )
        current = ctx.store.get_release(environment.id, environment.release)
        return _again(
            request,
            environment,
            principal,
            description=f"restart {service}",
            generation=environment.live,
            replicas=current.replicas,
            restarts={service: ctx.clock()},
        )
    return _again(
        request,
        environment,
        principal,
        description="restart",
        restart=True,
    )


@router.post(
    "/apps/{app}/environments/{name}/runs",
    response_model=None,
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "Server-sent events: started, output (a line each), exit.",
            "content": {
                "text/event-stream": {
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
            },
        }
    },
)
async def run(
    app: AppName,
    name: EnvironmentName,
    body: RunIn,
    request: Request,
    principal: Principal = changer,
) -> EventSourceResponse:
    """Run a one-off process with SERVICE's process environment (config, resources, flags)
    in the live release's directory. The answer is a server-sent event stream: `started`,
    `output` (one per line, secrets redacted), then `exit` with the exit code (null when it
    was stopped at its timeout). The process is stopped if the client goes away."""
    ctx = _ctx(request)
    check_command(body.command)
    command = body.command[0] if len(body.command) == 1 else shlex.join(body.command)

    def checked() -> tuple[runs.Prepared, str]:
        environment = ctx.store.get_environment(app, name)
        prepared = runs.prepare(ctx, environment, body.service, command, timeout=body.timeout)
        shown = hidden.redactor(ctx, environment).text(command)
        return prepared, shown if len(shown) <= SHOWN_COMMAND else shown[: SHOWN_COMMAND - 1] + "…"

    prepared, shown = await asyncio.to_thread(checked)
    environment_id = prepared.environment.id

    def record(message: str) -> None:
        ctx.store.add_event(environment_id, EventType.RUN, message)

    async def stream() -> AsyncIterator[ServerSentEvent]:
        # the process starts here, once the stream runs: its `finally` then always stops it
        job = await runs.launched(ctx, prepared)
        code: int | None = None
        timed_out = ended = False
        try:
            await asyncio.to_thread(
                record, f"{principal.name} ran `{shown}` as {body.service} on v{job.generation}"
            )
            started = {"pid": job.pid, "release": f"v{job.generation}", "service": body.service}
            yield ServerSentEvent(json.dumps(started), event="started")
            async for kind, value in runs.follow(ctx, job):
                if kind == "output":
                    yield ServerSentEvent(json.dumps({"line": value}), event="output")
                else:
                    code = value if isinstance(value, int) else None
                    timed_out = kind == "timeout"
            how = (
                f"timed out after {body.timeout}s and was stopped"
                if timed_out
                else f"exited with code {code}"
                if code is not None
                else "ended; its exit code is unknown"
            )
            await asyncio.to_thread(record, f"`{shown}` {how}")
            ended = True
            yield ServerSentEvent(json.dumps({"code": code, "timed_out": timed_out}), event="exit")
        finally:
            runs.finish(ctx, job)
            if not ended:  # the client went away (sse-starlette cancelled this stream)
                # in a thread of its own, as `runs.finish`: no await in a cancelled task
                threading.Thread(
                    target=record, args=(f"`{shown}` stopped: its client went away",)
                ).start()

    return EventSourceResponse(stream())
