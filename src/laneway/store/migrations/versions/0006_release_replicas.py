"""releases: replica counts set by `laneway scale`, services restarted by `laneway restart`

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 19:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("releases") as table:
        table.add_column(sa.Column("replicas_json", sa.Text(), nullable=False, server_default="{}"))
        table.add_column(sa.Column("restarts_json", sa.Text(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("releases") as table:
        table.drop_column("restarts_json")
        table.drop_column("replicas_json")
