"""rollout_verdicts: each verdict of a canary's analysis, with the numbers behind it

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 23:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rollout_verdicts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("environment_id", sa.String(16), nullable=False),
        sa.Column("release", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("weight", sa.Integer(), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("verdict_json", sa.Text(), nullable=False),
    )
    op.create_index(
        "ix_rollout_verdicts_environment_id_release",
        "rollout_verdicts",
        ["environment_id", "release"],
    )


def downgrade() -> None:
    op.drop_index("ix_rollout_verdicts_environment_id_release", "rollout_verdicts")
    op.drop_table("rollout_verdicts")
