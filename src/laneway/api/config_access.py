"""Reading config values: one variable, and secrets' values for those who may see them.

A viewer sees a secret as its fingerprint. Its value is shown only when asked (`reveal`), to
a deployer of that environment (its own role or a grant's), and each time as an event of the
environment naming who saw which keys (never the values): the audit trail of who has read
what.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query, Request

from laneway.api import audit
from laneway.api.auth import Principal, require
from laneway.api.schemas import AppName, ConfigVarOut, EnvironmentName
from laneway.controllers.context import Context
from laneway.core import grants
from laneway.core.config import ConfigEntry
from laneway.core.types import Environment, EventType, Role
from laneway.errors import NotFound
from laneway.spec.model import ENV_KEY

router = APIRouter(prefix="/api/v1")
viewer = Depends(require(Role.VIEWER))

REVEAL = Query(
    False,
    description="Secrets' values too: needs the deployer role on the environment, and is "
    "recorded as an event",
)


def may_reveal(principal: Principal, reveal: bool, environment: Environment) -> None:
    """Refuse `reveal` to a caller below the deployer role on `environment`."""
    if not reveal:
        return
    has = principal.role_for(environment.app, environment.name, str(environment.kind))
    if not has.includes(Role.DEPLOYER):
        where = f"{environment.app}/{environment.name}"
        raise grants.refuse(principal.name, has, Role.DEPLOYER, where=where)


def current_config(ctx: Context, environment: Environment) -> dict[str, ConfigEntry]:
    """The config of the environment's newest release."""
    return ctx.vault.open(ctx.store.sealed_config(environment.id, environment.release))


def shown(
    ctx: Context,
    environment: Environment,
    config: dict[str, ConfigEntry],
    principal: Principal,
    *,
    reveal: bool,
    request: Request,
) -> list[ConfigVarOut]:
    """`config` as the caller may see it; revealed secrets are recorded, as an event of the
    environment and in the audit log (their names, never their values)."""
    may_reveal(principal, reveal, environment)
    revealed = sorted(key for key, entry in config.items() if entry.secret) if reveal else []
    if revealed:
        audit.record_read(request, revealed=", ".join(revealed))
        ctx.store.add_event(
            environment.id,
            EventType.CONFIG_REVEALED,
            f"{principal.name} revealed {', '.join(revealed)} ({environment.release_name})",
        )
    return [
        ConfigVarOut(
            key=key,
            value=entry.value if reveal or not entry.secret else None,
            secret=entry.secret,
            fingerprint=ctx.vault.fingerprint(entry.value) if entry.secret else None,
        )
        for key, entry in sorted(config.items())
    ]


@router.get("/apps/{app}/environments/{name}/config/{key}", response_model=ConfigVarOut)
def config_get(
    app: AppName,
    name: EnvironmentName,
    request: Request,
    key: str = Path(pattern=ENV_KEY, max_length=256),
    reveal: bool = REVEAL,
    principal: Principal = viewer,
) -> ConfigVarOut:
    """One variable of the environment's newest release: a secret as its fingerprint, or
    with `reveal` its value."""
    ctx: Context = request.app.state.ctx
    environment = ctx.store.get_environment(app, name)
    config = current_config(ctx, environment)
    if key not in config:
        listed = ", ".join(sorted(config)) or "none"
        raise NotFound(
            f"{key} is not set in {name} (set: {listed})",
            hint=f"`laneway config set {name} {key}=VALUE` sets it",
        )
    return shown(ctx, environment, {key: config[key]}, principal, reveal=reveal, request=request)[0]
