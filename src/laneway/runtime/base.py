"""The Runtime interface: run, find and stop the processes of environments.

Implementations sit beside this file: `local.py` (supervised processes on this machine) and
`fake.py` (in memory, for controller tests). A process is named by its `key`, derived from
the environment id, so a restarted control plane finds (adopts) what it started before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from laneway.core.types import ProcessInfo

__all__ = ["ProcessInfo", "ProcessSpec", "Runtime", "process_key"]


@dataclass(frozen=True)
class ProcessSpec:
    environment_id: str
    service: str
    index: int
    release: str
    command: str
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    per_release: bool = False
    """Whether `release` is part of the key, so two releases' replicas run side by side."""

    @property
    def key(self) -> str:
        return process_key(
            self.environment_id, self.service, self.index, self.release if self.per_release else ""
        )


def process_key(environment_id: str, service: str, index: int, release: str = "") -> str:
    """`<environment>/<service>/<index>`, then `/<release>` for a replica of one release."""
    key = f"{environment_id}/{service}/{index}"
    return f"{key}/{release}" if release else key


class Runtime(Protocol):
    def list_processes(self, environment_id: str | None = None) -> list[ProcessInfo]:
        """Every process this instance owns (alive, or dead and not yet collected)."""
        ...

    def start_process(self, spec: ProcessSpec) -> ProcessInfo:
        """Start the process; if one with the same key is alive, return it (adopt)."""
        ...

    def stop_process(self, key: str, *, timeout: float = 10.0) -> None:
        """SIGTERM its process group, SIGKILL after `timeout`; no error if it is gone."""
        ...

    def forget(self, key: str) -> None:
        """Drop a dead process from `list_processes`."""
        ...
