"""The store's principals and tokens (core/access.py has the rules). Tokens are kept only as
their sha256 and found by it; nothing here returns a hash or a token.

Removing a principal disables it: the row stays (what it did can still name it), its tokens
are revoked, and its name may be given to a new principal. The last admin can be neither
removed nor demoted: the UPDATE that would do it holds only while another admin remains, and
PostgreSQL's `FOR UPDATE` locks the admins first, so that two admins removing each other
cannot both win.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import datetime

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from laneway.core import access
from laneway.core.access import Credential, PrincipalKind, PrincipalRecord, TokenRecord
from laneway.core.types import Role
from laneway.errors import Conflict, NotFound
from laneway.store import db, retrying
from laneway.store.models import PrincipalRow, TokenRow
from laneway.store.records import aware, utcnow

ATTEMPTS = 10


def _maybe(value: datetime | None) -> datetime | None:
    return None if value is None else aware(value)


def principal_record(row: PrincipalRow, *, tokens: int = 0) -> PrincipalRecord:
    return PrincipalRecord(
        id=row.id,
        name=row.name,
        kind=PrincipalKind(row.kind),
        role=Role(row.role),
        created_at=aware(row.created_at),
        removed_at=_maybe(row.removed_at),
        tokens=tokens,
    )


def token_record(row: TokenRow, principal: str) -> TokenRecord:
    return TokenRecord(
        id=row.id,
        principal=principal,
        created_at=aware(row.created_at),
        expires_at=_maybe(row.expires_at),
        last_used_at=_maybe(row.last_used_at),
        revoked_at=_maybe(row.revoked_at),
    )


class AccessStore:
    """Mixed into `Store`, which provides `_session`."""

    _session: Callable[[], AbstractContextManager[Session]]

    # principals ---------------------------------------------------------------------------

    def create_principal(
        self,
        name: str,
        *,
        kind: PrincipalKind,
        role: Role,
        token_hash: str,
        expires_at: datetime | None = None,
    ) -> tuple[PrincipalRecord, TokenRecord]:
        """A new principal with its first token (already hashed by the caller)."""
        access.check_name(name)
        try:
            return retrying.run(
                lambda: self._create_principal(name, kind, role, token_hash, expires_at),
                attempts=ATTEMPTS,
            )
        except retrying.LostRace:
            if self.find_principal(name) is not None:
                raise Conflict(f"a principal named {name!r} exists already") from None
            raise

    def _create_principal(
        self,
        name: str,
        kind: PrincipalKind,
        role: Role,
        token_hash: str,
        expires_at: datetime | None,
    ) -> tuple[PrincipalRecord, TokenRecord]:
        with self._session() as s:
            if _active(s, name) is not None:
                raise Conflict(
                    f"a principal named {name!r} exists already",
                    hint=f"`laneway access token {name}` gives it another token",
                )
            row = PrincipalRow(
                id=secrets.token_hex(4), name=name, kind=kind, role=role, created_at=utcnow()
            )
            s.add(row)
            s.flush()
            token = _add_token(s, row, token_hash, expires_at)
            return principal_record(row, tokens=1), token_record(token, name)

    def find_principal(self, name: str) -> PrincipalRecord | None:
        with self._session() as s:
            row = _active(s, name)
            return None if row is None else principal_record(row)

    def principals(self, *, removed: bool = False, now: datetime) -> list[PrincipalRecord]:
        """By name; with `removed`, the removed ones too. Each with its usable tokens."""
        with self._session() as s:
            query = select(PrincipalRow).order_by(PrincipalRow.name, PrincipalRow.created_at)
            if not removed:
                query = query.where(PrincipalRow.removed_at.is_(None))
            rows = list(s.scalars(query))
            counts = dict(
                s.execute(
                    select(TokenRow.principal_id, func.count())
                    .where(TokenRow.revoked_at.is_(None))
                    .where((TokenRow.expires_at.is_(None)) | (TokenRow.expires_at > now))
                    .group_by(TokenRow.principal_id)
                ).all()
            )
            return [
                principal_record(
                    row, tokens=0 if row.removed_at is not None else int(counts.get(row.id, 0))
                )
                for row in rows
            ]

    def set_role(self, name: str, role: Role) -> PrincipalRecord:
        return retrying.run(lambda: self._set_role(name, role), attempts=ATTEMPTS)

    def _set_role(self, name: str, role: Role) -> PrincipalRecord:
        with self._session() as s:
            row = _existing(s, name)
            record = principal_record(row)
            access.check_keeps_an_admin(record, admins=_admins(s), role=role)
            keeps = [] if role is Role.ADMIN else [_another_admin_stays(row.id)]
            changed = s.execute(
                update(PrincipalRow).where(PrincipalRow.id == row.id, *keeps).values(role=role)
            )
            if db.rowcount(changed) == 0:  # the other admins went meanwhile
                access.check_keeps_an_admin(record, admins=1, role=role)
            return replace(record, role=role)

    def remove_principal(self, name: str) -> PrincipalRecord:
        """Disable `name` and revoke its tokens."""
        return retrying.run(lambda: self._remove_principal(name), attempts=ATTEMPTS)

    def _remove_principal(self, name: str) -> PrincipalRecord:
        with self._session() as s:
            row = _existing(s, name)
            record = principal_record(row)
            access.check_keeps_an_admin(record, admins=_admins(s))
            now = utcnow()
            changed = s.execute(
                update(PrincipalRow)
                .where(PrincipalRow.id == row.id, _another_admin_stays(row.id))
                .values(removed_at=now)
            )
            if db.rowcount(changed) == 0:  # the other admins went meanwhile
                access.check_keeps_an_admin(record, admins=1)
            s.execute(
                update(TokenRow)
                .where(TokenRow.principal_id == row.id, TokenRow.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            return replace(record, removed_at=now)

    # tokens -------------------------------------------------------------------------------

    def add_principal_token(
        self, name: str, *, token_hash: str, expires_at: datetime | None = None
    ) -> TokenRecord:
        with self._session() as s:
            row = _existing(s, name)
            return token_record(_add_token(s, row, token_hash, expires_at), name)

    def tokens_of(self, name: str) -> list[TokenRecord]:
        """Oldest first, revoked and expired ones included."""
        with self._session() as s:
            row = _existing(s, name)
            tokens = s.scalars(
                select(TokenRow)
                .where(TokenRow.principal_id == row.id)
                .order_by(TokenRow.created_at, TokenRow.id)
            )
            return [token_record(t, name) for t in tokens]

    def revoke_token(self, token_id: str) -> TokenRecord:
        """Revoke a token; one revoked already stays as it was."""
        with self._session() as s:
            token = s.get(TokenRow, token_id)
            if token is None:
                raise NotFound(
                    f"no token {token_id!r}",
                    hint="`laneway access tokens NAME` lists a principal's tokens",
                )
            principal = s.get_one(PrincipalRow, token.principal_id)
            if token.revoked_at is None:
                token.revoked_at = utcnow()
            return token_record(token, principal.name)

    def credential(self, token_hash: str) -> Credential | None:
        """The token with this hash and its principal, whatever their state."""
        with self._session() as s:
            found = s.execute(
                select(TokenRow, PrincipalRow)
                .join(PrincipalRow, PrincipalRow.id == TokenRow.principal_id)
                .where(TokenRow.token_hash == token_hash)
            ).first()
            if found is None:
                return None
            token, principal = found
            return Credential(token_record(token, principal.name), principal_record(principal))

    def touch_token(self, token_id: str, *, now: datetime) -> None:
        """Record a use of the token, unless one was recorded within the last minute. Best
        effort: a busy store is no reason to refuse the request being served."""
        stale = now - access.LAST_USED_GRANULARITY
        try:
            with self._session() as s:
                s.execute(
                    update(TokenRow)
                    .where(TokenRow.id == token_id)
                    .where(TokenRow.last_used_at.is_(None) | (TokenRow.last_used_at <= stale))
                    .values(last_used_at=now)
                )
        except retrying.LostRace:
            pass

    def count_tokens(self) -> int:
        with self._session() as s:
            return int(s.scalar(select(func.count()).select_from(TokenRow)) or 0)

    def add_token(self, *, name: str, token_hash: str, role: Role) -> str:
        """A token for the principal `name`, made with `role` if it does not exist (and
        refused if it exists with another role). For the first admin and for tests."""
        with self._session() as s:
            row = _active(s, name)
            if row is None:
                access.check_name(name)
                row = PrincipalRow(
                    id=secrets.token_hex(4),
                    name=name,
                    kind=PrincipalKind.USER,
                    role=role,
                    created_at=utcnow(),
                )
                s.add(row)
                s.flush()
            elif row.role != role:
                raise Conflict(f"principal {name!r} has role {row.role}, not {role}")
            return _add_token(s, row, token_hash, None).id

    def token_by_hash(self, token_hash: str) -> tuple[str, str, Role] | None:
        """(id, principal's name, role) of the token with this hash, if any, in any state."""
        found = self.credential(token_hash)
        if found is None:
            return None
        return found.token.id, found.principal.name, found.principal.role


def _active(s: Session, name: str) -> PrincipalRow | None:
    return s.scalar(
        select(PrincipalRow).where(PrincipalRow.name == name, PrincipalRow.removed_at.is_(None))
    )


def _existing(s: Session, name: str) -> PrincipalRow:
    row = _active(s, name)
    if row is None:
        raise NotFound(f"no principal named {name!r}", hint="`laneway access list` lists them")
    return row


def _another_admin_stays(principal_id: str) -> ColumnElement[bool]:
    """A condition for the UPDATE that removes or demotes `principal_id`: it is no admin, or
    another admin remains. Made in the statement itself, so that it holds under the write:
    SQLite runs a transaction's reads before its first write outside the write's lock."""
    other = aliased(PrincipalRow)
    others = (
        select(func.count())
        .select_from(other)
        .where(other.role == Role.ADMIN, other.removed_at.is_(None), other.id != principal_id)
        .scalar_subquery()
    )
    return or_(PrincipalRow.role != Role.ADMIN, others > 0)


def _admins(s: Session) -> int:
    """Active admins, their rows locked for this transaction where the database can."""
    rows = s.scalars(
        select(PrincipalRow.id)
        .where(PrincipalRow.role == Role.ADMIN, PrincipalRow.removed_at.is_(None))
        .with_for_update()
    )
    return len(list(rows))


def _add_token(
    s: Session, principal: PrincipalRow, token_hash: str, expires_at: datetime | None
) -> TokenRow:
    token = TokenRow(
        id=secrets.token_hex(4),
        principal_id=principal.id,
        token_hash=token_hash,
        created_at=utcnow(),
        expires_at=expires_at,
    )
    s.add(token)
    s.flush()
    return token
