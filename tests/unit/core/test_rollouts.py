"""The rollout state machine (core/rollouts.py): transitions as tables, phases derived."""

from __future__ import annotations

from dataclasses import replace

import pytest

from laneway.core import rollouts
from laneway.core.measurements import Measurement
from laneway.core.rollouts import (
    Aborted,
    Analysis,
    Judge,
    Pause,
    Promoted,
    RolloutPhase,
    RolloutStatus,
    Seen,
    SetWeight,
    Side,
    Strategy,
)
from laneway.errors import Conflict, InvalidInput

V1, V2 = Side(1, 1), Side(2, 2)
STABLE = RolloutStatus(stable=V1, ended="promoted")
READY = Seen(ready=True)
SERVED = Seen(ready=True, served=True)
CANARY = Strategy(
    steps=(SetWeight(100), SetWeight(500), Pause(None), SetWeight(5000)),
    analysis=Analysis(interval=60.0, failure_limit=1),
)


def counts(requests: int, failed: int = 0) -> Measurement:
    return Measurement(requests=requests, statuses=(0, requests - failed, 0, 0, failed))


def run(status: RolloutStatus, seen: Seen, now: float = 0.0) -> tuple[RolloutStatus, list[str]]:
    status, effects = rollouts.advance(status, seen, now)
    return status, [type(e).__name__ for e in effects]


def test_a_deploy_is_one_step_of_all_clients_then_promoted_with_the_old_stable_warm() -> None:
    status = rollouts.start(STABLE, V2, Strategy())
    assert status.strategy.steps == (SetWeight(10_000),)
    status, done = run(status, Seen(ready=False))
    assert (status.weight, done) == (0, []), "nothing moves before the canary is ready"
    status, done = run(status, READY)
    assert (status.weight, status.served, done) == (10_000, 0, ["WeightSet"])
    status, done = run(status, Seen(ready=True, served=False))
    assert done == [] and status.stable == V1, "a weight counts once the router serves it"
    status, effects = rollouts.advance(status, replace(SERVED, keep_warm=30.0), 100.0)
    assert effects == (Promoted(2, 2, V1),)
    assert (status.stable, status.canary, status.warm, status.warm_until) == (V2, None, V1, 130.0)
    assert rollouts.phase(status) == (RolloutPhase.PROMOTED, "v2 serves all traffic")
    assert rollouts.advance(status, SERVED, 101.0) == (status, ()), "converged: nothing again"


def test_a_first_release_is_promoted_with_nothing_kept_warm() -> None:
    status = rollouts.first(1)
    assert rollouts.phase(status)[0] is RolloutPhase.PROGRESSING
    status, _ = run(status, READY)
    status, effects = rollouts.advance(status, SERVED, 0.0)
    assert effects == (Promoted(1, 1, None),)
    assert (status.stable, status.warm) == (V1, None)


def test_a_scale_on_the_same_processes_is_promoted_at_once() -> None:
    status = rollouts.start(STABLE, Side(2, 1), Strategy())
    assert rollouts.same_processes(status)
    status, effects = rollouts.advance(status, Seen(ready=False), 0.0)
    assert effects == (Promoted(2, 1, V1),)
    assert status.stable == Side(2, 1) and status.warm is None


def test_a_rollback_to_warm_processes_keeps_the_one_it_leaves_warm() -> None:
    after = replace(STABLE, stable=V2, warm=V1, warm_until=50.0)
    status = rollouts.start(after, Side(3, 1), Strategy())
    status, _ = run(status, READY)
    status, effects = rollouts.advance(status, replace(SERVED, keep_warm=2.0), 10.0)
    assert effects == (Promoted(3, 1, V2),)
    assert (status.stable, status.warm, status.warm_until) == (Side(3, 1), V2, 12.0)


def test_a_canary_walks_its_steps_judged_at_each_interval() -> None:
    status = rollouts.start(STABLE, V2, CANARY)
    status, done = run(status, READY)
    assert (status.weight, done) == (100, ["WeightSet"])
    assert rollouts.phase(status) == (RolloutPhase.PROGRESSING, "v2 at 1% (step 1 of 5)")
    seen = replace(SERVED, counters={"v2": counts(10), "v1": counts(1000)})
    status, done = run(status, seen, 0.0)
    assert done == [] and status.window is not None and status.window.since == 0.0
    status, done = run(status, seen, 30.0)
    assert done == [], "an interval is not up yet"
    later = replace(SERVED, counters={"v2": counts(110, 1), "v1": counts(11000, 100)})
    status, effects = rollouts.advance(status, later, 60.0)
    assert effects == (Judge(counts(100, 1), counts(10000, 100), 0.0),)
    status = rollouts.judged(status, "pass", "fine", later, 60.0)
    status, done = run(status, later, 60.0)
    assert (status.step_index, status.weight, done) == (1, 500, ["WeightSet"])


def test_a_pause_step_holds_until_resumed() -> None:
    status = replace(
        rollouts.start(STABLE, V2, CANARY), step_index=2, weight=500, served=500, exposed=True
    )
    status, done = run(status, SERVED, 5.0)
    assert status.paused == ("step 3: paused until resumed",) and done == []
    assert rollouts.phase(status)[0] is RolloutPhase.PAUSED
    assert run(status, SERVED, 1000.0)[0] == status, "a paused rollout stays"
    status = rollouts.resume(status, 1000.0)
    status, done = run(status, SERVED, 1000.0)
    assert (status.step_index, status.weight, done) == (3, 5000, ["WeightSet"])


def test_a_timed_pause_goes_on_by_itself() -> None:
    strategy = Strategy(steps=(SetWeight(100), Pause(30.0)))
    status = replace(rollouts.start(STABLE, V2, strategy), weight=100, served=100, exposed=True)
    status, _ = run(status, SERVED, 0.0)
    assert (status.step_index, status.step_since) == (1, 0.0)
    assert run(status, SERVED, 10.0)[0].step_index == 1
    status, done = run(status, SERVED, 31.0)
    assert (status.step_index, status.weight, done) == (2, 10_000, ["WeightSet"])


@pytest.mark.parametrize(
    ("outcome", "failures", "aborted"),
    [("pass", 0, None), ("inconclusive", 0, None), ("fail", 1, None)],
)
def test_verdicts(outcome: str, failures: int, aborted: str | None) -> None:
    status = replace(rollouts.start(STABLE, V2, CANARY), weight=100, served=100, exposed=True)
    seen = replace(SERVED, counters={"v2": counts(100), "v1": counts(1000)})
    window = rollouts.Window(0.0, counts(0), counts(0))
    status = replace(status, window=window)
    judged = rollouts.judged(status, outcome, "why", seen, 60.0)
    assert (judged.failures, judged.aborted) == (failures, aborted)
    if outcome == "inconclusive":
        assert judged.window == window, "the window goes on gathering"
    if outcome == "fail":
        assert judged.window is not None and judged.window.since == 60.0


def test_failed_verdicts_past_the_limit_abort_and_the_release_goes_once_the_router_agrees() -> None:
    status = replace(
        rollouts.start(STABLE, V2, CANARY), weight=500, served=500, exposed=True, failures=1
    )
    seen = Seen(ready=True, counters={})
    status = rollouts.judged(status, "fail", "error rate 5% > 1%", seen, 60.0)
    assert (status.aborted, status.weight) == ("verdict: error rate 5% > 1%", 0)
    assert rollouts.phase(status)[0] is RolloutPhase.ABORTING
    held, done = run(status, Seen(ready=True, served=False))
    assert held == status and done == [], "clients may still reach it"
    status, effects = rollouts.advance(status, Seen(ready=True, served=True), 61.0)
    assert effects == (Aborted(2, "verdict: error rate 5% > 1%"),)
    assert (status.canary, status.stable, status.ended) == (None, V1, "aborted")
    assert rollouts.phase(status) == (RolloutPhase.ABORTED, "aborted: verdict: error rate 5% > 1%")


def test_a_failing_canary_that_never_had_clients_is_let_go_at_once() -> None:
    status = rollouts.start(STABLE, V2, Strategy())
    status, effects = rollouts.advance(status, Seen(ready=False, failing="web/0 unhealthy"), 0.0)
    assert effects == (Aborted(2, "web/0 unhealthy"),)
    assert status.canary is None and status.stable == V1


def test_promote_skips_to_all_clients_and_abort_sends_them_back() -> None:
    status = replace(rollouts.start(STABLE, V2, CANARY), weight=100, served=100, exposed=True)
    promoted = rollouts.promote(status)
    promoted, done = run(promoted, SERVED)
    assert (promoted.weight, done) == (10_000, ["WeightSet"])
    aborted = rollouts.abort(status, "by hand")
    assert (aborted.weight, aborted.aborted) == (0, "by hand")


@pytest.mark.parametrize(
    "intent",
    [
        lambda s: rollouts.pause(s, "by hand"),
        lambda s: rollouts.resume(s, 0.0),
        rollouts.promote,
        lambda s: rollouts.abort(s, "x"),
    ],
)
def test_intents_need_a_rollout_under_way(intent) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Conflict):
        intent(STABLE)


def test_one_rollout_at_a_time() -> None:
    with pytest.raises(Conflict, match="the rollout of v2 is under way"):
        rollouts.start(rollouts.start(STABLE, V2, Strategy()), Side(3, 3), Strategy())


def test_a_router_restart_reopens_the_window() -> None:
    status = replace(rollouts.start(STABLE, V2, CANARY), weight=100, served=100, exposed=True)
    status = replace(status, window=rollouts.Window(0.0, counts(500), counts(5000)))
    restarted = replace(SERVED, counters={"v2": counts(3), "v1": counts(30)})
    status, done = run(status, restarted, 61.0)
    assert done == [] and status.window == rollouts.Window(61.0, counts(3), counts(30))


@pytest.mark.parametrize(
    ("steps", "problem"),
    [((SetWeight(10_001),), "0 to 10000"), ((Pause(-1.0),), "0 seconds or more")],
)
def test_bad_steps_are_refused(steps: tuple[rollouts.Step, ...], problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem):
        Strategy(steps=steps)


@pytest.mark.parametrize(
    ("weight", "shown"), [(1, "0.01%"), (10, "0.1%"), (500, "5%"), (10_000, "100%")]
)
def test_weights_read_as_percents(weight: int, shown: str) -> None:
    assert rollouts.percent(weight) == shown


def test_the_status_survives_its_json() -> None:
    status = replace(
        rollouts.start(STABLE, V2, replace(CANARY, sticky_header="x-user")),
        weight=500,
        served=100,
        exposed=True,
        window=rollouts.Window(1.0, counts(5, 1), counts(50)),
        paused=("by hand",),
        warm=V1,
        warm_until=9.5,
    )
    assert rollouts.from_json(rollouts.to_json(status)) == status
    assert rollouts.from_json({}) == RolloutStatus()


def test_a_failing_canary_with_clients_is_let_go_only_once_the_router_serves_zero() -> None:
    status = replace(rollouts.start(STABLE, V2, CANARY), weight=500, served=500, exposed=True)
    aborted, effects = rollouts.advance(status, Seen(ready=False, failing="crash", served=True), 0)
    assert (aborted.canary, aborted.weight, aborted.aborted, effects) == (V2, 0, "crash", ())
    held, effects = rollouts.advance(aborted, Seen(ready=False, failing="crash"), 1)
    assert held == aborted and effects == ()
    done, effects = rollouts.advance(aborted, Seen(ready=False, served=True), 2)
    assert done.canary is None and effects == (Aborted(2, "crash"),)


def test_a_window_opened_before_a_router_restart_starts_again() -> None:
    status = replace(rollouts.start(STABLE, V2, CANARY), weight=100, served=100, exposed=True)
    status = replace(status, window=rollouts.Window(0.0, counts(5), counts(50), epoch=1.0))
    grown = replace(SERVED, counters={"v2": counts(900), "v1": counts(9000)}, epoch=2.0)
    status, done = run(status, grown, 61.0)
    assert done == [] and status.window == rollouts.Window(61.0, counts(900), counts(9000), 2.0)


def test_counters_that_cannot_be_read_are_said_once() -> None:
    status = replace(rollouts.start(STABLE, V2, CANARY), weight=100, served=100, exposed=True)
    status = replace(status, window=rollouts.Window(0.0, counts(0), counts(0)))
    noted, _ = run(status, SERVED, 61.0)
    assert noted.note == "waiting: the router's counters cannot be read now"
    assert run(noted, SERVED, 62.0)[0] == noted


def test_resume_needs_a_pause_and_intents_during_an_abort_say_so() -> None:
    status = replace(rollouts.start(STABLE, V2, CANARY), weight=100, served=100, exposed=True)
    with pytest.raises(Conflict, match="the rollout of v2 is not paused"):
        rollouts.resume(status, 0.0)
    aborting = rollouts.abort(status, "by hand")
    with pytest.raises(Conflict, match="the abort of v2 is under way: by hand"):
        rollouts.pause(aborting, "x")


def test_a_warm_up_keeps_a_fresh_weights_first_requests_out_of_its_window() -> None:
    strategy = replace(CANARY, analysis=Analysis(interval=60.0, warmup=30.0))
    status = replace(rollouts.start(STABLE, V2, strategy), weight=100, exposed=True)
    seen = replace(SERVED, counters={"v2": counts(5), "v1": counts(500)})
    status, _ = run(status, seen, 0.0)
    assert (status.served, status.step_since, status.window) == (100, 0.0, None)
    assert run(status, seen, 29.0)[0].window is None, "still warming up"
    warm = replace(SERVED, counters={"v2": counts(50), "v1": counts(5000)})
    status, _ = run(status, warm, 30.0)
    assert status.window == rollouts.Window(30.0, counts(50), counts(5000))
    later = replace(SERVED, counters={"v2": counts(350), "v1": counts(35000)})
    _, effects = rollouts.advance(status, later, 90.0)
    assert effects == (Judge(counts(300), counts(30000), 30.0),)


HOOKED = Strategy(
    steps=(SetWeight(100),),
    webhooks=(rollouts.Webhook("http://ci.example/gate", ("pre-step",), 5.0),),
    hold_limit=600.0,
)


def test_a_step_held_by_its_webhooks_waits_and_is_asked_again() -> None:
    status, effects = rollouts.advance(rollouts.start(STABLE, V2, HOOKED), READY, 0.0)
    assert effects == (rollouts.Gate(0, 100),) and status.weight == 0
    held = rollouts.gate_held(status, 0, "webhook answered 503", 0.0)
    assert (held.held_since, held.note) == (0.0, "step 1 held: webhook answered 503")
    assert run(held, READY, 5.0) == (held, []), "not asked again before HOLD_RETRY"
    assert run(held, READY, rollouts.HOLD_RETRY)[1] == ["Gate"]
    again = rollouts.gate_held(held, 0, "webhook answered 503", 300.0)
    assert (again.held_since, again.held_at) == (0.0, 300.0), "held since the first no"
    passed = rollouts.gate_passed(again, 0)
    assert passed.held_since is None
    assert run(passed, READY, 310.0)[1] == ["WeightSet"]


def test_a_step_held_past_the_hold_limit_aborts_the_rollout() -> None:
    status, _ = rollouts.advance(rollouts.start(STABLE, V2, HOOKED), READY, 0.0)
    held = rollouts.gate_held(status, 0, "webhook answered 503", 0.0)
    still = rollouts.gate_held(held, 0, "webhook answered 503", 599.0)
    assert still.aborted is None
    over = rollouts.gate_held(still, 0, "webhook answered 503", 600.0)
    assert over.aborted == ("step 1 held for 10m, over the hold limit of 10m: webhook answered 503")
    done, effects = rollouts.advance(over, READY, 601.0)
    assert rollouts.phase(done)[0] == RolloutPhase.ABORTED
    assert [type(e).__name__ for e in effects] == ["Aborted"]


def test_resuming_starts_the_hold_limit_again() -> None:
    status, _ = rollouts.advance(rollouts.start(STABLE, V2, HOOKED), READY, 0.0)
    held = rollouts.gate_held(status, 0, "no", 0.0)
    paused = rollouts.pause(held, "looking into the gate")
    resumed = rollouts.resume(paused, 500.0)
    assert resumed.held_since is None
    assert rollouts.gate_held(resumed, 0, "no", 900.0).aborted is None


def test_the_hold_limit_survives_the_store() -> None:
    from laneway.core import rollout_json

    held = rollouts.gate_held(rollouts.start(STABLE, V2, HOOKED), 0, "no", 42.0)
    back = rollout_json.from_json(rollout_json.to_json(held))
    assert (back.strategy.hold_limit, back.held_since) == (600.0, 42.0)
    older = {
        k: v for k, v in rollout_json.to_json(held).items() if k not in ("hold_limit", "held_since")
    }
    assert rollout_json.from_json(older).strategy.hold_limit == 3600.0
