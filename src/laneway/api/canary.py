"""API routes of canary rollouts: start one, read its status and verdicts, pause, resume,
promote or abort it.

Starting is a deploy with the canary's steps (`pipeline.propose` with a `Strategy`), under
the same protection rule: a protected environment takes only a build proven upstream, or a
hotfix with its reason. The steps, interval and limits are the live release's `canary:`
section (what runs decides, not the build proposed) with the request's values over it.
The other verbs only record intent (`Store.change_rollout`) and wake the reconciler.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

from laneway.api import pipeline, protection, roles
from laneway.api.auth import Principal, require
from laneway.api.holding import PendingOut
from laneway.api.schemas import AppName, EnvironmentName, HotfixIn, ReleaseOut
from laneway.controllers.context import Context
from laneway.core import canary, rollouts
from laneway.core.approvals import Action
from laneway.core.types import Environment, Role
from laneway.errors import Conflict, Forbidden
from laneway.spec.canary import MAX_STEPS, Canary
from laneway.store.verdicts import VerdictRecord

router = APIRouter(prefix="/api/v1")
viewer = Depends(require(Role.VIEWER))
changer = Depends(roles.changes_environment())

CANARY = "/apps/{app}/environments/{name}/canary"
MAX_REASON = 500


def _ctx(request: Request) -> Context:
    return cast(Context, request.app.state.ctx)


class CanaryIn(HotfixIn):
    ref: StrictStr | None = Field(default=None, min_length=1, max_length=255)
    build: StrictStr | None = Field(default=None, min_length=1, max_length=80)
    steps: list[StrictFloat | StrictInt | StrictStr] | None = Field(
        default=None, max_length=MAX_STEPS, description="Percents of clients, or `pause`."
    )
    interval: StrictStr | None = Field(default=None, max_length=16)
    warmup: StrictStr | None = Field(default=None, max_length=16)
    failure_limit: StrictInt | None = None
    min_requests: StrictInt | None = None
    max_error_rate: StrictFloat | StrictInt | None = None
    max_latency: StrictStr | None = Field(default=None, max_length=16)


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, Field(max_length=MAX_REASON)] | None = None


class VerdictOut(BaseModel):
    release: str
    step: int
    weight: float
    """Percent of clients the canary had."""
    time: datetime
    outcome: str
    summary: str
    detail: dict[str, Any]

    @classmethod
    def of(cls, record: VerdictRecord) -> VerdictOut:
        return cls(
            release=f"v{record.release}",
            step=record.step,
            weight=record.weight / 100,
            time=record.time,
            outcome=record.outcome,
            summary=record.summary,
            detail=record.detail,
        )


class CanaryOut(BaseModel):
    environment: str
    phase: str
    message: str
    stable: str | None
    canary: str | None
    weight: float
    """Percent of clients sent to the canary now (0.01 steps)."""
    served: bool
    """Whether the router has confirmed it serves that weight."""
    step: int | None
    """1-based; None when no rollout runs."""
    steps: list[str]
    paused: list[str]
    aborted: str | None
    failures: int
    failure_limit: int | None
    interval: float | None
    note: str | None
    """The last verdict's summary: for an inconclusive one, how much more it needs."""
    verdicts: list[VerdictOut]
    """Of the release rolling out, or of the last one that did."""

    @classmethod
    def of(cls, environment: Environment, verdicts: list[VerdictRecord]) -> CanaryOut:
        status = environment.rollout
        phase, message = rollouts.phase(status)
        analysis = status.strategy.analysis
        return cls(
            environment=environment.name,
            phase=str(phase),
            message=message,
            stable=f"v{status.stable.release}" if status.stable else None,
            canary=f"v{status.canary.release}" if status.canary else None,
            weight=status.weight / 100,
            served=status.served == status.weight,
            step=status.step_index + 1 if status.canary else None,
            steps=[_step(s) for s in status.strategy.steps],
            paused=list(status.paused),
            aborted=status.aborted,
            failures=status.failures,
            failure_limit=analysis.failure_limit if analysis else None,
            interval=analysis.interval if analysis else None,
            note=status.note,
            verdicts=[VerdictOut.of(v) for v in verdicts],
        )


def _step(step: rollouts.Step) -> str:
    if isinstance(step, rollouts.SetWeight):
        return rollouts.percent(step.weight)
    return "pause" if step.seconds is None else f"pause {step.seconds:g}s"


@router.post(CANARY, response_model=ReleaseOut | PendingOut, status_code=202)
def start(
    app: AppName,
    name: EnvironmentName,
    body: CanaryIn,
    request: Request,
    principal: Principal = changer,
) -> ReleaseOut | PendingOut:
    """Roll a ref or a build out as a canary: the spec's steps (or these), each weight held
    for an interval and judged against the stable release by the router's measurements."""
    ctx = _ctx(request)
    environment = ctx.store.get_environment(app, name)
    if environment.live == 0:
        raise Conflict(
            f"{name} has no live release for a canary to be compared with",
            hint=f"`laneway deploy {name}` first",
        )
    live = ctx.specs.live_spec(environment)
    section = live.canary if live is not None else Canary()
    overrides = body.model_dump(
        include={
            "steps",
            "interval",
            "warmup",
            "failure_limit",
            "min_requests",
            "max_error_rate",
            "max_latency",
        }
    )
    given = sorted(key for key, value in overrides.items() if value is not None)
    if given and not body.hotfix:
        decided, _ = protection.standing(ctx, app, name=name, kind=str(environment.kind))
        if decided.protected:
            raise Forbidden(
                f"{name} is protected: its canary goes as the canary section of the spec it "
                f"runs says; {', '.join(given)} cannot be changed here",
                hint="change laneway.yaml's canary section and promote it, or use --hotfix "
                "--reason",
            )
    strategy = canary.strategy(canary.merged(section, overrides))
    if section.metrics and ctx.settings.prometheus_url is None:
        raise Conflict(
            f"the spec's canary.metrics ({', '.join(m.name for m in section.metrics)}) need a "
            "Prometheus, and LANEWAY_PROMETHEUS_URL is not set on the server",
            hint="set LANEWAY_PROMETHEUS_URL where `laneway server` runs, or remove "
            "canary.metrics from laneway.yaml",
        )
    source = pipeline.resolve_source(ctx, environment, ref=body.ref, build=body.build)
    steps = ", ".join(_step(s) for s in strategy.steps)
    return pipeline.ship(
        request,
        environment,
        principal,
        build_id=source.build_id,
        commit=source.commit,
        ref=source.ref,
        description=f"canary {source.what}: {steps}",
        hotfix=body.hotfix,
        reason=body.reason,
        strategy=strategy,
        action=Action.CANARY,
    )


@router.get(CANARY, response_model=CanaryOut)
def status(
    app: AppName, name: EnvironmentName, request: Request, principal: Principal = viewer
) -> CanaryOut:
    ctx = _ctx(request)
    environment = ctx.store.get_environment(app, name)
    rollout = environment.rollout
    side = rollout.canary or (rollout.stable if rollout.ended == "promoted" else None)
    release = side.release if side is not None else _last_aborted(ctx, environment)
    verdicts = ctx.store.verdicts(environment.id, release=release) if release else []
    return CanaryOut.of(environment, verdicts)


def _last_aborted(ctx: Context, environment: Environment) -> int | None:
    verdicts = ctx.store.verdicts(environment.id)
    return verdicts[-1].release if verdicts else None


def _intent(
    request: Request,
    app: str,
    name: str,
    change: Callable[[rollouts.RolloutStatus], rollouts.RolloutStatus],
) -> CanaryOut:
    ctx = _ctx(request)
    environment = ctx.store.get_environment(app, name)
    environment = ctx.store.change_rollout(environment.id, change)
    pipeline.wake(request, environment.id)
    return status(app, name, request)


@router.post(f"{CANARY}/pause", response_model=CanaryOut)
def pause(
    app: AppName,
    name: EnvironmentName,
    body: ReasonIn,
    request: Request,
    principal: Principal = changer,
) -> CanaryOut:
    """Hold the canary at its weight: no verdict, no next step, until resumed."""
    why = f"paused by {principal.name}" + (f": {body.reason}" if body.reason else "")
    return _intent(request, app, name, lambda s: rollouts.pause(s, why))


@router.post(f"{CANARY}/resume", response_model=CanaryOut)
def resume(
    app: AppName, name: EnvironmentName, request: Request, principal: Principal = changer
) -> CanaryOut:
    """Go on: every pause cleared; a rollout held at a `pause` step takes the next step."""
    clock = _ctx(request).clock
    return _intent(request, app, name, lambda s: rollouts.resume(s, clock()))


@router.post(f"{CANARY}/promote", response_model=CanaryOut)
def promote(
    app: AppName, name: EnvironmentName, request: Request, principal: Principal = changer
) -> CanaryOut:
    """Skip the remaining steps: all clients to the canary, which then becomes the release."""
    return _intent(request, app, name, rollouts.promote)


@router.post(f"{CANARY}/abort", response_model=CanaryOut)
def abort(
    app: AppName,
    name: EnvironmentName,
    body: ReasonIn,
    request: Request,
    principal: Principal = changer,
) -> CanaryOut:
    """All clients back to stable at once; the canary's release is marked failed."""
    why = f"aborted by {principal.name}" + (f": {body.reason}" if body.reason else "")
    return _intent(request, app, name, lambda s: rollouts.abort(s, why))
