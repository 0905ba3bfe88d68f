"""What every controller is handed: settings, store, runtime, providers, artifacts, clock.

Built by the composition root (`laneway.composition`) for the server, and from fakes by
`controllers/harness.py` for tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from laneway.builds.artifacts import ArtifactStore
from laneway.controllers.specs import Specs
from laneway.resources.base import ResourceProvider
from laneway.runtime.base import Runtime
from laneway.settings import Settings
from laneway.store.audit import AuditLog
from laneway.store.repository import Store
from laneway.store.vault import Vault


@dataclass
class Context:
    settings: Settings
    store: Store
    runtime: Runtime
    providers: dict[str, ResourceProvider]
    artifacts: ArtifactStore
    vault: Vault
    clock: Callable[[], float] = field(default=time.time)
    secret: bytes = b""
    """The instance secret: resource passwords and flag client keys derive from it."""
    audit: AuditLog | None = None
    """Where the controllers record what they change by themselves (a canary's steps, its
    verdicts, an abort): the log the API records requests in. None: not recorded."""

    @cached_property
    def specs(self) -> Specs:
        return Specs(self.store)

    def release_dir(self, environment_id: str, release: int) -> Path:
        return self.settings.environments_dir / environment_id / "releases" / f"v{release}"

    def log_dir(self, environment_id: str) -> Path:
        return self.settings.logs_dir / environment_id
