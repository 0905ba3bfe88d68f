"""The steps a plan is made of (`core.environments`); the controller applies each. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from laneway.core.types import ResourceType


@dataclass(frozen=True)
class Build:
    ref: str


@dataclass(frozen=True)
class Unpack:
    build_id: str
    release: int
    """The generation whose directory it is unpacked into."""


@dataclass(frozen=True)
class Provision:
    name: str
    type: ResourceType


@dataclass(frozen=True)
class RunHook:
    release: int
    command: str


@dataclass(frozen=True)
class HookDone:
    """The hook of `release` ended: record success, or fail the deploy."""

    release: int
    key: str
    exit_code: int | None
    """None: it did not finish in time (it has been stopped)."""


@dataclass(frozen=True)
class StartReplica:
    service: str
    index: int
    generation: int


@dataclass(frozen=True)
class StopProcess:
    key: str
    reason: str
    timeout: float = 10.0
    """Seconds between SIGTERM and SIGKILL: the time it has to finish requests in flight."""


@dataclass(frozen=True)
class Forget:
    key: str


@dataclass(frozen=True)
class Retire:
    """The generation has no process left: free its ports and remove its directory."""

    generation: int


@dataclass(frozen=True)
class DestroyResources:
    pass


@dataclass(frozen=True)
class RemoveFiles:
    pass


@dataclass(frozen=True)
class DeleteRecord:
    pass


CONCURRENT = (Unpack, Provision)

Action = (
    Build
    | Unpack
    | Provision
    | RunHook
    | HookDone
    | StartReplica
    | StopProcess
    | Forget
    | Retire
    | DestroyResources
    | RemoveFiles
    | DeleteRecord
)
