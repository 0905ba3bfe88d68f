"""The laneway.yaml model: what an app is made of. Pure: no I/O.

Field names here are the spec's public vocabulary (docs/spec.md documents each one).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DNS_LABEL = r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$"
ENV_KEY = r"^[A-Za-z_][A-Za-z0-9_]*$"
KINDS = ("development", "preview", "staging", "production")
Kind = Literal["development", "preview", "staging", "production"]
DURATION = r"^\d+(s|m|h|d)$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HealthCheck(_Strict):
    """An HTTP GET that must answer 2xx or 3xx before a replica takes traffic."""

    path: str = Field(pattern=r"^/", description="Path requested on the service's port.")
    timeout: float = Field(default=2.0, gt=0, le=60, description="Seconds per attempt.")
    interval: float = Field(default=0.5, gt=0, le=60, description="Seconds between attempts.")
    grace: float = Field(
        default=60.0, gt=0, le=3600, description="Seconds a new replica has to become healthy."
    )


class Service(_Strict):
    command: str = Field(min_length=1, description="Shell command; $PORT is set when `port` is auto.")
    port: Literal["auto", "none"] | None = Field(
        default=None,
        description="`auto`: laneway picks a free port and passes it as $PORT; `none`: no port. "
        "Default: auto when the service has a health check or is named `web`, else none.",
    )
    health: HealthCheck | None = Field(
        default=None, description="HTTP health check; a path string is short for {path: ...}."
    )
    replicas: int = Field(default=1, ge=0, le=64)
    env: dict[Annotated[str, Field(pattern=ENV_KEY)], str] = Field(default_factory=dict)

    @field_validator("health", mode="before")
    @classmethod
    def _health_path(cls, value: object) -> object:
        return {"path": value} if isinstance(value, str) else value

    @field_validator("env", mode="before")
    @classmethod
    def _env_strings(cls, value: object) -> object:
        return _stringify_env(value)

    def has_port(self, name: str) -> bool:
        if self.port is not None:
            return self.port == "auto"
        return self.health is not None or name == "web"


class Resource(_Strict):
    type: Literal["postgres", "sqlite", "directory"]
    env: Annotated[str, Field(pattern=ENV_KEY)] | None = Field(
        default=None,
        description="Variable that receives its address. Default: DATABASE_URL for the first "
        "postgres resource, else <NAME>_URL (postgres, sqlite) or <NAME>_DIR (directory).",
    )


class Build(_Strict):
    command: str | None = Field(default=None, description="Run in the unpacked commit tree.")


class Hooks(_Strict):
    release: str | None = Field(
        default=None, description="Runs once per release, before the release takes traffic."
    )


class DataSource(_Strict):
    from_: str = Field(alias="from")
    mask: list[str] = Field(default_factory=list)


class EnvironmentOverrides(_Strict):
    """Settings that apply to every environment of one kind."""

    env: dict[Annotated[str, Field(pattern=ENV_KEY)], str] = Field(default_factory=dict)
    replicas: dict[str, Annotated[int, Field(ge=0, le=64)]] = Field(default_factory=dict)
    protected: bool | None = None
    ttl: Annotated[str, Field(pattern=DURATION)] | None = None
    sleep_after: Annotated[str, Field(pattern=DURATION)] | None = None
    data: dict[str, DataSource] = Field(default_factory=dict)

    @field_validator("env", mode="before")
    @classmethod
    def _env_strings(cls, value: object) -> object:
        return _stringify_env(value)


class Spec(_Strict):
    app: str = Field(pattern=DNS_LABEL, description="App name; part of every hostname.")
    build: Build = Field(default_factory=Build)
    env: dict[Annotated[str, Field(pattern=ENV_KEY)], str] = Field(default_factory=dict)
    services: dict[Annotated[str, Field(pattern=DNS_LABEL)], Service] = Field(min_length=1)
    resources: dict[Annotated[str, Field(pattern=DNS_LABEL)], Resource] = Field(
        default_factory=dict
    )
    hooks: Hooks = Field(default_factory=Hooks)
    pipeline: list[Annotated[str, Field(pattern=DNS_LABEL)]] = Field(
        default_factory=lambda: ["staging", "production"],
        description="Environment names in promotion order.",
    )
    environments: dict[Kind, EnvironmentOverrides] = Field(default_factory=dict)

    @field_validator("env", mode="before")
    @classmethod
    def _env_strings(cls, value: object) -> object:
        return _stringify_env(value)

    @model_validator(mode="after")
    def _replicas_name_services(self) -> Spec:
        for kind, overrides in self.environments.items():
            for service in overrides.replicas:
                if service not in self.services:
                    raise ValueError(
                        f"environments.{kind}.replicas.{service}: no such service "
                        f"(services: {', '.join(sorted(self.services))})"
                    )
        return self

    def routed_service(self) -> str | None:
        """The service the router sends an environment's hostname to: `web`, else the first with a port."""
        if "web" in self.services and self.services["web"].has_port("web"):
            return "web"
        for name, service in self.services.items():
            if service.has_port(name):
                return name
        return None

    def replicas_for(self, service: str, kind: str) -> int:
        overrides = self.environments.get(kind)  # type: ignore[call-overload]
        if overrides is not None and service in overrides.replicas:
            return overrides.replicas[service]
        return self.services[service].replicas

    def env_for(self, kind: str) -> dict[str, str]:
        merged = dict(self.env)
        overrides = self.environments.get(kind)  # type: ignore[call-overload]
        if overrides is not None:
            merged.update(overrides.env)
        return merged

    def resource_env_names(self) -> dict[str, str]:
        names: dict[str, str] = {}
        first_postgres = True
        for name, resource in self.resources.items():
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
