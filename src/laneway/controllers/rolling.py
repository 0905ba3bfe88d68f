"""The traffic half of a pass: the environment's rollout moved one step (core.rollouts).

`EnvironmentReconciler` calls `Rolling.step` after the process actions of its pass. It
gathers what `rollouts.advance` needs (whether the wanted generation is ready or failing,
whether the router serves the status's weights, the route's counters), saves the new status
with the releases' states its effects change (compare-and-set, so an intent recorded
meanwhile wins), and says what happened as events. It goes around again while the status
keeps moving, so a rollback to warm processes is one pass: weight 100% -> the router serves
it -> promoted. A weight counts only once the router says it serves it; an abort lets the
canary's processes go only once the router serves weight 0.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace

import httpx

from laneway.analysis.criteria import Criteria
from laneway.analysis.judge import combined
from laneway.analysis.judge import judge as analysis_judge
from laneway.analysis.types import Needed, Verdict
from laneway.controllers import auditing, prometheus, webhooks
from laneway.controllers.context import Context
from laneway.controllers.launching import Launcher
from laneway.core import environments as plans
from laneway.core import rollouts
from laneway.core.measurements import Measurement
from laneway.core.types import Environment, EventType

ConfirmRoutes = Callable[[], Awaitable[bool]]
ReadCounters = Callable[
    [Environment], Awaitable[tuple[Mapping[str, Measurement] | None, float | None]]
]

MOVES_PER_PASS = 6
"""Status changes one pass may make: enough for the longest chain (served, next weight,
served, promoted), never a loop."""


class Rolling:
    def __init__(
        self,
        ctx: Context,
        launcher: Launcher,
        *,
        confirm_routes: ConfirmRoutes,
        counters: ReadCounters | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.ctx = ctx
        self.launcher = launcher
        self.confirm_routes = confirm_routes
        self.counters = counters
        self.http = http
        """For the rollout's webhooks."""

    async def step(
        self, environment: Environment, plan: plans.Plan, keep_warm: float
    ) -> tuple[Environment, tuple[rollouts.Effect, ...], str | None]:
        """Move the rollout as far as what is observed allows. Returns the environment as
        saved, the effects, and what it waits for from the router (None: nothing)."""
        done: list[rollouts.Effect] = []
        waiting: str | None = None
        for _ in range(MOVES_PER_PASS):
            status = environment.rollout
            if status.canary is None:
                break
            loop = asyncio.get_running_loop()
            asked = loop.time()
            served = await self.confirm_routes() if _needs_router(status) else None
            took = (loop.time() - asked) * 1000
            if served is False:
                waiting = _awaited(status)
            counters, epoch = await self._counters(environment)
            seen = rollouts.Seen(
                ready=plan.ready,
                failing=plan.failing.reason if plan.failing is not None else None,
                served=served,
                counters=counters,
                epoch=epoch,
                keep_warm=keep_warm,
            )
            now = self.ctx.clock()
            moved, effects = rollouts.advance(status, seen, now)
            judging = [e for e in effects if isinstance(e, rollouts.Judge)]
            verdict = await self._judge(environment, moved, judging[0], now) if judging else None
            if verdict is not None:
                moved = rollouts.judged(moved, str(verdict.outcome), verdict.summary, seen, now)
            gates = [e for e in effects if isinstance(e, rollouts.Gate)]
            if gates:
                moved = await self._ask(environment, moved, gates[0], now)
            if moved == status:
                break
            effects = self._explained(environment, plan, effects)
            saved = self.ctx.store.save_rollout(
                environment.id,
                expected_version=environment.rollout_version,
                status=moved,
                effects=effects,
            )
            if saved is None:
                break  # an intent was recorded meanwhile: the next pass starts from it
            if verdict is not None:
                self._record_verdict(environment, judging[0], verdict, now)
            self._announce(environment, saved, effects, took if served else None)
            await self._notify(environment, effects)
            done += effects
            environment = saved
        if waiting is not None and any(isinstance(e, rollouts.WeightSet) for e in done):
            self.ctx.store.add_event(
                environment.id, EventType.SWITCHING, f"{waiting}; waiting for the router to confirm"
            )
        return environment, tuple(done), waiting

    async def _judge(
        self,
        environment: Environment,
        status: rollouts.RolloutStatus,
        judge: rollouts.Judge,
        now: float,
    ) -> Verdict | None:
        """The verdict of a window, computed in a thread (the statistics import scipy the
        first time, and a judgement must never hold the event loop), with the spec's own
        metrics read from Prometheus meanwhile (controllers/prometheus.py)."""
        analysis = status.strategy.analysis
        if analysis is None:
            return None
        criteria = criteria_of(analysis.criteria)
        verdict, metrics = await asyncio.gather(
            asyncio.to_thread(judge_window, judge, criteria),
            prometheus.metric_checks(self.ctx.settings, environment, status, judge.since, now),
        )
        verdict = combined(verdict, metrics, judge.canary, judge.stable)
        if verdict.needed_requests is None:
            return verdict
        wait = _time_needed(judge, verdict.needed_requests, now)
        return replace(verdict, summary=verdict.summary + (f": about {wait}" if wait else ""))

    def _record_verdict(
        self, environment: Environment, judge: rollouts.Judge, verdict: Verdict, now: float
    ) -> None:
        status = environment.rollout
        assert status.canary is not None
        seconds = max(now - judge.since, 1e-9)
        detail = verdict.to_json() | {
            "window_seconds": round(now - judge.since, 3),
            "canary": {
                "requests": judge.canary.requests,
                "failed": judge.canary.failed,
                "rate": round(judge.canary.requests / seconds, 3),
            },
            "baseline": {
                "requests": judge.stable.requests,
                "failed": judge.stable.failed,
                "rate": round(judge.stable.requests / seconds, 3),
            },
        }
        self.ctx.store.add_verdict(
            environment.id,
            release=status.canary.release,
            step=status.step_index + 1,
            weight=status.weight,
            outcome=str(verdict.outcome),
            summary=verdict.summary,
            detail=detail,
        )
        self.ctx.store.add_event(
            environment.id,
            EventType.ROLLOUT,
            f"v{status.canary.release} at {rollouts.percent(status.weight)}: {verdict.summary}",
        )
        auditing.record(
            self.ctx,
            environment,
            "canary verdict",
            outcome="failed" if str(verdict.outcome) == "fail" else "ok",
            release=f"v{status.canary.release}",
            weight=rollouts.percent(status.weight),
            verdict=str(verdict.outcome),
            summary=verdict.summary,
        )

    async def _ask(
        self,
        environment: Environment,
        status: rollouts.RolloutStatus,
        gate: rollouts.Gate,
        now: float,
    ) -> rollouts.RolloutStatus:
        """The pre-step webhooks of a step: all answering 2xx let its weight be set; any
        other answer holds it (and says so, once per distinct answer)."""
        hooks = status.strategy.hooks("pre-step")
        answers = await self._call(environment, hooks, "pre-step", gate.step_index, gate.weight)
        failed = [a for a in answers if not a.ok]
        if not failed:
            return rollouts.gate_passed(status, gate.step_index)
        why = "; ".join(f"webhook {a.url} answered {a.detail}" for a in failed)
        held = rollouts.gate_held(status, gate.step_index, why, now)
        if held.note != status.note:
            self.ctx.store.add_event(environment.id, EventType.ROLLOUT, held.note or why)
        return held

    async def _notify(self, environment: Environment, effects: tuple[rollouts.Effect, ...]) -> None:
        """The `promoted` and `aborted` webhooks, once the rollout has ended so."""
        strategy = environment.rollout.strategy
        for effect in effects:
            event = {rollouts.Promoted: "promoted", rollouts.Aborted: "aborted"}.get(type(effect))
            if event is None or not strategy.hooks(event):
                continue
            for answer in await self._call(environment, strategy.hooks(event), event, None, None):
                self.ctx.store.add_event(
                    environment.id,
                    EventType.ROLLOUT,
                    f"webhook {answer.url} ({event}) answered {answer.detail}",
                )

    async def _call(
        self,
        environment: Environment,
        hooks: tuple[rollouts.Webhook, ...],
        event: str,
        step_index: int | None,
        weight: int | None,
    ) -> list[webhooks.Answer]:
        status = environment.rollout
        release = status.canary or status.stable
        payload = {
            "event": event,
            "app": environment.app,
            "environment": environment.name,
            "release": f"v{release.release}" if release else None,
            "step": None if step_index is None else step_index + 1,
            "weight": None if weight is None else weight / 100,
        }
        if self.http is None:
            self.http = httpx.AsyncClient()
        secrets = self._signing_secrets(environment, hooks, release)
        return await webhooks.call(self.http, hooks, payload, secrets=secrets, now=self.ctx.clock())

    def _signing_secrets(
        self,
        environment: Environment,
        hooks: tuple[rollouts.Webhook, ...],
        release: rollouts.Side | None,
    ) -> dict[str, str]:
        """The secret values the hooks sign with, from the config of the release they are
        told about; a variable that is not secret is not used."""
        names = {hook.secret for hook in hooks if hook.secret is not None}
        if not names or release is None:
            return {}
        config = self.ctx.vault.open(self.ctx.store.sealed_config(environment.id, release.release))
        return {
            name: entry.value
            for name, entry in config.items()
            if name in names and entry.secret and entry.value
        }

    async def _counters(
        self, environment: Environment
    ) -> tuple[Mapping[str, Measurement] | None, float | None]:
        if self.counters is None or environment.rollout.strategy.analysis is None:
            return None, None
        return await self.counters(environment)

    def _explained(
        self, environment: Environment, plan: plans.Plan, effects: tuple[rollouts.Effect, ...]
    ) -> tuple[rollouts.Effect, ...]:
        """An abort for a failing replica carries the end of that replica's output."""
        failing = plan.failing
        if failing is None or failing.service is None:
            return effects
        explained: list[rollouts.Effect] = []
        for effect in effects:
            if isinstance(effect, rollouts.Aborted) and effect.reason == failing.reason:
                tail = self.launcher.log_tail(
                    environment, failing.service, failing.index, environment.target_generation
                )
                if tail:
                    effect = rollouts.Aborted(effect.release, f"{effect.reason}\n{tail}")
            explained.append(effect)
        return tuple(explained)

    def _announce(
        self,
        before: Environment,
        after: Environment,
        effects: tuple[rollouts.Effect, ...],
        took: float | None,
    ) -> None:
        store = self.ctx.store
        canary = before.rollout.strategy.is_canary
        for effect in effects:
            match effect:
                case rollouts.WeightSet(weight=weight, step_index=index) if canary:
                    steps = len(before.rollout.strategy.steps)
                    store.add_event(
                        before.id,
                        EventType.ROLLOUT,
                        f"v{before.release}: {rollouts.percent(weight)} of clients "
                        f"(step {index + 1} of {steps})",
                    )
                    auditing.record(
                        self.ctx,
                        before,
                        "rollout step",
                        release=f"v{before.release}",
                        step=index + 1,
                        weight=rollouts.percent(weight),
                    )
                case rollouts.Promoted(release=release, generation=generation, previous=previous):
                    if generation != release:
                        how = f" (on the processes of v{generation})"
                    elif took is not None:
                        how = f" (traffic on v{generation} in {took:.0f} ms)"
                    else:
                        how = ""
                    warm = after.rollout.warm
                    kept = (
                        f"; v{previous.generation} kept warm"
                        if previous is not None and warm is not None and warm == previous
                        else ""
                    )
                    store.add_event(before.id, EventType.SWITCHED, f"v{release} is live{how}{kept}")
                    auditing.record(self.ctx, before, "rollout promoted", release=f"v{release}")
                case rollouts.Aborted(release=release, reason=reason):
                    stable = after.rollout.stable
                    serving = f"; v{stable.release} keeps serving" if stable is not None else ""
                    store.add_event(
                        before.id,
                        EventType.DEPLOY_FAILED,
                        f"deploy of v{release} failed{serving}: {reason}",
                    )
                    auditing.record(
                        self.ctx,
                        before,
                        "rollout aborted",
                        outcome="failed",
                        release=f"v{release}",
                        reason=reason,
                    )

    def abort(self, environment: Environment, reason: str) -> Environment:
        """The controller's own abort (a build or hook failed, retries ran out): recorded as
        an intent, carried out by the next `step`."""
        store = self.ctx.store
        if environment.rollout.canary is None or environment.rollout.aborted is not None:
            return environment
        return store.change_rollout(
            environment.id,
            lambda status: rollouts.abort(status, reason) if status.canary else status,
        )


def criteria_of(numbers: Mapping[str, float]) -> Criteria:
    """The analysis's criteria from the numbers a strategy keeps."""
    whole = {"min_requests", "looks"}
    return Criteria(
        **{key: int(value) if key in whole else value for key, value in numbers.items()}  # type: ignore[arg-type]
    )


def judge_window(judge: rollouts.Judge, criteria: Criteria) -> Verdict:
    return analysis_judge(judge.canary, judge.stable, criteria)


def _time_needed(judge: rollouts.Judge, needed: Needed, now: float) -> str | None:
    """How long the next verdict's requests take at each side's rate over this window."""
    seconds = now - judge.since
    if seconds <= 0:
        return None
    waits = []
    for more, side in ((needed.canary, judge.canary), (needed.baseline, judge.stable)):
        if more <= 0:
            continue
        if side.requests == 0:
            return "no request has reached it yet"
        waits.append(more / (side.requests / seconds))
    if not waits:
        return None
    wait = max(waits)
    if wait < 90:
        return f"{wait:.0f}s at the current rate"
    if wait < 5400:
        return f"{wait / 60:.0f}m at the current rate"
    return f"{wait / 3600:.1f}h at the current rate"


def _awaited(status: rollouts.RolloutStatus) -> str:
    canary = status.canary
    assert canary is not None
    if status.aborted is not None or status.weight == 0:
        return f"traffic moving back from v{canary.release}"
    if status.weight == rollouts.WEIGHT_SCALE:
        return f"v{canary.release}: traffic moving to v{canary.generation}"
    return f"v{canary.release}: {rollouts.percent(status.weight)} of clients moving to it"


def _needs_router(status: rollouts.RolloutStatus) -> bool:
    """Whether this step waits on the router: a weight not confirmed yet, or an abort of a
    canary that clients may have been sent to."""
    if status.aborted is not None:
        return status.exposed
    return status.weight != status.served and (status.weight > 0 or status.exposed)
