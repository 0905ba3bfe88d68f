"""SQLAlchemy tables of the control plane's state. Only `store/` imports this."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class AppRow(Base):
    __tablename__ = "apps"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    repo: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class BuildRow(Base):
    __tablename__ = "builds"
    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    app: Mapped[str] = mapped_column(ForeignKey("apps.name"))
    commit: Mapped[str] = mapped_column(String(64))
    ref: Mapped[str] = mapped_column(Text)
    spec_text: Mapped[str] = mapped_column(Text)
    spec_digest: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EnvironmentRow(Base):
    __tablename__ = "environments"
    __table_args__ = (Index("ix_environments_app_name", "app", "name", unique=True),)
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    app: Mapped[str] = mapped_column(ForeignKey("apps.name"))
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    branch: Mapped[str | None] = mapped_column(Text)
    ref: Mapped[str | None] = mapped_column(Text)
    build_id: Mapped[str | None] = mapped_column(String(80))
    commit: Mapped[str | None] = mapped_column(String(64))
    desired: Mapped[str] = mapped_column(String(16))
    phase: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text, default="")
    hook_release: Mapped[int] = mapped_column(Integer, default=0)
    failure: Mapped[str | None] = mapped_column(Text)
    replicas_json: Mapped[str] = mapped_column(Text, default="[]")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    rollout_json: Mapped[str] = mapped_column(Text, default="{}")
    """The environment's `RolloutStatus` (core/rollouts.py): which release takes what traffic."""
    rollout_version: Mapped[int] = mapped_column(Integer, default=0)
    """Bumped by every write of `rollout_json`: writers compare and set it."""


class PortLeaseRow(Base):
    __tablename__ = "port_leases"
    port: Mapped[int] = mapped_column(Integer, primary_key=True)
    environment_id: Mapped[str] = mapped_column(String(16), index=True)
    service: Mapped[str] = mapped_column(String(64))
    index: Mapped[int] = mapped_column(Integer)
    generation: Mapped[int] = mapped_column(Integer, default=0)


class ResourceRow(Base):
    __tablename__ = "resources"
    environment_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    details_json: Mapped[str] = mapped_column(Text, default="{}")


class PrincipalRow(Base):
    """A user or a service (core/access.py). A removed one stays, its tokens refused, so
    that what it did can still name it; its name may be taken again."""

    __tablename__ = "principals"
    __table_args__ = (
        Index(
            "ix_principals_active_name",
            "name",
            unique=True,
            sqlite_where=text("removed_at IS NULL"),
            postgresql_where=text("removed_at IS NULL"),
        ),
    )
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TokenRow(Base):
    """A principal's token, kept only as its sha256 (`api/auth.py`)."""

    __tablename__ = "tokens"
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    principal_id: Mapped[str] = mapped_column(ForeignKey("principals.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RoleBindingRow(Base):
    """A grant: a principal's role on one environment of an app, or on an environment kind
    of an app (or of every app, `app` NULL). core/grants.py has the rules."""

    __tablename__ = "role_bindings"
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    principal_id: Mapped[str] = mapped_column(ForeignKey("principals.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    app: Mapped[str | None] = mapped_column(String(64))
    environment: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EventRow(Base):
    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    environment_id: Mapped[str] = mapped_column(String(16), index=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    type: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)


class ReleaseRow(Base):
    __tablename__ = "releases"
    environment_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    build_id: Mapped[str | None] = mapped_column(String(80))
    commit: Mapped[str | None] = mapped_column(String(64))
    config_version: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    description: Mapped[str] = mapped_column(Text, default="")
    generation: Mapped[int] = mapped_column(Integer, default=0)
    hotfix_reason: Mapped[str | None] = mapped_column(Text)
    config_sealed: Mapped[str] = mapped_column(Text, default="")
    """The release's config, encrypted (store/vault.py): values never sit in the store as text."""
    replicas_json: Mapped[str] = mapped_column(Text, default="{}")
    """Replica counts per service set by `laneway scale`, over the spec's (JSON object)."""
    flags_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """The environment's flag set version when this release went live (flags are runtime
    switches, not part of a release: this says what it ran with)."""
    restarts_json: Mapped[str] = mapped_column(Text, default="{}")
    """Service -> when `laneway restart ENV SERVICE` asked (epoch seconds): its replicas
    started before then are replaced, one at a time (JSON object)."""


class AppFlagRow(Base):
    """A flag created for a whole app: the definition environments without one start from."""

    __tablename__ = "app_flags"
    app: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    definition_json: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class FlagSetRow(Base):
    """One environment's flagd document; `version` is compared and set on every write."""

    __tablename__ = "flag_sets"
    environment_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    app: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    document_json: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(String(64))
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class FlagChangeRow(Base):
    __tablename__ = "flag_changes"
    __table_args__ = (
        Index("ix_flag_changes_environment_id_flag_key", "environment_id", "flag_key"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    environment_id: Mapped[str] = mapped_column(String(16))
    app: Mapped[str] = mapped_column(String(64))
    flag_key: Mapped[str] = mapped_column(String(255))
    version: Mapped[int] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(64))
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    before_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    after_json: Mapped[str | None] = mapped_column(Text, nullable=True)


class VerdictRow(Base):
    """One verdict of a canary's analysis: what was compared, the outcome, the numbers."""

    __tablename__ = "rollout_verdicts"
    __table_args__ = (
        Index("ix_rollout_verdicts_environment_id_release", "environment_id", "release"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    environment_id: Mapped[str] = mapped_column(String(16))
    release: Mapped[int] = mapped_column(Integer)
    step: Mapped[int] = mapped_column(Integer)
    weight: Mapped[int] = mapped_column(Integer)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str] = mapped_column(Text)
    verdict_json: Mapped[str] = mapped_column(Text)


class AuditRow(Base):
    """One audit record (core/audit.py), chained to the one before by its hash. Append-only
    and kept for good: no foreign key, so a record outlives the environment it names."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_app_environment", "app", "environment"),
        Index("ix_audit_log_time", "time"),
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    time: Mapped[str] = mapped_column(String(32))
    principal: Mapped[str | None] = mapped_column(String(64), nullable=True)
    token_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    action: Mapped[str] = mapped_column(Text)
    app: Mapped[str | None] = mapped_column(String(64), nullable=True)
    environment: Mapped[str | None] = mapped_column(String(64), nullable=True)
    outcome: Mapped[str] = mapped_column(String(16))
    status: Mapped[int] = mapped_column(Integer)
    source: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail_json: Mapped[str] = mapped_column(Text)
    previous: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpointRow(Base):
    """The one row (id 1) of the audit log's signed checkpoint: the newest seq and hash."""

    __tablename__ = "audit_checkpoint"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(64))


class ApprovalRow(Base):
    """A change to a protected environment waiting for approvals (`core.approvals.Request`,
    as JSON), and what became of it; kept after the environment is destroyed."""

    __tablename__ = "approval_requests"
    __table_args__ = (Index("ix_approval_requests_app_state", "app", "state"),)
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    app: Mapped[str] = mapped_column(String(64))
    environment: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    request_json: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    """Bumped by every write: approvals compare and set it."""
