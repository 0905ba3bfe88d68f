"""pipeline: generations of processes, warm releases, config per release

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 10:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("environments") as table:
        table.add_column(sa.Column("target", sa.Integer(), nullable=False, server_default="0"))
        table.add_column(sa.Column("live", sa.Integer(), nullable=False, server_default="0"))
        table.add_column(sa.Column("warm", sa.Integer(), nullable=False, server_default="0"))
        table.add_column(sa.Column("warm_until", sa.Float(), nullable=False, server_default="0"))
    with op.batch_alter_table("port_leases") as table:
        table.add_column(sa.Column("generation", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("releases") as table:
        table.add_column(sa.Column("description", sa.Text(), nullable=False, server_default=""))
        table.add_column(sa.Column("generation", sa.Integer(), nullable=False, server_default="0"))
        table.add_column(sa.Column("hotfix_reason", sa.Text(), nullable=True))
        table.add_column(sa.Column("config_sealed", sa.Text(), nullable=False, server_default=""))
    # environments made before: their one release runs, and serves if it was running
    op.execute("UPDATE environments SET target = release")
    op.execute(
        "UPDATE environments SET live = release WHERE phase IN ('running', 'degraded', 'starting')"
    )
    op.execute("UPDATE releases SET generation = number")
    op.execute(
        "UPDATE port_leases SET generation = COALESCE((SELECT e.release FROM environments e "
        "WHERE e.id = port_leases.environment_id), 0)"
    )


def downgrade() -> None:
    with op.batch_alter_table("releases") as table:
        for column in ("config_sealed", "hotfix_reason", "generation", "description"):
            table.drop_column(column)
    with op.batch_alter_table("port_leases") as table:
        table.drop_column("generation")
    with op.batch_alter_table("environments") as table:
        for column in ("warm_until", "warm", "live", "target"):
            table.drop_column(column)
