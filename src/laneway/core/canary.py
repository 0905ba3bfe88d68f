"""A canary's strategy: the spec's `canary:` section, with what the command overrides. Pure.

`laneway canary start` sends its options; the API validates the merged section with the
spec's own model (`spec.canary.Canary`), so a bad step is refused with the same words in a
request as in a file, and this turns it into the `rollouts.Strategy` the rollout keeps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from laneway.core import rollouts
from laneway.errors import InvalidInput
from laneway.spec.canary import Canary, basis_points, interval_seconds, pause_seconds


def merged(section: Canary, overrides: Mapping[str, Any]) -> Canary:
    """The spec's section with the command's values over it; InvalidInput names the field."""
    data = section.model_dump()
    data.update({key: value for key, value in overrides.items() if value is not None})
    try:
        return Canary.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {_reason(error['msg'])}"
            for error in exc.errors()
        )
        raise InvalidInput(f"canary: {problems}") from None


def _reason(message: str) -> str:
    return message.removeprefix("Value error, ")


def strategy(section: Canary) -> rollouts.Strategy:
    steps: list[rollouts.Step] = []
    for step in section.steps:
        if isinstance(step, str):
            steps.append(rollouts.Pause(pause_seconds(step)))
        else:
            points = basis_points(step)
            assert points is not None  # the model checked it
            steps.append(rollouts.SetWeight(points))
    sticky = section.sticky
    return rollouts.Strategy(
        steps=tuple(steps),
        analysis=rollouts.Analysis(
            interval=interval_seconds(section.interval),
            failure_limit=section.failure_limit,
        ),
        sticky_header=sticky.header.lower() if sticky and sticky.header else None,
        sticky_cookie=sticky.cookie if sticky else None,
    )
