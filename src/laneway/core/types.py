"""The records every layer speaks: what the store holds and the controllers plan over. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from laneway.core.rollouts import RolloutStatus


class Kind(StrEnum):
    DEVELOPMENT = "development"
    PREVIEW = "preview"
    STAGING = "staging"
    PRODUCTION = "production"


class Desired(StrEnum):
    RUNNING = "running"
    DELETED = "deleted"


class Phase(StrEnum):
    PENDING = "pending"
    BUILDING = "building"
    PROVISIONING = "provisioning"
    STARTING = "starting"
    RUNNING = "running"
    DEGRADED = "degraded"
    DEPLOYING = "deploying"
    FAILED = "failed"
    DELETING = "deleting"


class ReleaseState(StrEnum):
    """pending -> live -> superseded, or pending -> failed (traffic never moved to it).

    `superseded` means it was live once; a protected environment takes only builds that
    were live (or superseded) in the environment before it in the pipeline."""

    PENDING = "pending"
    LIVE = "live"
    FAILED = "failed"
    SUPERSEDED = "superseded"

    @property
    def ran_healthy(self) -> bool:
        return self in (ReleaseState.LIVE, ReleaseState.SUPERSEDED)


class ReplicaState(StrEnum):
    """How the controller last saw one replica: pending -> starting -> healthy (with a health
    check) or running (without one, once up a while); unhealthy past its grace; backoff after
    it exited, until its restart."""

    PENDING = "pending"
    STARTING = "starting"
    HEALTHY = "healthy"
    RUNNING = "running"
    UNHEALTHY = "unhealthy"
    BACKOFF = "backoff"

    @property
    def up(self) -> bool:
        """Whether the replica may take traffic."""
        return self in (ReplicaState.HEALTHY, ReplicaState.RUNNING)


class ResourceType(StrEnum):
    POSTGRES = "postgres"
    SQLITE = "sqlite"
    DIRECTORY = "directory"


class EventType(StrEnum):
    """What an environment's event is about; the API and its event stream send the value."""

    CREATED = "created"
    BUILD = "build"
    BUILD_OUTPUT = "build.output"
    BUILT = "built"
    UNPACKED = "unpacked"
    PROVISIONED = "provisioned"
    HOOK = "hook"
    STARTED = "started"
    STOPPED = "stopped"
    DEPLOY = "deploy"
    SWITCHING = "switching"
    SWITCHED = "switched"
    ROLLOUT = "rollout"
    """A rollout's step: the canary's weight, a pause, a verdict."""
    DEPLOY_FAILED = "deploy.failed"
    PHASE = "phase"
    FAILED = "failed"
    ERROR = "error"
    DESTROY = "destroy"
    RUN = "run"
    """A one-off process (`laneway run`): who ran what, and how it ended; never its output."""
    DELETED = "deleted"
    CONFIG_REVEALED = "config.revealed"


class Role(StrEnum):
    """What a principal may do; each role may do what the ones before it may (docs/access.md).
    A developer changes environments that are not protected, a deployer protected ones too."""

    VIEWER = "viewer"
    DEVELOPER = "developer"
    DEPLOYER = "deployer"
    ADMIN = "admin"

    def includes(self, other: Role) -> bool:
        order = list(Role)
        return order.index(self) >= order.index(other)


@dataclass(frozen=True)
class Release:
    """A numbered pairing, per environment, of a build with the config in force."""

    environment_id: str
    number: int
    build_id: str | None
    commit: str | None
    config_version: int
    state: ReleaseState
    message: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    description: str = ""
    """What made it: `deploy main (3f2a…)`, `promote from staging v4`, `config set A`, ..."""
    generation: int = 0
    """The release whose processes serve it: itself, or an earlier identical one still warm."""
    hotfix_reason: str | None = None
    config: tuple[ConfigVar, ...] = ()
    replicas: dict[str, int] = field(default_factory=dict)
    """Replica counts set by `laneway scale`, over the spec's; kept by later releases."""
    restarts: dict[str, float] = field(default_factory=dict)
    """Service -> when `laneway restart ENV SERVICE` asked for it (epoch seconds)."""
    flags_version: int | None = None
    """The environment's flag set version when it went live (None: not live yet, or no flags)."""

    @property
    def name(self) -> str:
        return f"v{self.number}"


@dataclass(frozen=True)
class ConfigVar:
    """One config variable of a release. `value` is None when it is not to be shown (a secret
    read by a client); `fingerprint` identifies the value without revealing it."""

    key: str
    value: str | None
    secret: bool
    fingerprint: str


@dataclass(frozen=True)
class App:
    name: str
    repo: str
    created_at: datetime


@dataclass(frozen=True)
class BuildRecord:
    id: str
    app: str
    commit: str
    ref: str
    spec_text: str
    spec_digest: str
    created_at: datetime


@dataclass(frozen=True)
class Environment:
    id: str
    app: str
    name: str
    kind: Kind
    branch: str | None
    ref: str | None
    build_id: str | None
    commit: str | None
    desired: Desired
    phase: Phase
    message: str
    hook_release: int
    failure: str | None
    created_at: datetime
    updated_at: datetime
    replicas: tuple[ReplicaStatus, ...] = ()
    rollout: RolloutStatus = field(default_factory=RolloutStatus)
    """Which release takes how much traffic (core.rollouts): the one truth about it."""
    rollout_version: int = 0
    """Bumped by every write of `rollout`; a write that expected another version is refused."""

    @property
    def release(self) -> int:
        """The newest release wanted: the one rolling out, else the stable one."""
        wanted = self.rollout.wanted
        return wanted.release if wanted is not None else 0

    @property
    def release_name(self) -> str:
        return f"v{self.release}"

    @property
    def target_generation(self) -> int:
        """The generation that should serve the wanted release."""
        wanted = self.rollout.wanted
        return wanted.generation if wanted is not None else 0

    @property
    def live(self) -> int:
        """The stable generation, which the router sends traffic to; 0 before the first."""
        stable = self.rollout.stable
        return stable.generation if stable is not None else 0

    @property
    def warm(self) -> int:
        """The generation that was stable before, kept running for an instant rollback."""
        warm = self.rollout.warm
        return warm.generation if warm is not None else 0

    @property
    def warm_until(self) -> float:
        return self.rollout.warm_until

    @property
    def deploying(self) -> bool:
        """A release rolls out over a stable one (a first release is not a deploy)."""
        return self.live != 0 and self.rollout.canary is not None


@dataclass(frozen=True)
class ReplicaStatus:
    """What the controller last saw of one replica; kept so a restarted server knows the backoff."""

    service: str
    index: int
    release: str = ""
    """The generation the replica belongs to (`v3`)."""
    pid: int | None = None
    port: int | None = None
    state: ReplicaState = ReplicaState.PENDING
    restarts: int = 0
    retry_at: float | None = None
    last_exit: str | None = None
    message: str = ""


@dataclass(frozen=True)
class ResourceRecord:
    environment_id: str
    name: str
    type: ResourceType
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PortLease:
    port: int
    environment_id: str
    service: str
    index: int
    generation: int = 0


@dataclass(frozen=True)
class Event:
    id: int
    environment_id: str
    time: datetime
    type: EventType
    message: str


@dataclass(frozen=True)
class ProcessInfo:
    """One process of an environment as the runtime sees it (alive, or dead and not collected)."""

    key: str
    environment_id: str
    service: str
    index: int
    release: str
    pid: int
    alive: bool
    exit_code: int | None = None
    started_at: float = 0.0
