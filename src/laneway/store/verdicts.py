"""The store's canary verdicts: one row per judgement, kept with the environment."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from laneway.store.models import VerdictRow
from laneway.store.records import aware, utcnow


@dataclass(frozen=True)
class VerdictRecord:
    environment_id: str
    release: int
    step: int
    """1-based, as `canary status` shows it."""
    weight: int
    time: datetime
    outcome: str
    summary: str
    detail: dict[str, Any]
    """The verdict's checks with their numbers, the window and each side's rate."""


MAX_VERDICTS = 500
"""Verdicts kept per environment; older ones go as new ones come."""


class VerdictStore:
    """Mixed into `Store`, which provides `_session`."""

    _session: Callable[[], AbstractContextManager[Session]]

    def add_verdict(
        self,
        environment_id: str,
        *,
        release: int,
        step: int,
        weight: int,
        outcome: str,
        summary: str,
        detail: dict[str, Any],
    ) -> None:
        with self._session() as s:
            s.add(
                VerdictRow(
                    environment_id=environment_id,
                    release=release,
                    step=step,
                    weight=weight,
                    time=utcnow(),
                    outcome=outcome,
                    summary=summary,
                    verdict_json=json.dumps(detail, sort_keys=True),
                )
            )
            s.flush()
            stale = list(
                s.scalars(
                    select(VerdictRow)
                    .where(VerdictRow.environment_id == environment_id)
                    .order_by(VerdictRow.id.desc())
                    .offset(MAX_VERDICTS)
                )
            )
            for row in stale:
                s.delete(row)

    def verdicts(self, environment_id: str, *, release: int | None = None) -> list[VerdictRecord]:
        """Oldest first."""
        with self._session() as s:
            query = select(VerdictRow).where(VerdictRow.environment_id == environment_id)
            if release is not None:
                query = query.where(VerdictRow.release == release)
            rows = s.scalars(query.order_by(VerdictRow.id))
            return [
                VerdictRecord(
                    environment_id=row.environment_id,
                    release=row.release,
                    step=row.step,
                    weight=row.weight,
                    time=aware(row.time),
                    outcome=row.outcome,
                    summary=row.summary,
                    detail=json.loads(row.verdict_json),
                )
                for row in rows
            ]
