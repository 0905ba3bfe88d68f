"""The store's grants (role bindings; core/grants.py has the rules). A grant belongs to a
principal by its id: a removed principal's grants stay with it, not with a new principal of
the same name."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from laneway.core import grants
from laneway.core.grants import Grant
from laneway.core.types import Kind, Role
from laneway.errors import NotFound
from laneway.store.models import PrincipalRow, RoleBindingRow
from laneway.store.records import aware, utcnow


def grant_record(row: RoleBindingRow, principal: str) -> Grant:
    return Grant(
        id=row.id,
        principal=principal,
        role=Role(row.role),
        app=row.app,
        environment=row.environment,
        kind=None if row.kind is None else Kind(row.kind),
        created_at=aware(row.created_at),
    )


class GrantStore:
    """Mixed into `Store`, which provides `_session`."""

    _session: Callable[[], AbstractContextManager[Session]]

    def add_grant(
        self, name: str, role: Role, *, app: str | None, environment: str | None, kind: str | None
    ) -> Grant:
        """Grant `name` `role` on `app/environment` or on `kind` (of `app`, or of every app).
        The same scope granted again replaces the role it had (the same role: unchanged)."""
        checked_kind = grants.check_grant(role, app=app, environment=environment, kind=kind)
        with self._session() as s:
            principal = _principal(s, name)
            row = s.scalar(
                select(RoleBindingRow).where(
                    RoleBindingRow.principal_id == principal.id,
                    _same(RoleBindingRow.app, app),
                    _same(RoleBindingRow.environment, environment),
                    _same(RoleBindingRow.kind, checked_kind),
                )
            )
            if row is None:
                row = RoleBindingRow(
                    id=secrets.token_hex(4),
                    principal_id=principal.id,
                    app=app,
                    environment=environment,
                    kind=checked_kind,
                    created_at=utcnow(),
                )
                s.add(row)
            row.role = role
            s.flush()
            return grant_record(row, name)

    def grants(self, name: str | None = None) -> list[Grant]:
        """The grants of active principals (of `name` only, if given), by principal."""
        with self._session() as s:
            query = (
                select(RoleBindingRow, PrincipalRow.name)
                .join(PrincipalRow, PrincipalRow.id == RoleBindingRow.principal_id)
                .where(PrincipalRow.removed_at.is_(None))
                .order_by(PrincipalRow.name, RoleBindingRow.created_at, RoleBindingRow.id)
            )
            if name is not None:
                query = query.where(PrincipalRow.id == _principal(s, name).id)
            return [grant_record(row, principal) for row, principal in s.execute(query).all()]

    def grants_of_principal(self, principal_id: str, name: str) -> list[Grant]:
        """What a request's caller holds, read on each request: a revoked grant is gone
        from the next request on."""
        with self._session() as s:
            rows = s.scalars(
                select(RoleBindingRow).where(RoleBindingRow.principal_id == principal_id)
            )
            return [grant_record(row, name) for row in rows]

    def remove_grant(self, grant_id: str) -> Grant:
        with self._session() as s:
            row = s.get(RoleBindingRow, grant_id)
            if row is None:
                raise NotFound(f"no grant {grant_id!r}", hint="`laneway access grants` lists them")
            principal = s.get_one(PrincipalRow, row.principal_id)
            record = grant_record(row, principal.name)
            s.delete(row)
            return record


def _principal(s: Session, name: str) -> PrincipalRow:
    row = s.scalar(
        select(PrincipalRow).where(PrincipalRow.name == name, PrincipalRow.removed_at.is_(None))
    )
    if row is None:
        raise NotFound(f"no principal named {name!r}", hint="`laneway access list` lists them")
    return row


def _same(column: InstrumentedAttribute[str | None], value: str | None) -> ColumnElement[bool]:
    return column.is_(None) if value is None else column == value
