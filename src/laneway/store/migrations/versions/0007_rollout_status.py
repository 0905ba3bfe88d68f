"""environments: one rollout status (core/rollouts.py) in place of release, target, live, warm

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 23:40:00.000000

The four numbers an environment carried, and the `live` state of its releases kept in step
with them, become one JSON value, `rollout_json`, with a version for compare-and-set. Each
environment's status is made from what it had: the stable side is the release marked live
(served by the `live` generation), a newer release is a rollout of one 100% step that the
reconciler takes up again, and the warm generation is kept with its deadline.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

environments = sa.table(
    "environments",
    sa.column("id", sa.String),
    sa.column("release", sa.Integer),
    sa.column("target", sa.Integer),
    sa.column("live", sa.Integer),
    sa.column("warm", sa.Integer),
    sa.column("warm_until", sa.Float),
    sa.column("rollout_json", sa.Text),
)
releases = sa.table(
    "releases",
    sa.column("environment_id", sa.String),
    sa.column("number", sa.Integer),
    sa.column("state", sa.String),
    sa.column("generation", sa.Integer),
)


def _status(
    release: int, target: int, live: int, warm: int, warm_until: float, rows: list[Any]
) -> dict[str, Any]:
    target = target or release
    by_number = {r.number: r for r in rows}
    live_rows = [r for r in rows if r.state == "live"]
    newest_live = max(live_rows, key=lambda r: r.number) if live_rows else None
    stable = None
    if newest_live is not None and live:
        stable = [newest_live.number, newest_live.generation or newest_live.number]
    canary = None if stable is not None and stable[0] == release else [release, target]
    # switched but not yet marked live (a crash between the two): its weight is all
    # clients, for the reconciler to confirm with the router and promote
    switched = canary is not None and live != 0 and target == live
    wanted = by_number.get(release)
    if canary is not None and wanted is not None and wanted.state == "failed":
        canary = None
    warm_side = None
    if warm:
        serving = [r for r in rows if (r.generation or r.number) == warm and r.state != "failed"]
        if serving:
            warm_side = [max(r.number for r in serving), warm]
    return {
        "stable": stable,
        "canary": canary,
        "steps": [{"weight": 10000}],
        "analysis": None,
        "step_index": 0,
        "weight": 10000 if switched and canary is not None else 0,
        "served": None,
        "exposed": bool(switched and canary is not None),
        "warm": warm_side,
        "warm_until": (warm_until or 0.0) if warm_side else 0.0,
        "paused": [],
        "failures": 0,
    }


def upgrade() -> None:
    with op.batch_alter_table("environments") as table:
        table.add_column(sa.Column("rollout_json", sa.Text(), nullable=False, server_default="{}"))
        table.add_column(
            sa.Column("rollout_version", sa.Integer(), nullable=False, server_default="0")
        )
    bind = op.get_bind()
    envs = bind.execute(
        sa.select(
            environments.c.id,
            environments.c.release,
            environments.c.target,
            environments.c.live,
            environments.c.warm,
            environments.c.warm_until,
        )
    ).all()
    for env in envs:
        rows = bind.execute(
            sa.select(releases.c.number, releases.c.state, releases.c.generation).where(
                releases.c.environment_id == env.id
            )
        ).all()
        status = _status(
            env.release, env.target or 0, env.live or 0, env.warm or 0, env.warm_until, list(rows)
        )
        bind.execute(
            environments.update()
            .where(environments.c.id == env.id)
            .values(rollout_json=json.dumps(status, sort_keys=True))
        )
    with op.batch_alter_table("environments") as table:
        for column in ("release", "target", "live", "warm", "warm_until"):
            table.drop_column(column)


def downgrade() -> None:
    with op.batch_alter_table("environments") as table:
        table.add_column(sa.Column("release", sa.Integer(), nullable=False, server_default="1"))
        table.add_column(sa.Column("target", sa.Integer(), nullable=False, server_default="0"))
        table.add_column(sa.Column("live", sa.Integer(), nullable=False, server_default="0"))
        table.add_column(sa.Column("warm", sa.Integer(), nullable=False, server_default="0"))
        table.add_column(sa.Column("warm_until", sa.Float(), nullable=False, server_default="0"))
    bind = op.get_bind()
    full = sa.table(
        "environments",
        sa.column("id", sa.String),
        sa.column("rollout_json", sa.Text),
        sa.column("release", sa.Integer),
        sa.column("target", sa.Integer),
        sa.column("live", sa.Integer),
        sa.column("warm", sa.Integer),
        sa.column("warm_until", sa.Float),
    )
    for env_id, text in bind.execute(sa.select(full.c.id, full.c.rollout_json)).all():
        status = json.loads(text or "{}")
        stable, canary, warm = status.get("stable"), status.get("canary"), status.get("warm")
        wanted = canary or stable or [1, 1]
        bind.execute(
            full.update()
            .where(full.c.id == env_id)
            .values(
                release=wanted[0],
                target=wanted[1],
                live=stable[1] if stable else 0,
                warm=warm[1] if warm else 0,
                warm_until=float(status.get("warm_until") or 0.0),
            )
        )
    with op.batch_alter_table("environments") as table:
        table.drop_column("rollout_version")
        table.drop_column("rollout_json")
