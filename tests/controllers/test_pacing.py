"""When a worker passes next, as a table of outcomes."""

from __future__ import annotations

import pytest

from laneway.controllers.manager import (
    BUSY_INTERVAL,
    MAX_STREAK,
    STEADY_INTERVAL,
    Pacing,
)
from laneway.controllers.outcomes import Outcome
from laneway.core.types import Phase

P, IDLE, R = Outcome.PROGRESSED, Outcome.IDLE, Outcome.RETRY


@pytest.mark.parametrize(
    ("outcomes", "phase", "waits"),
    [
        ([P, P, IDLE], Phase.STARTING, [0.0, 0.0, BUSY_INTERVAL]),
        ([IDLE], Phase.RUNNING, [STEADY_INTERVAL]),
        ([IDLE], Phase.DEGRADED, [STEADY_INTERVAL]),
        ([R, R, R, IDLE], Phase.PROVISIONING, [0.5, 1.0, 2.0, BUSY_INTERVAL]),
        ([R, R, P, R], Phase.PROVISIONING, [0.5, 1.0, 0.0, 0.5]),
    ],
)
def test_waits(outcomes: list[Outcome], phase: Phase, waits: list[float]) -> None:
    pacing = Pacing()
    assert [pacing.after(o, phase) for o in outcomes] == waits


def test_a_plan_that_never_settles_cannot_spin() -> None:
    pacing = Pacing()
    waits = [pacing.after(P, Phase.DEPLOYING) for _ in range(MAX_STREAK + 1)]
    assert waits[:MAX_STREAK] == [0.0] * MAX_STREAK
    assert waits[MAX_STREAK] == BUSY_INTERVAL
    assert pacing.after(P, Phase.DEPLOYING) == 0.0, "the streak starts again"
