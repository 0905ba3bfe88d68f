"""The records of a rollout (core/rollouts.py): its steps and strategy, the status the
store keeps, what the reconciler saw, and the effects of a move. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from laneway.core.measurements import Measurement
from laneway.core.routing import WEIGHT_SCALE
from laneway.errors import InvalidInput


@dataclass(frozen=True)
class SetWeight:
    """Send `weight` basis points of clients to the canary (10000: all of them)."""

    weight: int


@dataclass(frozen=True)
class Pause:
    """Hold the current weight: for `seconds`, or (None) until `laneway canary resume`."""

    seconds: float | None = None


Step = SetWeight | Pause


@dataclass(frozen=True)
class Metric:
    """A team's own metric, a PromQL query evaluated for each side (`analysis/external.py`).

    `query` holds `{{release}}` (and perhaps `{{interval}}`, `{{environment}}`, `{{app}}`).
    `higher_is_better` says which way is worse. The canary may be worse than the baseline
    by `relative` (a fraction of the baseline's value) or by `absolute` (in the query's
    units), and never worse than `limit`; the spec sets at least one of the three."""

    name: str
    query: str
    higher_is_better: bool = False
    relative: float | None = None
    absolute: float | None = None
    limit: float | None = None


@dataclass(frozen=True)
class Analysis:
    """How each weight is judged: held at least `interval` seconds, then canary against
    stable over the same window; `failure_limit` failed verdicts are tolerated, one more
    aborts. `criteria` are the analysis's thresholds, as the spec or the command gave them;
    `metrics`, queries of the team's Prometheus judged alongside the router's counts.
    `warmup`: seconds after a weight is served before its window opens, so a fresh
    process's first, colder requests are not judged (Spinnaker's warm-up)."""

    interval: float = 60.0
    failure_limit: int = 0
    criteria: Mapping[str, float] = field(default_factory=dict)
    metrics: tuple[Metric, ...] = ()
    warmup: float = 0.0


WEBHOOK_EVENTS = ("pre-step", "promoted", "aborted")
"""When a rollout calls a webhook: before each weight (a failing one holds the step), once
it is promoted, once it is aborted."""


@dataclass(frozen=True)
class Webhook:
    url: str
    on: tuple[str, ...] = ("pre-step",)
    timeout: float = 10.0
    secret: str | None = None
    """The name of a secret config variable of the environment whose value signs each call
    (`core.signing`); the name only, never the value."""


@dataclass(frozen=True)
class Strategy:
    """The steps of one rollout, fixed when it starts (a spec changed meanwhile does not
    reshape it). A deploy is one step of 100% with no analysis."""

    steps: tuple[Step, ...] = (SetWeight(WEIGHT_SCALE),)
    analysis: Analysis | None = None
    sticky_header: str | None = None
    sticky_cookie: str | None = None
    webhooks: tuple[Webhook, ...] = ()
    hold_limit: float = 3600.0
    """Seconds a step's pre-step webhooks may keep saying no before the rollout aborts."""

    def hooks(self, event: str) -> tuple[Webhook, ...]:
        return tuple(hook for hook in self.webhooks if event in hook.on)

    def __post_init__(self) -> None:
        for number, step in enumerate(self.steps, 1):
            if isinstance(step, SetWeight) and not 0 <= step.weight <= WEIGHT_SCALE:
                raise InvalidInput(
                    f"step {number}: a weight is 0 to {WEIGHT_SCALE} basis points, "
                    f"got {step.weight}"
                )
            if isinstance(step, Pause) and step.seconds is not None and step.seconds < 0:
                raise InvalidInput(f"step {number}: a pause lasts 0 seconds or more")
        if not self.steps or self.steps[-1] != SetWeight(WEIGHT_SCALE):
            # a rollout ends with all clients on the canary, confirmed, before it is promoted
            object.__setattr__(self, "steps", (*self.steps, SetWeight(WEIGHT_SCALE)))

    @property
    def is_canary(self) -> bool:
        return len(self.steps) > 1 or self.analysis is not None


@dataclass(frozen=True)
class Side:
    """A release and the generation whose processes serve it (a rollback or a scale reuses
    earlier processes: the generation is then an older release's number)."""

    release: int
    generation: int

    @property
    def label(self) -> str:
        return f"v{self.generation}"


@dataclass(frozen=True)
class Window:
    """Where the current analysis window began: when, and each side's counts then."""

    since: float
    canary: Measurement
    stable: Measurement
    epoch: float | None = None
    """When the router whose counts these are started: another start means they began
    again from zero, and the window is opened again."""


@dataclass(frozen=True)
class RolloutStatus:
    stable: Side | None = None
    canary: Side | None = None
    strategy: Strategy = Strategy()
    step_index: int = 0
    weight: int = 0
    """Basis points of clients the canary is to get now."""
    served: int | None = None
    """The weight the router last confirmed it serves (None: not confirmed yet)."""
    exposed: bool = False
    """The router may have been handed a weight above 0 for this canary: an abort then waits
    for the router to serve 0 before the canary's processes may go."""
    step_since: float | None = None
    """When the current step began: its weight served, or its pause entered."""
    window: Window | None = None
    paused: tuple[str, ...] = ()
    aborted: str | None = None
    failures: int = 0
    warm: Side | None = None
    warm_until: float = 0.0
    ended: str | None = None
    """How the last rollout ended: `promoted` or `aborted`; None while one runs."""
    judged_at: float | None = None
    """When the current window was last judged inconclusive: the next look waits an interval
    from then, so waiting for data does not judge (and risk a false alarm) at every pass."""
    note: str | None = None
    """The last verdict's summary, or why the rollout waits."""
    gate: int | None = None
    """The step whose pre-step webhooks said yes; its weight may be set."""
    held_at: float | None = None
    """When a pre-step webhook last said no (or did not answer): asked again after a while."""
    held_since: float | None = None
    """When the current step's pre-step webhooks first said no (None: they have not, or
    have said yes since): held longer than `Strategy.hold_limit`, the rollout aborts."""

    @property
    def wanted(self) -> Side | None:
        """The release wanted: the one rolling out, else the stable one."""
        return self.canary or self.stable

    @property
    def rolling(self) -> bool:
        return self.canary is not None


@dataclass(frozen=True)
class Seen:
    """What the environment reconciler observed for one pass of `advance`."""

    ready: bool
    """Every replica of the canary's generation may take traffic."""
    failing: str | None = None
    """Why the canary cannot serve (a replica unhealthy past its grace, a crash loop)."""
    served: bool | None = None
    """Whether the router serves the table computed from this very status."""
    counters: Mapping[str, Measurement] | None = None
    """The route's counts per release label, since the router started; None: unknown."""
    epoch: float | None = None
    """When that router started (None: the data plane does not say)."""
    keep_warm: float = 2.0
    """Seconds the old stable release keeps running after a promotion."""


@dataclass(frozen=True)
class WeightSet:
    """The canary's weight changed: the router is to serve `weight` (not yet confirmed)."""

    weight: int
    step_index: int


@dataclass(frozen=True)
class Promoted:
    """The canary became the stable release (the router serves it to all clients)."""

    release: int
    generation: int
    previous: Side | None


@dataclass(frozen=True)
class Aborted:
    """The rollout ended without promotion: the release is failed, stable alone serves."""

    release: int
    reason: str


@dataclass(frozen=True)
class Gate:
    """Ask the pre-step webhooks before step `step_index` sets `weight`."""

    step_index: int
    weight: int


@dataclass(frozen=True)
class Judge:
    """An interval is up: judge the canary against stable over this window."""

    canary: Measurement
    stable: Measurement
    since: float


Effect = WeightSet | Promoted | Aborted | Judge | Gate
