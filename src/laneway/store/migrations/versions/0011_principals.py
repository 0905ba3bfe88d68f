"""principals: users and services owning tokens, which may expire and be revoked

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 02:30:00.000000

Each token had a name and a role of its own. Each becomes a principal of that name and role
(a `user`) holding that token; tokens of one name and one role share a principal. A name that
breaks the rule for principals' names (core/access.py) is made to fit (lowercased, other
characters as '-'), and one taken by a principal of another role gets a `-2`, `-3`... suffix.
"""

from __future__ import annotations

import re
import secrets

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

ACTIVE = sa.text("removed_at IS NULL")


def _fitting(name: str) -> str:
    fitted = re.sub(r"[^a-z0-9-]", "-", name.lower()).lstrip("-")[:56]
    return fitted or "token"


def upgrade() -> None:
    op.create_table(
        "principals",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_principals_active_name",
        "principals",
        ["name"],
        unique=True,
        sqlite_where=ACTIVE,
        postgresql_where=ACTIVE,
    )
    with op.batch_alter_table("tokens") as table:
        table.add_column(sa.Column("principal_id", sa.String(length=16), nullable=True))
        table.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        table.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
        table.add_column(sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))
    _principals_of_tokens()
    with op.batch_alter_table("tokens") as table:
        table.alter_column("principal_id", existing_type=sa.String(length=16), nullable=False)
        table.create_foreign_key("fk_tokens_principal_id", "principals", ["principal_id"], ["id"])
        table.create_index("ix_tokens_principal_id", ["principal_id"])
        table.drop_column("name")
        table.drop_column("role")


def _principals_of_tokens() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT id, name, role, created_at FROM tokens ORDER BY created_at, id")
    ).all()
    taken: dict[str, tuple[str, str]] = {}  # name -> (principal id, role)
    for token_id, name, role, created_at in rows:
        base = _fitting(str(name))
        candidate, n = base, 1
        while candidate in taken and taken[candidate][1] != role:
            n += 1
            candidate = f"{base}-{n}"
        if candidate not in taken:
            principal_id = secrets.token_hex(4)
            bind.execute(
                sa.text(
                    "INSERT INTO principals (id, name, kind, role, created_at) "
                    "VALUES (:id, :name, 'user', :role, :created_at)"
                ),
                {"id": principal_id, "name": candidate, "role": role, "created_at": created_at},
            )
            taken[candidate] = (principal_id, role)
        bind.execute(
            sa.text("UPDATE tokens SET principal_id = :p WHERE id = :id"),
            {"p": taken[candidate][0], "id": token_id},
        )


def downgrade() -> None:
    # a revoked token, or one of a removed principal, would be good again without its
    # principal: it goes (an expired one too, as tokens before did not expire)
    bind = op.get_bind()
    with op.batch_alter_table("tokens") as table:
        table.add_column(sa.Column("name", sa.String(length=64), nullable=True))
        table.add_column(sa.Column("role", sa.String(length=16), nullable=True))
    bind.execute(
        sa.text(
            "DELETE FROM tokens WHERE revoked_at IS NOT NULL OR expires_at IS NOT NULL "
            "OR principal_id IN (SELECT id FROM principals WHERE removed_at IS NOT NULL)"
        )
    )
    bind.execute(
        sa.text(
            "UPDATE tokens SET "
            "name = (SELECT name FROM principals WHERE principals.id = tokens.principal_id), "
            "role = (SELECT role FROM principals WHERE principals.id = tokens.principal_id)"
        )
    )
    with op.batch_alter_table("tokens") as table:
        table.alter_column("name", existing_type=sa.String(length=64), nullable=False)
        table.alter_column("role", existing_type=sa.String(length=16), nullable=False)
        table.drop_index("ix_tokens_principal_id")
        table.drop_constraint("fk_tokens_principal_id", type_="foreignkey")
        table.drop_column("principal_id")
        table.drop_column("expires_at")
        table.drop_column("last_used_at")
        table.drop_column("revoked_at")
    op.drop_index("ix_principals_active_name", table_name="principals")
    op.drop_table("principals")
