"""Flag management: define flags for an app, change their state per environment, import and
export flagd documents, read the history, hand out client keys. Viewers read; a change needs
the developer role on its environment, deployer where it is protected (api/roles.py); an
app's flag definitions, that role on each of its environments.

    GET    /apps/{app}/flags                                   every flag in every environment
    POST   /apps/{app}/flags                                   create a flag in every environment
    DELETE /apps/{app}/flags/{key}                             remove it everywhere
    GET    /apps/{app}/environments/{name}/flags               one environment's flags
    GET    /apps/{app}/environments/{name}/flags/{key}         one flag's definition there
    PATCH  /apps/{app}/environments/{name}/flags/{key}         state, defaultVariant, targeting
    PUT    /apps/{app}/environments/{name}/flags/{key}/rollout  a sticky percentage rollout
    GET    /apps/{app}/environments/{name}/flagset             export: the flagd document
    PUT    /apps/{app}/environments/{name}/flagset             import: replace it whole
    GET    /apps/{app}/environments/{name}/flag-history        changes, newest first
    POST   /apps/{app}/environments/{name}/flag-key            the client key (a change)
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal, cast

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from laneway.api import flag_service, roles
from laneway.api.auth import Principal, require
from laneway.api.edge import MiB
from laneway.api.schemas import AppName, EnvironmentName, FlagKey
from laneway.controllers.context import Context
from laneway.core.types import Environment, Role
from laneway.errors import NotFound
from laneway.flags import editing, parse_flag_set
from laneway.flags.records import FlagChange, StoredFlagSet
from laneway.flags.types import JsonValue

router = APIRouter(prefix="/api/v1")
viewer = Depends(require(Role.VIEWER))
changer = Depends(roles.changes_environment())
every = Depends(roles.changes_every_environment())

VERSION_HEADER = "X-Laneway-Flags-Version"
IMPORT_LIMIT = 4 * MiB
"""A flagd document to import may be larger than the API's other bodies: it is often
indented, and its compact JSON alone is capped at 1 MiB (flags/limits.py)."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FlagIn(_Body):
    key: StrictStr = Field(
        min_length=1, max_length=128, description="The flag key, e.g. new-checkout."
    )
    definition: dict[str, Any] | None = Field(
        default=None,
        description="A flagd flag (variants, defaultVariant, targeting, metadata, state); "
        "absent: an on/off boolean flag.",
    )
    enabled_in: list[StrictStr] = Field(
        default_factory=list, description="Environments where it starts ENABLED."
    )


class FlagPatch(_Body):
    state: Literal["ENABLED", "DISABLED"] | None = None
    defaultVariant: StrictStr | None = None
    targeting: dict[str, Any] | None = None


class RolloutIn(_Body):
    percent: float = Field(strict=True, ge=0, le=100, description="Share of users on `variant`.")
    variant: StrictStr | None = Field(default=None, description="Default: the flag's true variant.")
    rest: StrictStr | None = Field(default=None, description="Default: the default variant.")


class ChangeOut(BaseModel):
    id: int
    key: str
    version: int
    actor: str
    time: datetime
    before: JsonValue
    after: JsonValue


def _ctx(request: Request) -> Context:
    return cast(Context, request.app.state.ctx)  # starlette's State holds Any; app.py sets it


def _service(request: Request) -> flag_service.FlagService:
    return flag_service.get(request.app)


def _environment(request: Request, app: str, name: str) -> Environment:
    return _ctx(request).store.get_environment(app, name)


def _flags_of(stored: StoredFlagSet) -> list[dict[str, JsonValue]]:
    return editing.summarize(parse_flag_set(stored.document))


def _environment_flags(environment: Environment, stored: StoredFlagSet) -> dict[str, Any]:
    """The environment's flags, and the warnings of their targeting (flagd answers those
    flags with an error or null; see `definitions`)."""
    flag_set = parse_flag_set(stored.document)
    return {
        "environment": environment.name,
        "version": stored.version,
        "updated_by": stored.updated_by,
        "updated_at": stored.updated_at,
        "flags": editing.summarize(flag_set),
        "warnings": [{"key": w.key, "message": w.message} for w in flag_set.warnings],
    }


def _one(environment: Environment, stored: StoredFlagSet, key: str) -> dict[str, Any]:
    for flag in _flags_of(stored):
        if flag["key"] == key:
            return {"environment": environment.name, "version": stored.version, **flag}
    raise NotFound(f"no flag {key!r} in environment {environment.name!r}")


@router.get("/apps/{app}/flags")
def list_app_flags(app: AppName, request: Request, _: Principal = viewer) -> dict[str, Any]:
    """Every flag of the app, with its state in each environment."""
    ctx = _ctx(request)
    ctx.store.get_app(app)
    service = _service(request)
    defined = {f.key for f in service.store.app_flags(app)}
    environments = ctx.store.list_environments(app)
    flags: dict[str, dict[str, Any]] = {}
    for environment in environments:
        for flag in _flags_of(service.store.flag_set(environment.id)):
            entry = flags.setdefault(
                flag["key"],
                {
                    "key": flag["key"],
                    "type": flag["type"],
                    "app_wide": flag["key"] in defined,
                    "environments": {},
                },
            )
            entry["environments"][environment.name] = {
                k: flag[k] for k in ("state", "defaultVariant", "variants", "targeting", "rollout")
            }
    for key in defined - set(flags):  # an app without environments yet
        flags[key] = {"key": key, "type": None, "app_wide": True, "environments": {}}
    return {"environments": [e.name for e in environments], "flags": list(flags.values())}


@router.post("/apps/{app}/flags", status_code=201)
def create_flag(
    app: AppName, body: FlagIn, request: Request, principal: Principal = every
) -> dict[str, Any]:
    ctx = _ctx(request)
    ctx.store.get_app(app)
    by_name = {e.name: e for e in ctx.store.list_environments(app)}
    for name in body.enabled_in:
        if name not in by_name:
            raise NotFound(f"enabled_in: no environment {name!r} in app {app!r}")
    definition = body.definition if body.definition is not None else editing.boolean_flag()
    stored = _service(request).store.create_flag(
        app,
        body.key,
        definition,
        actor=principal.name,
        enabled_in={by_name[name].id for name in body.enabled_in},
    )
    names = {e.id: e.name for e in by_name.values()}
    return {
        "key": body.key,
        "environments": {names[s.environment_id]: _one_state(s, body.key) for s in stored},
    }


def _one_state(stored: StoredFlagSet, key: str) -> dict[str, JsonValue]:
    return next(f for f in _flags_of(stored) if f["key"] == key)


@router.delete("/apps/{app}/flags/{key}")
def delete_flag(
    app: AppName, key: FlagKey, request: Request, principal: Principal = every
) -> dict[str, Any]:
    ctx = _ctx(request)
    ctx.store.get_app(app)
    names = {e.id: e.name for e in ctx.store.list_environments(app)}
    stored = _service(request).store.delete_flag(app, key, actor=principal.name)
    return {"key": key, "removed_from": [names.get(s.environment_id) for s in stored]}


@router.get("/apps/{app}/environments/{name}/flags")
def environment_flags(
    app: AppName, name: EnvironmentName, request: Request, _: Principal = viewer
) -> dict[str, Any]:
    environment = _environment(request, app, name)
    return _environment_flags(environment, _service(request).store.flag_set(environment.id))


@router.get("/apps/{app}/environments/{name}/flags/{key}")
def show_flag(
    app: AppName, name: EnvironmentName, key: FlagKey, request: Request, _: Principal = viewer
) -> dict[str, Any]:
    environment = _environment(request, app, name)
    stored = _service(request).store.flag_set(environment.id)
    shown = _one(environment, stored, key)
    return {**shown, "definition": stored.document["flags"][key]}


@router.patch("/apps/{app}/environments/{name}/flags/{key}")
def change_flag(
    app: AppName,
    name: EnvironmentName,
    key: FlagKey,
    body: FlagPatch,
    request: Request,
    principal: Principal = changer,
) -> dict[str, Any]:
    """Set the flag's state, default variant or targeting (null removes it) in one environment."""
    environment = _environment(request, app, name)
    fields: dict[str, Any] = {}
    for field in body.model_fields_set:
        fields["default_variant" if field == "defaultVariant" else field] = getattr(body, field)
    stored = _service(request).store.update(
        environment.id,
        lambda document: editing.set_fields(document, key, **fields),
        actor=principal.name,
    )
    return _one(environment, stored, key)


@router.put("/apps/{app}/environments/{name}/flags/{key}/rollout")
def rollout_flag(
    app: AppName,
    name: EnvironmentName,
    key: FlagKey,
    body: RolloutIn,
    request: Request,
    principal: Principal = changer,
) -> dict[str, Any]:
    """`percent` of users (by targeting key, sticky) on the flag's on-variant, the rest on
    the default variant; the flag is enabled."""
    environment = _environment(request, app, name)
    stored = _service(request).store.update(
        environment.id,
        lambda document: editing.rollout(
            document, key, body.percent, variant=body.variant, rest=body.rest
        ),
        actor=principal.name,
    )
    return _one(environment, stored, key)


@router.get("/apps/{app}/environments/{name}/flagset")
def export_flags(
    app: AppName, name: EnvironmentName, request: Request, _: Principal = viewer
) -> Response:
    """The environment's flagd document, as flagd reads it."""
    environment = _environment(request, app, name)
    stored = _service(request).store.flag_set(environment.id)
    return Response(
        _json(stored.document),
        media_type="application/json",
        headers={VERSION_HEADER: str(stored.version)},
    )


@router.put("/apps/{app}/environments/{name}/flagset", max_body_size=IMPORT_LIMIT)
def import_flags(
    app: AppName,
    name: EnvironmentName,
    request: Request,
    document: Any = Body(
        ...,
        description="A flagd flag-definition document.",
        json_schema_extra={"type": "object"},
    ),
    version: int | None = Query(None, ge=0, description="Refuse if the stored version differs."),
    strict: bool = Query(
        False,
        description="Refuse targeting that flagd loads but answers with an error or null, "
        "instead of importing it with a warning.",
    ),
    principal: Principal = changer,
) -> dict[str, Any]:
    """Replace the environment's flags with a flagd document, whole, or refuse it whole.

    Targeting flagd loads but cannot evaluate as meant is imported and answered as flagd
    answers it, each flag listed in `warnings`; with `strict`, such a document is refused."""
    environment = _environment(request, app, name)
    stored = _service(request).store.update(
        environment.id,
        lambda _: document,
        actor=principal.name,
        whole=True,
        strict=strict,
        expected_version=version,
    )
    return _environment_flags(environment, stored)


@router.get("/apps/{app}/environments/{name}/flag-history", response_model=list[ChangeOut])
def flag_history(
    app: AppName,
    name: EnvironmentName,
    request: Request,
    key: FlagKey | None = Query(None, description="Only this flag (and whole imports)."),
    limit: int = Query(100, ge=1, le=1000),
    _: Principal = viewer,
) -> list[ChangeOut]:
    environment = _environment(request, app, name)
    return [_change(c) for c in _service(request).store.history(environment.id, key, limit=limit)]


@router.post("/apps/{app}/environments/{name}/flag-key")
def client_key(
    app: AppName, name: EnvironmentName, request: Request, _: Principal = changer
) -> dict[str, str]:
    """The environment's client key: it evaluates that environment's flags and nothing else."""
    environment = _environment(request, app, name)
    service = _service(request)
    url = flag_service.api_url(_ctx(request))
    return {
        "environment": environment.name,
        "key": service.client_key(environment.id),
        "url": url,
        "ofrep": f"{url}/ofrep/v1/evaluate/flags",
        "flagd": f"{url}/flagd/v1/flags.json",
    }


def _change(change: FlagChange) -> ChangeOut:
    return ChangeOut(
        id=change.id,
        key=change.flag_key,
        version=change.version,
        actor=change.actor,
        time=change.time,
        before=change.before,
        after=change.after,
    )


def _json(document: dict[str, JsonValue]) -> bytes:
    return json.dumps(document, ensure_ascii=False, indent=2).encode() + b"\n"
