"""feature flags: app-level definitions, per-environment flag sets, change history

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 10:02:11.118204
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "app_flags",
        sa.Column("app", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("definition_json", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("app", "key"),
    )
    op.create_table(
        "flag_sets",
        sa.Column("environment_id", sa.String(length=16), nullable=False),
        sa.Column("app", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document_json", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("environment_id"),
    )
    op.create_table(
        "flag_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("environment_id", sa.String(length=16), nullable=False),
        sa.Column("app", sa.String(length=64), nullable=False),
        sa.Column("flag_key", sa.String(length=255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("before_json", sa.Text(), nullable=True),
        sa.Column("after_json", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_flag_changes_environment_id_flag_key",
        "flag_changes",
        ["environment_id", "flag_key"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_flag_changes_environment_id_flag_key", table_name="flag_changes")
    op.drop_table("flag_changes")
    op.drop_table("flag_sets")
    op.drop_table("app_flags")
