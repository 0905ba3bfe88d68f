"""Request and response bodies of the HTTP API (pydantic at the edge)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Path
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictStr

from laneway.api.problems import ABSOLUTE_PATH
from laneway.core.types import Environment, Kind, Release
from laneway.spec.names import BUILD_ID, DNS_LABEL


class _Body(BaseModel):
    """A request body: unknown fields are refused, and so is a value of another JSON type
    (`"hotfix": "yes"`, `"to": "2"`): fields are declared with strict types."""

    model_config = ConfigDict(extra="forbid")


def _number(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("expected a JSON number")
    return value


JSON_NUMBER = BeforeValidator(_number)
"""A number as JSON has it, for an int field: `2` or `2.0`, never `"2"` or `true`. Constraints
go before it in `Annotated`, so that the published schema keeps them."""


AppName = Annotated[
    str, Path(pattern=DNS_LABEL, description="The app's name: a lowercase DNS label, e.g. shop.")
]
EnvironmentName = Annotated[
    str,
    Path(
        pattern=DNS_LABEL, description="An environment's name: a lowercase DNS label, e.g. staging."
    ),
]
BuildId = Annotated[
    str,
    Path(
        pattern=BUILD_ID,
        description="A build's id, `sha256:` and its 64 hex digits (a prefix is not found).",
    ),
]
FlagKey = Annotated[
    str,
    Path(
        min_length=1,
        max_length=256,
        description="A flag's key (an imported flagd document may hold any flagd key, so "
        "the rule for keys made by laneway is not asked of it here).",
    ),
]


BuildRef = Annotated[
    StrictStr,
    Field(
        pattern=BUILD_ID,
        description="A build id, or an unambiguous prefix of at least 6 hex digits.",
    ),
]


class HotfixIn(_Body):
    """What lets a protected environment take a build that has not run before it."""

    hotfix: StrictBool = False
    reason: StrictStr | None = Field(default=None, max_length=500)


class AppIn(_Body):
    repo: StrictStr = Field(
        pattern=ABSOLUTE_PATH,
        max_length=4096,
        description="Absolute path of the app's git repository.",
    )


class AppOut(BaseModel):
    name: str
    repo: str
    created_at: datetime


class EnvironmentIn(HotfixIn):
    name: StrictStr = Field(pattern=DNS_LABEL, description="Lowercase DNS label, e.g. feature-x.")
    kind: Kind = Kind.PREVIEW
    branch: StrictStr | None = Field(default=None, min_length=1, max_length=255)
    ref: StrictStr | None = Field(default=None, min_length=1, max_length=255)
    build: BuildRef | None = None


class ReplicaOut(BaseModel):
    service: str
    index: int
    release: str
    pid: int | None
    port: int | None
    state: str
    restarts: int
    message: str


class EnvironmentOut(BaseModel):
    id: str
    app: str
    name: str
    kind: str
    url: str
    branch: str | None
    ref: str | None
    build: str | None
    commit: str | None
    release: str
    serving: str | None
    """The generation (release number of the processes) taking traffic; None before the first."""
    warm: str | None
    """The generation kept running for an instant rollback, if any."""
    warm_until: datetime | None
    desired: str
    phase: str
    message: str
    replicas: list[ReplicaOut]
    created_at: datetime
    updated_at: datetime
    scale: dict[str, int] | None = None
    """Replicas wanted per service by the newest release (its `laneway scale` counts over
    the spec's); given by `GET` of one environment, None elsewhere."""

    @classmethod
    def of(cls, environment: Environment, *, url: str) -> EnvironmentOut:
        return cls(
            id=environment.id,
            app=environment.app,
            name=environment.name,
            kind=str(environment.kind),
            url=url,
            branch=environment.branch,
            ref=environment.ref,
            build=environment.build_id,
            commit=environment.commit,
            release=environment.release_name,
            serving=f"v{environment.live}" if environment.live else None,
            warm=f"v{environment.warm}" if environment.warm else None,
            warm_until=datetime.fromtimestamp(environment.warm_until, UTC)
            if environment.warm
            else None,
            desired=str(environment.desired),
            phase=str(environment.phase),
            message=environment.message,
            replicas=[
                ReplicaOut(
                    service=r.service,
                    index=r.index,
                    release=r.release,
                    pid=r.pid,
                    port=r.port,
                    state=r.state,
                    restarts=r.restarts,
                    message=r.message,
                )
                for r in environment.replicas
            ],
            created_at=environment.created_at,
            updated_at=environment.updated_at,
        )


class ConfigVarOut(BaseModel):
    key: str
    value: str | None
    """None for a secret: its value is never sent back."""
    secret: bool
    fingerprint: str | None
    """A secret's fingerprint: equal values, equal fingerprints; the value cannot be read
    from it. None for plain values, whose value is shown."""


class ReleaseOut(BaseModel):
    number: int
    name: str
    build: str | None
    commit: str | None
    config_version: int
    state: str
    message: str
    description: str
    generation: str
    """The release whose processes serve this one (itself, unless an instant rollback)."""
    hotfix_reason: str | None
    replicas: dict[str, int] = Field(default_factory=dict)
    """Replica counts set by `laneway scale`, over the spec's."""
    created_by: str
    created_at: datetime
    updated_at: datetime
    config: list[ConfigVarOut] | None = None
    hook_output: str | None = None
    unchanged: bool = False
    """Set on a deploy answer when nothing changed (same build, same config)."""
    events_after: int | None = None
    """On a deploy answer: follow the environment's events after this id to see it happen."""
    flags_version: int | None = None
    """The flag set version in force when it went live."""
    flags_now: int | None = None
    """On a rollback answer: the flag set version now, when it differs from the one the
    release rolled back to went live with (flags are not rolled back with a release)."""

    @classmethod
    def of(cls, release: Release, **extra: Any) -> ReleaseOut:
        return cls(
            number=release.number,
            name=release.name,
            build=release.build_id,
            commit=release.commit,
            config_version=release.config_version,
            state=str(release.state),
            message=release.message,
            description=release.description,
            generation=f"v{release.generation}",
            hotfix_reason=release.hotfix_reason,
            replicas=release.replicas,
            flags_version=release.flags_version,
            created_by=release.created_by,
            created_at=release.created_at,
            updated_at=release.updated_at,
            **extra,
        )


class DeployIn(HotfixIn):
    ref: StrictStr | None = Field(default=None, min_length=1, max_length=255)
    build: BuildRef | None = None


class PromoteIn(HotfixIn):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    source: StrictStr = Field(alias="from", pattern=DNS_LABEL)
    target: StrictStr = Field(alias="to", pattern=DNS_LABEL)
    create: StrictBool = Field(
        default=False, description="Create `to` from `from`'s live build if it does not exist."
    )
    kind: Kind | None = Field(
        default=None,
        description="With create: the new environment's kind (default: its name where that "
        "is a kind, else staging).",
    )


class RollbackIn(_Body):
    to: Annotated[int, Field(ge=1, le=2**31 - 1), JSON_NUMBER] | None = None


class ConfigIn(_Body):
    set: dict[str, StrictStr] = Field(default_factory=dict)
    unset: list[StrictStr] = Field(default_factory=list)
    secret: StrictBool = False


class DiffRowOut(BaseModel):
    section: str
    item: str
    left: str | None
    right: str | None
    status: str
    """same | differs | declared (a difference the spec declares) | left-only | right-only"""


class DiffOut(BaseModel):
    app: str
    left: str
    right: str
    in_parity: bool
    rows: list[DiffRowOut]


class BuildIn(_Body):
    ref: StrictStr = Field(default="HEAD", min_length=1, max_length=255)


class BuildOut(BaseModel):
    id: str
    app: str
    commit: str
    ref: str
    spec_digest: str
    created_at: datetime


class EventOut(BaseModel):
    id: int
    time: datetime
    type: str
    message: str
