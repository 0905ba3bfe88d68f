"""audit_log: the tamper-evident audit records and their signed checkpoint

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 02:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # no foreign key: a record outlives the app and environment it names
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("time", sa.String(32), nullable=False),
        sa.Column("principal", sa.String(64), nullable=True),
        sa.Column("token_id", sa.String(64), nullable=True),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("app", sa.String(64), nullable=True),
        sa.Column("environment", sa.String(64), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(64), nullable=True),
        sa.Column("detail_json", sa.Text(), nullable=False),
        sa.Column("previous", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_log_app_environment", "audit_log", ["app", "environment"])
    op.create_index("ix_audit_log_time", "audit_log", ["time"])
    op.create_table(
        "audit_checkpoint",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("audit_checkpoint")
    op.drop_index("ix_audit_log_time", "audit_log")
    op.drop_index("ix_audit_log_app_environment", "audit_log")
    op.drop_table("audit_log")
