"""Request and response bodies of the HTTP API (pydantic at the edge)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from laneway.core.types import Environment, Kind, Release
from laneway.spec.model import DNS_LABEL


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AppIn(_Body):
    repo: str = Field(min_length=1, description="Absolute path of the app's git repository.")


class AppOut(BaseModel):
    name: str
    repo: str
    created_at: datetime


class EnvironmentIn(_Body):
    name: str = Field(pattern=DNS_LABEL, description="Lowercase DNS label, e.g. feature-x.")
    kind: Kind = Kind.PREVIEW
    branch: str | None = Field(default=None, min_length=1, max_length=255)
    ref: str | None = Field(default=None, min_length=1, max_length=255)
    build: str | None = Field(
        default=None,
        pattern=r"^(sha256:)?[0-9a-f]{8,64}$",
        description="A build id, or an unambiguous prefix of at least 8 hex digits.",
    )


class ReplicaOut(BaseModel):
    service: str
    index: int
    pid: int | None
    port: int | None
    state: str
    restarts: int
    message: str


class EnvironmentOut(BaseModel):
    id: str
    app: str
    name: str
    kind: str
    url: str
    branch: str | None
    ref: str | None
    build: str | None
    commit: str | None
    release: str
    desired: str
    phase: str
    message: str
    replicas: list[ReplicaOut]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, environment: Environment, *, url: str) -> EnvironmentOut:
        return cls(
            id=environment.id,
            app=environment.app,
            name=environment.name,
            kind=str(environment.kind),
            url=url,
            branch=environment.branch,
            ref=environment.ref,
            build=environment.build_id,
            commit=environment.commit,
            release=environment.release_name,
            desired=str(environment.desired),
            phase=str(environment.phase),
            message=environment.message,
            replicas=[
                ReplicaOut(
                    service=r.service,
                    index=r.index,
                    pid=r.pid,
                    port=r.port,
                    state=r.state,
                    restarts=r.restarts,
                    message=r.message,
                )
                for r in environment.replicas
            ],
            created_at=environment.created_at,
            updated_at=environment.updated_at,
        )


class ReleaseOut(BaseModel):
    number: int
    name: str
    build: str | None
    commit: str | None
    config_version: int
    state: str
    message: str
    created_by: str
    created_at: datetime

    @classmethod
    def of(cls, release: Release) -> ReleaseOut:
        return cls(
            number=release.number,
            name=release.name,
            build=release.build_id,
            commit=release.commit,
            config_version=release.config_version,
            state=str(release.state),
            message=release.message,
            created_by=release.created_by,
            created_at=release.created_at,
        )


class BuildIn(_Body):
    ref: str = Field(default="HEAD", min_length=1, max_length=255)


class BuildOut(BaseModel):
    id: str
    app: str
    commit: str
    ref: str
    spec_digest: str
    created_at: datetime


class EventOut(BaseModel):
    id: int
    time: datetime
    type: str
    message: str
