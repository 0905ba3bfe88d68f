"""An environment's secrets, gathered from the store for `core.redaction`: what must never
reach a log file, an event or an API answer."""

from __future__ import annotations

from collections.abc import Callable

from laneway.controllers.context import Context
from laneway.core import config as configs
from laneway.core import redaction
from laneway.core.types import Environment
from laneway.spec.model import Spec


def resource_values(ctx: Context, environment_id: str) -> dict[str, str]:
    """Resource name -> the address its variable receives (a database's has its password)."""
    return {r.name: r.details.get("value", "") for r in ctx.store.resources(environment_id)}


def values(ctx: Context, environment: Environment) -> frozenset[str]:
    """Resource addresses, and the secret config values of every release of the environment:
    a value replaced since may still be in older log lines, and may still be valid."""
    found = set(resource_values(ctx, environment.id).values())
    for sealed in ctx.store.sealed_configs(environment.id):
        found |= set(configs.secret_values(ctx.vault.open(sealed)))
    return frozenset(v for v in found if v)


def redactor(ctx: Context, environment: Environment) -> redaction.Redactor:
    return redaction.redactor(values(ctx, environment))


def keys(spec: Spec, config: dict[str, configs.ConfigEntry]) -> set[str]:
    """The variables of a process whose values its output must not show."""
    return set(spec.resource_env_names().values()) | {k for k, e in config.items() if e.secret}


def following(ctx: Context, environment: Environment) -> Callable[[], redaction.Redactor]:
    """The environment's redactor for a stream that lasts: gathered again when a new release
    (which may bring a new secret) has been made since."""
    made = environment.release
    current = redactor(ctx, environment)

    def get() -> redaction.Redactor:
        nonlocal made, current
        now = ctx.store.get_environment_by_id(environment.id)
        if now is not None and now.release != made:
            made, current = now.release, redactor(ctx, now)
        return current

    return get
