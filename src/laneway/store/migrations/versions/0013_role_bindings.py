"""role_bindings: a principal's role on one environment, or on an environment kind

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08 00:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "role_bindings",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("principal_id", sa.String(16), sa.ForeignKey("principals.id"), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("app", sa.String(64), nullable=True),
        sa.Column("environment", sa.String(64), nullable=True),
        sa.Column("kind", sa.String(16), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_role_bindings_principal_id", "role_bindings", ["principal_id"])


def downgrade() -> None:
    # a developer's role has no meaning before this revision: it reads as a viewer's
    op.execute("UPDATE principals SET role = 'viewer' WHERE role = 'developer'")
    op.drop_index("ix_role_bindings_principal_id", table_name="role_bindings")
    op.drop_table("role_bindings")
