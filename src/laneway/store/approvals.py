"""The store's approval requests: one row each, the request as JSON, written compare-and-set
so that two approvals at once cannot both count as the last one."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from laneway.core import approvals
from laneway.errors import NotFound
from laneway.store import db
from laneway.store.models import ApprovalRow

MAX_LISTED = 200


class ApprovalStore:
    """Mixed into `Store`, which provides `_session`."""

    _session: Callable[[], AbstractContextManager[Session]]

    def add_request(self, request: approvals.Request) -> None:
        with self._session() as s:
            s.add(
                ApprovalRow(
                    id=request.id,
                    app=request.app,
                    environment=request.environment,
                    state=str(request.state),
                    created_at=request.created,
                    request_json=json.dumps(approvals.to_json(request), sort_keys=True),
                    version=1,
                )
            )

    def get_request(self, request_id: str) -> tuple[approvals.Request, int]:
        """The request and its version, for `save_request`."""
        with self._session() as s:
            row = s.get(ApprovalRow, request_id)
            if row is None:
                raise NotFound(
                    f"no approval request {request_id!r}", hint="`laneway approvals` lists them"
                )
            return approvals.from_json(json.loads(row.request_json)), row.version

    def save_request(self, request: approvals.Request, expected_version: int) -> bool:
        """Write `request` if nothing else wrote it since `expected_version` was read."""
        with self._session() as s:
            result = s.execute(
                update(ApprovalRow)
                .where(ApprovalRow.id == request.id)
                .where(ApprovalRow.version == expected_version)
                .values(
                    state=str(request.state),
                    request_json=json.dumps(approvals.to_json(request), sort_keys=True),
                    version=expected_version + 1,
                )
            )
            return db.rowcount(result) == 1

    def list_requests(
        self, *, app: str | None = None, state: str | None = None
    ) -> list[approvals.Request]:
        """Newest first, at most `MAX_LISTED`."""
        with self._session() as s:
            query = select(ApprovalRow.request_json)
            if app is not None:
                query = query.where(ApprovalRow.app == app)
            if state is not None:
                query = query.where(ApprovalRow.state == state)
            rows = s.scalars(query.order_by(ApprovalRow.created_at.desc()).limit(MAX_LISTED))
            return [approvals.from_json(json.loads(text)) for text in rows]
