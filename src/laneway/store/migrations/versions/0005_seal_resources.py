"""resources: details (an address with its database password) sealed with the vault

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 20:00:00.000000

Rows written before kept `{"value": "postgresql://user:password@…"}` in plain text; this
seals each with the instance secret's vault, which `store/db.py` hands over. A store that
has such rows cannot be migrated without it (the server and `laneway up` always give it).
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import context, op

from laneway.errors import Unavailable
from laneway.store.vault import SEALED, Vault

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

resources = sa.table(
    "resources",
    sa.column("environment_id", sa.String),
    sa.column("name", sa.String),
    sa.column("details_json", sa.Text),
)


def _vault() -> Vault | None:
    vault = context.config.attributes.get("vault")
    return vault if isinstance(vault, Vault) else None


def _rows() -> list[tuple[str, str, str]]:
    query = sa.select(resources.c.environment_id, resources.c.name, resources.c.details_json)
    return [(e, n, d) for e, n, d in op.get_bind().execute(query)]


def _write(environment_id: str, name: str, details_json: str) -> None:
    op.get_bind().execute(
        resources.update()
        .where(resources.c.environment_id == environment_id, resources.c.name == name)
        .values(details_json=details_json)
    )


def upgrade() -> None:
    plain = [row for row in _rows() if SEALED not in json.loads(row[2] or "{}")]
    if not plain:
        return
    vault = _vault()
    if vault is None:
        raise Unavailable(
            "store: resource details from before sealing need the instance secret to migrate",
            hint="start `laneway server` (or `laneway up`) once: it migrates with the secret",
        )
    for environment_id, name, details_json in plain:
        details = {str(k): str(v) for k, v in json.loads(details_json or "{}").items()}
        _write(environment_id, name, vault.seal_details(details))


def downgrade() -> None:
    sealed = [row for row in _rows() if SEALED in json.loads(row[2] or "{}")]
    if not sealed:
        return
    vault = _vault()
    if vault is None:
        raise Unavailable("store: unsealing resource details needs the instance secret")
    for environment_id, name, details_json in sealed:
        _write(environment_id, name, json.dumps(vault.open_details(details_json)))
