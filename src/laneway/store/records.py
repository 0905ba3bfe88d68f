"""Rows as records: the store's tables turned into the frozen types of `laneway.core.types`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from laneway.core import rollouts
from laneway.core.types import (
    BuildRecord,
    Desired,
    Environment,
    Kind,
    Phase,
    Release,
    ReleaseState,
    ReplicaState,
    ReplicaStatus,
)
from laneway.store.models import BuildRow, EnvironmentRow, ReleaseRow


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def build_record(row: BuildRow) -> BuildRecord:
    return BuildRecord(
        id=row.id,
        app=row.app,
        commit=row.commit,
        ref=row.ref,
        spec_text=row.spec_text,
        spec_digest=row.spec_digest,
        created_at=aware(row.created_at),
    )


def release_record(row: ReleaseRow) -> Release:
    return Release(
        environment_id=row.environment_id,
        number=row.number,
        build_id=row.build_id,
        commit=row.commit,
        config_version=row.config_version,
        state=ReleaseState(row.state),
        message=row.message or "",
        created_by=row.created_by,
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
        description=row.description or "",
        generation=row.generation or row.number,
        hotfix_reason=row.hotfix_reason,
        replicas=replica_counts(row.replicas_json),
        restarts=restart_times(row.restarts_json),
        flags_version=row.flags_version,
    )


def restart_times(text: str | None) -> dict[str, float]:
    times = json.loads(text or "{}")
    return {str(k): float(v) for k, v in times.items()} if isinstance(times, dict) else {}


def replica_counts(text: str | None) -> dict[str, int]:
    counts = json.loads(text or "{}")
    return {str(k): int(v) for k, v in counts.items()} if isinstance(counts, dict) else {}


def environment_record(row: EnvironmentRow) -> Environment:
    return Environment(
        id=row.id,
        app=row.app,
        name=row.name,
        kind=Kind(row.kind),
        branch=row.branch,
        ref=row.ref,
        build_id=row.build_id,
        commit=row.commit,
        desired=Desired(row.desired),
        phase=Phase(row.phase),
        message=row.message or "",
        hook_release=row.hook_release,
        failure=row.failure,
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
        replicas=tuple(replica_status(r) for r in json.loads(row.replicas_json or "[]")),
        rollout=rollouts.from_json(json.loads(row.rollout_json or "{}")),
        rollout_version=row.rollout_version or 0,
    )


def replica_status(stored: dict[str, Any]) -> ReplicaStatus:
    """A replica status from its stored JSON object (`asdict` of one)."""
    return ReplicaStatus(**{**stored, "state": ReplicaState(stored.get("state", "pending"))})
