"""releases: the flag set version in force when each went live

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08 00:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("releases") as table:
        table.add_column(sa.Column("flags_version", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("releases") as table:
        table.drop_column("flags_version")
