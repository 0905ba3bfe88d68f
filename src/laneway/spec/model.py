"""The laneway.yaml model: what an app is made of. Pure: no I/O.

Field names here are the spec's public vocabulary (docs/spec.md documents each one).
`spec/loader.py` validates parsed YAML against `Spec` and turns pydantic's errors into
`file:line:col: field: what` messages; `spec/schema.py` publishes `Spec`'s JSON Schema.
Checks that span fields (a replica override naming no service, a variable laneway sets
itself) run in the validator of the last field, `environments`, so they are reported
together with the other problems; they raise one `spec_conflict` error whose context lists
each problem with its location, so the loader can point at every one of them.
"""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Any, Literal, TypeGuard

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from laneway.spec.canary import Canary
from laneway.spec.names import DNS_LABEL as DNS_LABEL
from laneway.spec.names import ENV_KEY as ENV_KEY

KINDS = ("development", "preview", "staging", "production")
Kind = Literal["development", "preview", "staging", "production"]
DURATION = r"^\d+(s|m|h|d)$"

# Variables laneway sets in every process (docs/spec.md, "What laneway sets"). A spec may
# not set them, nor any other LANEWAY_ name: laneway's own values would win silently.
INJECTED_ENV = (
    "PORT",
    "LANEWAY_ENV",
    "LANEWAY_ENV_KIND",
    "LANEWAY_APP",
    "LANEWAY_RELEASE",
    "LANEWAY_BUILD",
    "LANEWAY_COMMIT",
    "LANEWAY_BRANCH",
    "LANEWAY_FLAGS_URL",
    "LANEWAY_FLAGS_KEY",
    "LANEWAY_FLAGS_SYNC",
)
RESERVED_ENV_PREFIX = "LANEWAY_"

# The pydantic error type the cross-field check raises; ctx["problems"] holds
# (location, message) pairs, one per problem.
CONFLICT = "spec_conflict"

Name = Annotated[str, Field(pattern=DNS_LABEL)]
EnvKey = Annotated[str, Field(pattern=ENV_KEY)]
# YAML reads `DEBUG: 1` as a number; `_stringify_env` turns scalars into text, and the
# published schema says so.
EnvValue = Annotated[str, WithJsonSchema({"type": ["string", "number", "boolean"]})]
EnvMap = dict[EnvKey, EnvValue]
Replicas = Annotated[int, Field(ge=0, le=64, strict=True)]
Duration = Annotated[str, Field(pattern=DURATION)]


def is_kind(value: str) -> TypeGuard[Kind]:
    """Whether `value` names an environment kind (narrows it to `Kind`)."""
    return value in KINDS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HealthCheck(_Strict):
    """An HTTP GET that must answer 2xx or 3xx before a replica takes traffic."""

    path: str = Field(pattern=r"^/", description="Path requested on the service's port.")
    timeout: float = Field(
        default=2.0, gt=0, le=60, strict=True, description="Seconds per attempt."
    )
    interval: float = Field(
        default=0.5, gt=0, le=60, strict=True, description="Seconds between attempts."
    )
    grace: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        strict=True,
        description="Seconds a new replica has to become healthy.",
    )


def _health_shorthand_schema(schema: dict[str, Any]) -> None:
    schema["anyOf"].insert(
        0, {"type": "string", "pattern": "^/", "description": "Short for {path: ...}."}
    )


class Service(_Strict):
    """A process type of the app (`web`, `worker`)."""

    command: str = Field(
        min_length=1, description="Shell command; $PORT is set when the service has a port."
    )
    port: Literal["auto", "none"] | None = Field(
        default=None,
        description="`auto`: laneway picks a free port and passes it as $PORT; `none`: no port. "
        "Default: auto when the service has a health check or is named `web`, else none.",
    )
    health: HealthCheck | None = Field(
        default=None,
        description="HTTP health check; a path string is short for {path: ...}.",
        json_schema_extra=_health_shorthand_schema,
    )
    replicas: Replicas = Field(default=1, description="Processes to run (0-64).")
    env: EnvMap = Field(
        default_factory=dict, description="Variables for this service; they win over the rest."
    )

    @field_validator("health", mode="before")
    @classmethod
    def _health_path(cls, value: object) -> object:
        return {"path": value} if isinstance(value, str) else value

    @field_validator("env", mode="before")
    @classmethod
    def _env_strings(cls, value: object) -> object:
        return _stringify_env(value)

    def has_port(self, name: str) -> bool:
        """Whether the service, called `name`, listens on a port laneway assigns ($PORT)."""
        if self.port is not None:
            return self.port == "auto"
        return self.health is not None or name == "web"


class Resource(_Strict):
    """A backing service each environment gets its own instance of."""

    type: Literal["postgres", "sqlite", "directory"] = Field(
        description="postgres: a database and role; sqlite: a database file; "
        "directory: an empty directory."
    )
    env: EnvKey | None = Field(
        default=None,
        description="Variable that receives its address. Default: DATABASE_URL for the first "
        "postgres resource, else <NAME>_URL (postgres, sqlite) or <NAME>_DIR (directory).",
    )


class Build(_Strict):
    """How a commit becomes a build."""

    command: str | None = Field(
        default=None,
        min_length=1,
        description="Run in the unpacked commit tree; what it leaves there is the build.",
    )
    path: list[Annotated[str, Field(min_length=1, pattern=r"^[^/:][^:]*$")]] = Field(
        default_factory=list,
        description="Directories of the build (relative, e.g. `.deps/bin`) put in front of PATH "
        "for every service and hook, so tools the build installed are found by name.",
    )

    @field_validator("path")
    @classmethod
    def _inside_the_build(cls, value: list[str]) -> list[str]:
        for entry in value:
            if ".." in entry.split("/"):
                raise ValueError(
                    f"{entry!r} leaves the build; use a path inside it such as .deps/bin"
                )
        return value


class Hooks(_Strict):
    """Commands laneway runs at points of a release's life."""

    release: str | None = Field(
        default=None,
        min_length=1,
        description="Runs once per release, before the release takes traffic; "
        "a failure stops the deployment.",
    )


class DataSource(_Strict):
    """Where a new environment's copy of one resource's data comes from."""

    from_: str = Field(
        alias="from",
        pattern=DNS_LABEL,
        description="Environment whose data is copied (a snapshot of it).",
    )
    mask: list[str] = Field(
        default_factory=list,
        description="Columns (`table.column`) replaced by masked values in the copy.",
    )


MAX_COPIED = 50
"""Config variables a preview may copy from staging."""


class EnvironmentOverrides(_Strict):
    """Settings that apply to every environment of one kind."""

    env: EnvMap = Field(
        default_factory=dict, description="Variables; win over the top-level `env`."
    )
    replicas: dict[str, Replicas] = Field(
        default_factory=dict, description="Service name -> replicas, instead of the service's."
    )
    protected: bool | None = Field(
        default=None,
        strict=True,
        description="Changes need a role allowed to change protected environments.",
    )
    ttl: Duration | None = Field(
        default=None, description="Destroy the environment this long after its last deploy."
    )
    sleep_after: Duration | None = Field(
        default=None,
        description="Stop processes after this long without a request; the next request "
        "wakes them.",
    )
    data: dict[str, DataSource] = Field(
        default_factory=dict, description="Resource name -> where its data is copied from."
    )
    keep_warm: Duration | None = Field(
        default=None,
        description="How long the previous release keeps running after a deploy, so that a "
        "rollback is only a switch of the router. Default: 10m for staging and production, "
        "0s for preview and development.",
    )
    drain: Duration | None = Field(
        default=None,
        description="How long a stopped release's processes get to finish the requests they "
        "have (SIGTERM, then SIGKILL). Default: 30s.",
    )
    approvals: int = Field(
        default=0,
        ge=0,
        le=5,
        strict=True,
        description="Protected environments: approvals from principals other than the "
        "requester that a deploy, promotion, canary or destroy needs before it runs (never a "
        "rollback or an abort; a hotfix needs none). Read from the spec that runs.",
    )
    hotfix_role: Literal["deployer", "admin"] = Field(
        default="deployer",
        description="Protected environments: the role a principal needs there to use --hotfix "
        "(which bypasses the pipeline's order and approvals). Read from the spec that runs.",
    )
    copy_config: list[EnvKey] = Field(
        default_factory=list,
        max_length=MAX_COPIED,
        description="Previews only: config variables (secrets too) a new preview starts with, "
        "copied from staging's config. Read from the spec staging runs, never from the "
        "preview's own branch.",
    )

    @field_validator("env", mode="before")
    @classmethod
    def _env_strings(cls, value: object) -> object:
        return _stringify_env(value)


class Parity(_Strict):
    """Declared differences between environments; everything else is drift."""

    config: list[EnvKey] = Field(
        default_factory=list,
        description="Config keys whose values (or presence) may differ between environments, "
        "such as API keys of test and live accounts.",
    )


DEFAULT_KEEP_WARM = {"staging": 600.0, "production": 600.0}
DEFAULT_DRAIN = 30.0


def seconds(duration: str) -> float:
    """`90s`, `10m`, `2h`, `1d` -> seconds."""
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400}[duration[-1]]
    return float(int(duration[:-1]) * unit)


class Spec(_Strict):
    """laneway.yaml: one app, its services, resources and per-kind environment settings."""

    app: str = Field(pattern=DNS_LABEL, description="App name; part of every hostname.")
    build: Build = Field(default_factory=Build, description="How a commit is built.")
    env: EnvMap = Field(default_factory=dict, description="Variables for every service.")
    services: dict[Name, Service] = Field(
        min_length=1, description="Service name -> service; `web` takes the HTTP traffic."
    )
    resources: dict[Name, Resource] = Field(
        default_factory=dict, description="Resource name -> resource."
    )
    hooks: Hooks = Field(default_factory=Hooks, description="Commands run around releases.")
    pipeline: list[Name] = Field(
        default_factory=lambda: ["staging", "production"],
        description="Environment names in promotion order.",
    )
    parity: Parity = Field(
        default_factory=lambda: Parity(),
        description="What `laneway diff` accepts as a declared difference between environments.",
    )
    canary: Canary = Field(
        default_factory=lambda: Canary(),
        description="How `laneway canary start` rolls a release out by default: steps, "
        "interval, limits, stickiness.",
    )
    # Last on purpose: its validator checks what spans fields, seeing every field before it
    # that is valid, so those problems are reported together with the rest.
    environments: dict[Kind, EnvironmentOverrides] = Field(
        default_factory=dict,
        validate_default=True,
        description="Environment kind -> settings for that kind.",
    )

    @field_validator("env", mode="before")
    @classmethod
    def _env_strings(cls, value: object) -> object:
        return _stringify_env(value)

    @field_validator("environments", mode="after")
    @classmethod
    def _consistent(
        cls, environments: dict[str, EnvironmentOverrides], info: ValidationInfo
    ) -> dict[str, EnvironmentOverrides]:
        problems = _conflicts(info.data, environments)
        if problems:
            raise PydanticCustomError(
                CONFLICT,
                "{summary}",
                {
                    "problems": problems,
                    "summary": "; ".join(
                        f"{'.'.join(loc)}: {message}" for loc, message in problems
                    ),
                },
            )
        return environments

    def routed_service(self) -> str | None:
        """The service an environment's hostname routes to: `web`, else the first with a port."""
        if "web" in self.services and self.services["web"].has_port("web"):
            return "web"
        for name, service in self.services.items():
            if service.has_port(name):
                return name
        return None

    def overrides_for(self, kind: str) -> EnvironmentOverrides | None:
        """The `environments.<kind>` section, if the spec has one; `kind` may be any string."""
        return self.environments.get(kind) if is_kind(kind) else None

    def replicas_for(self, service: str, kind: str) -> int:
        """Replicas of `service` in an environment of `kind`: the kind's override, if any."""
        overrides = self.overrides_for(kind)
        if overrides is not None and service in overrides.replicas:
            return overrides.replicas[service]
        return self.services[service].replicas

    def hotfix_role(self, kind: str) -> str:
        """The role `--hotfix` needs in an environment of `kind`: as the spec says, else
        admin where changes wait for approvals (a hotfix would skip them), else deployer."""
        overrides = self.overrides_for(kind)
        if overrides is None:
            return "deployer"
        if "hotfix_role" in overrides.model_fields_set:
            return overrides.hotfix_role
        return "admin" if self.approvals(kind) else "deployer"

    def approvals(self, kind: str) -> int:
        """Approvals a change to a protected environment of `kind` needs (0: none)."""
        overrides = self.overrides_for(kind)
        return overrides.approvals if overrides is not None and self.protected(kind) else 0

    def protected(self, kind: str) -> bool:
        """Whether environments of `kind` are protected: production is, unless it says not."""
        overrides = self.overrides_for(kind)
        if overrides is not None and overrides.protected is not None:
            return overrides.protected
        return kind == "production"

    def keep_warm_for(self, kind: str) -> float:
        overrides = self.overrides_for(kind)
        if overrides is not None and overrides.keep_warm is not None:
            return seconds(overrides.keep_warm)
        return DEFAULT_KEEP_WARM.get(kind, 0.0)

    def drain_for(self, kind: str) -> float:
        overrides = self.overrides_for(kind)
        if overrides is not None and overrides.drain is not None:
            return seconds(overrides.drain)
        return DEFAULT_DRAIN

    def env_for(self, kind: str) -> dict[str, str]:
        """The spec's variables for `kind`: top-level `env`, then `environments.<kind>.env`."""
        merged = dict(self.env)
        overrides = self.overrides_for(kind)
        if overrides is not None:
            merged.update(overrides.env)
        return merged

    def resource_env_names(self) -> dict[str, str]:
        """Resource name -> the variable that receives its address."""
        return resource_env_names(self.resources)


def resource_env_names(resources: dict[str, Resource]) -> dict[str, str]:
    """Resource name -> variable: `env` if set, else DATABASE_URL for the first postgres
    resource, <NAME>_URL for the other postgres and sqlite ones, <NAME>_DIR for directories."""
    names: dict[str, str] = {}
    first_postgres = True
    for name, resource in resources.items():
        if resource.env:
            names[name] = resource.env
            continue
        key = re.sub(r"[^A-Z0-9]", "_", name.upper())
        if resource.type == "postgres" and first_postgres:
            names[name] = "DATABASE_URL"
        elif resource.type == "directory":
            names[name] = f"{key}_DIR"
        else:
            names[name] = f"{key}_URL"
        if resource.type == "postgres":
            first_postgres = False
    return names


def _conflicts(
    fields: dict[str, Any], environments: dict[str, EnvironmentOverrides]
) -> list[tuple[tuple[str, ...], str]]:
    """Problems that span fields, each with the location it is reported at.

    `fields` holds the fields validated before `environments` that are valid; a check whose
    field is missing (invalid, already reported) is skipped.
    """
    problems: list[tuple[tuple[str, ...], str]] = []
    services: dict[str, Service] | None = fields.get("services")
    resources: dict[str, Resource] | None = fields.get("resources")

    for kind, overrides in environments.items():
        guarded = overrides.protected if overrides.protected is not None else kind == "production"
        if overrides.approvals and not guarded:
            problems.append(
                (
                    ("environments", kind, "approvals"),
                    "approvals apply to protected environments: add `protected: true`",
                )
            )
        if overrides.copy_config and kind != "preview":
            problems.append(
                (
                    ("environments", kind, "copy_config"),
                    "only previews start with config copied from staging",
                )
            )
        if services is not None:
            listed = ", ".join(services)
            for replicated in overrides.replicas:
                if replicated not in services:
                    problems.append(
                        (
                            ("environments", kind, "replicas", replicated),
                            f"no such service{did_you_mean(replicated, list(services))} "
                            f"(services: {listed})",
                        )
                    )
        if resources is not None:
            listed = ", ".join(resources) or "none declared"
            for resource in overrides.data:
                if resource not in resources:
                    problems.append(
                        (
                            ("environments", kind, "data", resource),
                            f"no such resource{did_you_mean(resource, list(resources))} "
                            f"(resources: {listed})",
                        )
                    )

    for name, service in (services or {}).items():
        if service.health is not None and service.port == "none":
            problems.append(
                (("services", name, "health"), "a health check needs a port, but port is none")
            )

    owner: dict[str, str] = {}
    for name, variable in resource_env_names(resources or {}).items():
        if variable in owner:
            problems.append(
                (
                    ("resources", name, "env"),
                    f"{variable} is already the variable of resource {owner[variable]}",
                )
            )
        else:
            owner[variable] = name
        reserved = _reserved(variable)
        if reserved:
            problems.append((("resources", name, "env"), reserved))

    env_maps: list[tuple[tuple[str, ...], dict[str, str]]] = [(("env",), fields.get("env", {}))]
    env_maps += [(("environments", kind, "env"), o.env) for kind, o in environments.items()]
    env_maps += [(("services", name, "env"), s.env) for name, s in (services or {}).items()]
    for loc, env in env_maps:
        for variable in env:
            reserved = _reserved(variable)
            if reserved:
                problems.append(((*loc, variable), reserved))
            elif variable in owner:
                problems.append(
                    (
                        (*loc, variable),
                        f"laneway sets {variable} to the address of resource "
                        f"{owner[variable]}; remove it here or give the resource another `env`",
                    )
                )
    return problems


def did_you_mean(word: str, options: list[str]) -> str:
    """`; did you mean 'x'?` for the nearest option (a prefix counts: `prod`), or ``."""
    lowered = {option.lower(): option for option in options}
    word = word.lower()
    close = difflib.get_close_matches(word, list(lowered), n=1, cutoff=0.6)
    if not close and len(word) >= 3:
        close = [option for option in lowered if option.startswith(word)][:1]
    return f"; did you mean {lowered[close[0]]!r}?" if close else ""


def _reserved(variable: str) -> str | None:
    if variable in INJECTED_ENV:
        return f"laneway sets {variable} itself; choose another name"
    if variable.startswith(RESERVED_ENV_PREFIX):
        return f"names starting with {RESERVED_ENV_PREFIX} are reserved for laneway"
    return None


def _stringify_env(value: object) -> object:
    """YAML reads `DEBUG: 1` as an int; env vars are strings, so scalars are accepted as text."""
    if isinstance(value, dict):
        return {
            k: ("true" if v is True else "false" if v is False else str(v))
            if isinstance(v, (int, float, bool))
            else v
            for k, v in value.items()
        }
    return value
