"""How a pass of the environment reconciler went, and the failure retrying cannot fix."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from laneway.core import environments as plans
from laneway.core import rollouts
from laneway.core.types import Environment
from laneway.errors import LanewayError


class Outcome(Enum):
    """How a pass went: the manager passes again at once, on its tick, or after a backoff."""

    PROGRESSED = "progressed"
    IDLE = "idle"
    RETRY = "retry"


class PermanentFailure(LanewayError):
    """Retrying will not help until the user changes something (a failed build or hook)."""


@dataclass(frozen=True)
class PassResult:
    """What one pass did: the environment as recorded after it (None once deleted), how it
    went, the actions it applied and the rollout's effects (none: the environment had
    converged)."""

    environment: Environment | None
    outcome: Outcome
    actions: tuple[plans.Action | rollouts.Effect, ...] = ()
