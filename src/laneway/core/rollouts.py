"""Which release takes how much traffic: one pure state machine for deploys and canaries.

An environment's `RolloutStatus` is the truth about its traffic: the stable release, the
release being rolled out (the canary) with its weight in basis points and its step, the warm
previous release, and why a rollout is paused or was aborted. The store persists it and
nothing else decides it. API handlers record intent through `start`, `pause`, `resume`,
`promote` and `abort`; the environment reconciler moves it with `advance` (what it saw:
the canary's replicas ready or failing, the router serving the status's weights) and
`judged` (a verdict of the analysis). The phase is derived (`phase`), never stored.

A deploy, a promote, a rollback, a config change are all a rollout with one step of 100%:

    start -> (canary replicas ready) -> weight 100% -> (router serves it) -> promoted:
    stable := canary, warm := the old stable until `warm_until`

A canary walks its steps (`SetWeight`, `Pause`), each weight counting only once the router
serves it; with an analysis, each weight is held for at least one interval and judged,
canary against stable, over the same window. A failing canary (its replicas unhealthy, its
hook failed, too many failed verdicts) is aborted: its weight goes to 0 at once and, once
the router serves that, the release is marked failed and stable alone serves.
"""

from __future__ import annotations

from dataclasses import replace
from enum import StrEnum

from laneway.core.measurements import Measurement
from laneway.core.rollout_json import from_json, to_json
from laneway.core.rollout_types import (
    Aborted,
    Analysis,
    Effect,
    Gate,
    Judge,
    Metric,
    Pause,
    Promoted,
    RolloutStatus,
    Seen,
    SetWeight,
    Side,
    Step,
    Strategy,
    Webhook,
    WeightSet,
    Window,
)
from laneway.core.routing import WEIGHT_SCALE
from laneway.errors import Conflict

__all__ = [
    "WEIGHT_SCALE",
    "Aborted",
    "Analysis",
    "Effect",
    "Gate",
    "Judge",
    "Metric",
    "Pause",
    "Promoted",
    "RolloutPhase",
    "RolloutStatus",
    "Seen",
    "SetWeight",
    "Side",
    "Step",
    "Strategy",
    "Webhook",
    "WeightSet",
    "Window",
    "abort",
    "advance",
    "from_json",
    "gate_held",
    "gate_passed",
    "judged",
    "pause",
    "phase",
    "promote",
    "resume",
    "same_processes",
    "start",
    "stopped",
    "to_json",
]


class RolloutPhase(StrEnum):
    PROGRESSING = "progressing"
    PAUSED = "paused"
    ABORTING = "aborting"
    ABORTED = "aborted"
    PROMOTED = "promoted"
    NONE = "none"


def phase(status: RolloutStatus) -> tuple[RolloutPhase, str]:
    """Derived from the status, with a phrase saying why."""
    canary = status.canary
    if canary is None:
        if status.ended == "aborted":
            return RolloutPhase.ABORTED, f"aborted: {status.aborted}"
        if status.stable is None:
            return RolloutPhase.NONE, "nothing released yet"
        return RolloutPhase.PROMOTED, f"v{status.stable.release} serves all traffic"
    if status.aborted is not None:
        return RolloutPhase.ABORTING, f"sending traffic back to stable: {status.aborted}"
    if status.paused:
        return RolloutPhase.PAUSED, "; ".join(status.paused)
    steps = len(status.strategy.steps)
    return (
        RolloutPhase.PROGRESSING,
        f"v{canary.release} at {percent(status.weight)} (step {status.step_index + 1} of {steps})",
    )


def percent(weight: int) -> str:
    """Basis points as a person reads them: `5%`, `0.1%`, `0.01%`."""
    text = f"{weight / 100:.2f}".rstrip("0").rstrip(".")
    return f"{text}%"


# -- intent: what the API records ----------------------------------------------------------


def start(status: RolloutStatus, side: Side, strategy: Strategy) -> RolloutStatus:
    """A new rollout of `side`. One at a time: a rollout under way must end first."""
    if status.canary is not None:
        doing = (
            "an abort" if status.aborted is not None else f"the rollout of v{status.canary.release}"
        )
        raise Conflict(
            f"{doing} is under way",
            hint="wait for it to finish, or `laneway canary abort` it",
        )
    return replace(
        status,
        canary=side,
        strategy=strategy,
        step_index=0,
        weight=0,
        served=None,
        exposed=False,
        step_since=None,
        window=None,
        paused=(),
        aborted=None,
        failures=0,
        ended=None,
        judged_at=None,
        note=None,
        gate=None,
        held_at=None,
    )


def same_processes(status: RolloutStatus) -> bool:
    """The release rolling out runs on the stable release's processes (a scale, a restart
    of one service): no traffic moves, so it is no rollout to wait for."""
    canary, stable = status.canary, status.stable
    return (
        canary is not None
        and stable is not None
        and status.aborted is None
        and canary.generation == stable.generation
    )


def _rolling(status: RolloutStatus) -> Side:
    if status.canary is None:
        raise Conflict("no rollout is under way")
    if status.aborted is not None:
        raise Conflict(f"the abort of v{status.canary.release} is under way: {status.aborted}")
    return status.canary


def pause(status: RolloutStatus, reason: str) -> RolloutStatus:
    _rolling(status)
    if reason in status.paused:
        return status
    return replace(status, paused=(*status.paused, reason))


def resume(status: RolloutStatus, now: float) -> RolloutStatus:
    """Clear every pause; a rollout held at a `Pause` step goes on to the next step."""
    canary = _rolling(status)
    step = _step(status)
    if not status.paused and not isinstance(step, Pause):
        raise Conflict(f"the rollout of v{canary.release} is not paused")
    if isinstance(step, Pause):
        return _next_step(replace(status, paused=(), held_since=None), now)
    return replace(status, paused=(), held_since=None)


def promote(status: RolloutStatus) -> RolloutStatus:
    """Skip the remaining steps: all clients to the canary (once ready), then promoted."""
    _rolling(status)
    return replace(
        status,
        step_index=len(status.strategy.steps) - 1,
        paused=(),
        window=None,
        step_since=None,
    )


def abort(status: RolloutStatus, reason: str) -> RolloutStatus:
    """Send all traffic back to stable at once; the release is failed once the router has."""
    _rolling(status)
    return replace(status, aborted=reason, weight=0, paused=(), window=None)


# -- what the reconciler sees and does ------------------------------------------------------


def advance(
    status: RolloutStatus, seen: Seen, now: float
) -> tuple[RolloutStatus, tuple[Effect, ...]]:
    """One step of the machine. A pass may call it again after acting on what it returned
    (the router asked to serve a new weight); a status that is where it should be returns
    itself and no effect, so this can run any number of times."""
    canary = status.canary
    if canary is None:
        return status, ()
    if status.aborted is not None:
        return _finish_abort(status, seen)
    if seen.failing is not None:
        aborted = abort(status, seen.failing)
        if aborted.exposed:
            return aborted, ()  # let go once the router serves weight 0 (the next move)
        return _finish_abort(aborted, seen)
    if same_processes(status):
        return _promoted(status, now, seen)
    if not seen.ready:
        return status, ()
    if status.weight != status.served:
        if status.weight == 0 and not status.exposed:
            status = replace(status, served=0)  # no client was ever sent to it: nothing to wait for
        elif not seen.served:
            return status, ()
        else:
            status = replace(status, served=status.weight, step_since=now)
            if _warm(status, now):
                status = _open_window(status, seen, now)
    effects: list[Effect] = []
    for _ in range(len(status.strategy.steps) + 1):
        if status.paused:
            return status, tuple(effects)
        step = _step(status)
        if isinstance(step, Pause):
            since = status.step_since if status.step_since is not None else now
            if status.step_since is None:
                status = replace(status, step_since=now)
            if step.seconds is None:
                return pause(status, f"step {status.step_index + 1}: paused until resumed"), tuple(
                    effects
                )
            if now - since < step.seconds:
                return status, tuple(effects)
            status = _next_step(status, now)
            continue
        if status.weight != step.weight:
            if status.strategy.hooks("pre-step") and status.gate != status.step_index:
                if status.held_at is None or now - status.held_at >= HOLD_RETRY:
                    effects.append(Gate(status.step_index, step.weight))
                return status, tuple(effects)
            status = replace(
                status,
                weight=step.weight,
                exposed=status.exposed or step.weight > 0,
                step_since=None,
                window=None,
            )
            effects.append(WeightSet(step.weight, status.step_index))
            return status, tuple(effects)
        if status.served != status.weight:
            return status, tuple(effects)
        if step.weight == WEIGHT_SCALE:
            promoted, done = _promoted(status, now, seen)
            return promoted, (*effects, *done)
        analysis = status.strategy.analysis
        if analysis is None:
            status = _next_step(status, now)
            continue
        due = _due(status, seen, analysis, now)
        if isinstance(due, Judge):
            effects.append(due)
        elif due is not None:
            status = due
        return status, tuple(effects)
    return status, tuple(effects)


HOLD_RETRY = 10.0
"""Seconds a step held by a pre-step webhook waits before the webhooks are asked again."""


def gate_passed(status: RolloutStatus, step_index: int) -> RolloutStatus:
    """The pre-step webhooks of `step_index` said yes: its weight may be set."""
    if status.canary is None or status.step_index != step_index:
        return status
    return replace(status, gate=step_index, held_at=None, held_since=None)


def gate_held(status: RolloutStatus, step_index: int, why: str, now: float) -> RolloutStatus:
    """A pre-step webhook said no: the step waits, and they are asked again later; one
    that has said no for longer than the strategy's `hold_limit` aborts the rollout."""
    if status.canary is None or status.step_index != step_index:
        return status
    since = status.held_since if status.held_since is not None else now
    if now - since >= status.strategy.hold_limit:
        return abort(
            status,
            f"step {step_index + 1} held for {_duration(now - since)}, over the hold limit "
            f"of {_duration(status.strategy.hold_limit)}: {why}",
        )
    return replace(status, held_at=now, held_since=since, note=f"step {step_index + 1} held: {why}")


def _duration(seconds: float) -> str:
    """`1h30m`, `45s`: whole seconds, as the spec writes them."""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return (
        "".join(f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if n)
        or "0s"
    )


def _step(status: RolloutStatus) -> Step:
    steps = status.strategy.steps
    return steps[min(status.step_index, len(steps) - 1)]


def _warm(status: RolloutStatus, now: float) -> bool:
    """Whether the current weight has been served for the analysis's warm-up."""
    analysis = status.strategy.analysis
    if analysis is None or analysis.warmup <= 0:
        return True
    return status.step_since is not None and now - status.step_since >= analysis.warmup


def _next_step(status: RolloutStatus, now: float) -> RolloutStatus:
    return replace(
        status,
        judged_at=None,
        step_index=min(status.step_index + 1, len(status.strategy.steps) - 1),
        step_since=now if status.served == status.weight else None,
        window=None,
    )


def _open_window(status: RolloutStatus, seen: Seen, now: float) -> RolloutStatus:
    if status.strategy.analysis is None or status.canary is None or status.stable is None:
        return status
    counters = seen.counters
    if counters is None:
        return replace(status, window=None)
    empty = Measurement()
    return replace(
        status,
        judged_at=None,
        window=Window(
            since=now,
            epoch=seen.epoch,
            canary=counters.get(status.canary.label, empty),
            stable=counters.get(status.stable.label, empty),
        ),
    )


def _due(
    status: RolloutStatus, seen: Seen, analysis: Analysis, now: float
) -> Judge | RolloutStatus | None:
    """A judgement if the window has lasted an interval and the counts can be read; a
    status with a window (re)opened if it has none or its counts went backwards (the router
    restarted and counts from zero)."""
    if status.window is None:
        if not _warm(status, now):
            return None
        reopened = _open_window(status, seen, now)
        return reopened if reopened.window is not None else None
    last = status.judged_at if status.judged_at is not None else status.window.since
    if now - last < analysis.interval:
        return None
    assert status.canary is not None and status.stable is not None
    counters = seen.counters
    if counters is None:
        unread = "waiting: the router's counters cannot be read now"
        return replace(status, note=unread) if status.note != unread else None
    if seen.epoch != status.window.epoch:
        return _open_window(status, seen, now)  # the router restarted: its counts began again
    empty = Measurement()
    canary = counters.get(status.canary.label, empty).minus(status.window.canary)
    stable = counters.get(status.stable.label, empty).minus(status.window.stable)
    if canary is None or stable is None:
        return _open_window(status, seen, now)
    return Judge(canary, stable, status.window.since)


def judged(
    status: RolloutStatus, outcome: str, summary: str, seen: Seen, now: float
) -> RolloutStatus:
    """Record a verdict (`pass`, `fail`, `inconclusive`) of the current window.

    Pass: on to the next step. Fail: one more failure; past the limit, abort; else a new
    window at the same weight. Inconclusive: the window goes on, gathering more."""
    if status.canary is None or status.aborted is not None or status.strategy.analysis is None:
        return status
    if outcome == "pass":
        return replace(_next_step(status, now), note=summary)
    if outcome == "fail":
        failures = status.failures + 1
        noted = replace(status, failures=failures, note=summary)
        if failures > status.strategy.analysis.failure_limit:
            return abort(noted, f"verdict: {summary.removeprefix('fail: ')}")
        return _open_window(noted, seen, now)
    return replace(status, judged_at=now, note=summary)


def _promoted(
    status: RolloutStatus, now: float, seen: Seen
) -> tuple[RolloutStatus, tuple[Effect, ...]]:
    canary = status.canary
    assert canary is not None
    previous = status.stable
    moved = previous is not None and previous.generation != canary.generation
    settled = replace(
        status,
        stable=canary,
        canary=None,
        weight=0,
        served=None,
        exposed=False,
        step_index=0,
        step_since=None,
        window=None,
        paused=(),
        aborted=None,
        failures=0,
        warm=previous if moved else status.warm,
        warm_until=now + seen.keep_warm if moved else status.warm_until,
        ended="promoted",
        judged_at=None,
        gate=None,
        held_at=None,
    )
    return settled, (Promoted(canary.release, canary.generation, previous),)


def _finish_abort(status: RolloutStatus, seen: Seen) -> tuple[RolloutStatus, tuple[Effect, ...]]:
    """An aborted canary is let go once no client can be sent to it any more."""
    canary = status.canary
    assert canary is not None and status.aborted is not None
    if status.exposed and not seen.served:
        return status, ()
    ended = replace(
        status,
        canary=None,
        weight=0,
        served=None,
        exposed=False,
        step_index=0,
        step_since=None,
        window=None,
        paused=(),
        ended="aborted",
        judged_at=None,
        gate=None,
        held_at=None,
    )
    return ended, (Aborted(canary.release, status.aborted),)


def stopped(status: RolloutStatus) -> RolloutStatus:
    """Nothing serves any more (`laneway up` ended): its next release starts as a first one."""
    return RolloutStatus()


def first(release: int) -> RolloutStatus:
    """A new environment's status: its first release rolling out, nothing stable yet."""
    return start(RolloutStatus(), Side(release, release), Strategy())
