"""What every controller is handed: settings, store, runtime, providers, artifacts, clock."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from laneway.builds.artifacts import ArtifactStore
from laneway.controllers.specs import Specs
from laneway.resources.base import ResourceProvider
from laneway.resources.registry import providers
from laneway.runtime.base import Runtime
from laneway.runtime.local import LocalRuntime
from laneway.settings import Settings
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

    @cached_property
    def specs(self) -> Specs:
        return Specs(self.store)

    def release_dir(self, environment_id: str, release: int) -> Path:
        return self.settings.environments_dir / environment_id / "releases" / f"v{release}"

    def log_dir(self, environment_id: str) -> Path:
        return self.settings.logs_dir / environment_id


def instance_secret(settings: Settings) -> bytes:
    """A random secret made at first start (0600); resource passwords derive from it."""
    path = settings.state_dir / "secret"
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        os.replace(tmp, path)
    return path.read_text().strip().encode()


def build_context(settings: Settings, store: Store) -> Context:
    for path in (settings.environments_dir, settings.logs_dir, settings.artifacts):
        path.mkdir(parents=True, exist_ok=True)
    secret = instance_secret(settings)
    return Context(
        settings=settings,
        store=store,
        runtime=LocalRuntime(settings.owner),
        providers=providers(settings, secret=secret),
        artifacts=ArtifactStore(settings.artifacts),
        vault=Vault(secret),
        secret=secret,
    )
