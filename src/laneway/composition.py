"""The composition root: the one place that picks laneway's implementations.

`laneway server` (and the tests that run its API in-process) build the control plane here,
and `laneway up` the control plane of its one development environment:
the local runtime, the resource providers, the artifact store, the vault and the flag
service, all from the settings and one instance secret. Everything below takes what it
is handed; controller tests hand fakes instead (`controllers/harness.py`).
"""

from __future__ import annotations

import os
import secrets
from typing import TYPE_CHECKING

from laneway.builds.artifacts import ArtifactStore
from laneway.controllers import development
from laneway.controllers.context import Context
from laneway.resources.registry import providers
from laneway.runtime.local import LocalRuntime
from laneway.settings import Settings
from laneway.store import keyring
from laneway.store.repository import Store
from laneway.store.vault import Vault

if TYPE_CHECKING:
    from fastapi import FastAPI


def instance_secret(settings: Settings) -> bytes:
    """A random secret made at first start (0600); resource passwords, sealed config and
    flag client keys derive from it."""
    path = settings.state_dir / "secret"
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        os.replace(tmp, path)
    return path.read_text().strip().encode()


def vault_for(settings: Settings) -> Vault:
    """The server's vault: fingerprints from the instance secret, seal keys from the keyring
    once a rotation has run (store/keyring.py), else from the instance secret too."""
    return Vault(instance_secret(settings), keyring.load(settings.state_dir))


def local_runtime(settings: Settings) -> LocalRuntime:
    return LocalRuntime(settings.owner)


def build_context(settings: Settings, store: Store) -> Context:
    for path in (settings.environments_dir, settings.logs_dir, settings.artifacts):
        path.mkdir(parents=True, exist_ok=True)
    secret = instance_secret(settings)
    return _context(settings, store, secret=secret, serves_flags=True)


def development_context(settings: Settings) -> Context:
    """`laneway up`'s context: the home `<home>/dev` of its own (its SQLite store, its owner),
    the local runtime, the providers and a vault keyed by the home's instance secret (the one
    `laneway up` always used, so the development database keeps its password). No flag
    client key: nothing serves flags to `laneway up`."""
    secret = instance_secret(settings)
    dev = development.settings_for(settings)
    dev.make_dirs()
    store = Store.open(dev.database_url, vault=Vault(secret))
    return _context(dev, store, secret=secret, serves_flags=False)


def _context(settings: Settings, store: Store, *, secret: bytes, serves_flags: bool) -> Context:
    return Context(
        settings=settings,
        store=store,
        runtime=local_runtime(settings),
        providers=providers(settings, secret=secret),
        artifacts=ArtifactStore(settings.artifacts),
        vault=store.vault if store.vault is not None else Vault(secret),
        secret=secret if serves_flags else b"",
    )


def build_app(ctx: Context, *, run_controllers: bool = True) -> FastAPI:
    """The API with its controllers and the flag service over the same store and secret."""
    # imported here: `laneway up` composes its context from this module and serves no API
    from laneway.api.app import create_app
    from laneway.api.flag_service import FlagService
    from laneway.store.audit import AuditLog, audit_key
    from laneway.store.flags import FlagStore

    flags = FlagService(FlagStore(ctx.store.engine), ctx.secret)
    if ctx.audit is None:
        ctx.audit = AuditLog(ctx.store.engine, audit_key(ctx.settings.audit_key))
    return create_app(ctx, flag_service=flags, audit_log=ctx.audit, run_controllers=run_controllers)
