"""The release hook: creates shop's schema if it is missing. Safe to run any number of times.

    DATABASE_URL=postgresql://... python -m shop.migrate

Exits 0 when the schema is in place, else non-zero with one line on stderr.
"""

from __future__ import annotations

import psycopg

from shop import connect, fail, log, one_line, require_env

# Held for the duration of the migration, so that two runs at once (a retried deploy
# while the first still runs) do not race on CREATE TABLE IF NOT EXISTS.
LOCK_KEY = 0x73686F70  # "shop"

SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS counters (
        name  text PRIMARY KEY,
        value bigint NOT NULL DEFAULT 0
    )
    """,
    "INSERT INTO counters (name, value) VALUES ('visits', 0) ON CONFLICT (name) DO NOTHING",
    """
    CREATE TABLE IF NOT EXISTS jobs (
        id         bigserial PRIMARY KEY,
        payload    jsonb NOT NULL DEFAULT '{}'::jsonb,
        status     text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'done')),
        result     text,
        created_at timestamptz NOT NULL DEFAULT now(),
        done_at    timestamptz
    )
    """,
    "CREATE INDEX IF NOT EXISTS jobs_queued ON jobs (id) WHERE status = 'queued'",
    """
    CREATE TABLE IF NOT EXISTS heartbeat (
        name    text PRIMARY KEY,
        pid     integer NOT NULL,
        beat_at timestamptz NOT NULL
    )
    """,
)


def migrate(url: str) -> None:
    with connect(url, "migrate") as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        for statement in SCHEMA:
            conn.execute(statement)


def main() -> int:
    url = require_env("migrate", "DATABASE_URL")
    try:
        migrate(url)
    except psycopg.Error as exc:
        raise fail("migrate", f"failed: {one_line(exc)}") from None
    log("migrate", "schema ready (counters, jobs, heartbeat)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
