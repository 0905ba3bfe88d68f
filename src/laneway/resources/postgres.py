"""PostgreSQL resource: a database and a login role of its own per environment, on one server.

Names are `lw_<owner>_<environment id>_<resource>`, so every database this instance made can
be listed (and orphans dropped) by prefix. The role's password is derived from the instance
secret and the name: a re-run after a crash computes the same password, nothing is stored.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from laneway.errors import Unavailable

PREFIX = "lw_"


class PostgresProvider:
    type = "postgres"

    def __init__(self, admin_url: str, *, owner: str, secret: bytes) -> None:
        self.admin_url = admin_url
        self.owner = owner
        self.secret = secret

    def database_name(self, environment_id: str, name: str) -> str:
        return f"{PREFIX}{self.owner}_{environment_id}_{name.replace('-', '_')}"[:63]

    def _password(self, database: str) -> str:
        return hmac.new(self.secret, database.encode(), hashlib.sha256).hexdigest()[:32]

    def _connect(self) -> psycopg.Connection:
        try:
            return psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5)
        except psycopg.Error as exc:
            raise Unavailable(
                f"postgres: cannot connect to {_without_password(self.admin_url)}: "
                f"{str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__}",
                hint="set LANEWAY_POSTGRES_URL to a server where laneway may create databases",
            ) from None

    def ensure(self, environment_id: str, name: str) -> str:
        database = self.database_name(environment_id, name)
        password = self._password(database)
        try:
            with self._connect() as conn:
                role = sql.Identifier(database)
                if conn.execute(
                    "SELECT 1 FROM pg_roles WHERE rolname = %s", (database,)
                ).fetchone():
                    conn.execute(
                        sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(
                            role, sql.Literal(password)
                        )
                    )
                else:
                    conn.execute(
                        sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                            role, sql.Literal(password)
                        )
                    )
                if not conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
                ).fetchone():
                    conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(role, role))
        except psycopg.Error as exc:
            raise Unavailable(f"postgres: cannot create database {database}: {exc}") from None
        parts = urlsplit(self.admin_url)
        netloc = (
            f"{quote(database)}:{password}@{parts.hostname or '127.0.0.1'}:{parts.port or 5432}"
        )
        return urlunsplit(("postgresql", netloc, f"/{database}", "", ""))

    def destroy(self, environment_id: str, name: str) -> None:
        self._drop(self.database_name(environment_id, name))

    def destroy_all(self, environment_id: str) -> None:
        for database in self._owned_names():
            if database.startswith(f"{PREFIX}{self.owner}_{environment_id}_"):
                self._drop(database)

    def version(self) -> str:
        with self._connect() as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return f"postgres {row[0].split()[0]}" if row else "postgres"

    def owned_environments(self) -> set[str]:
        prefix = f"{PREFIX}{self.owner}_"
        return {name[len(prefix) :].split("_", 1)[0] for name in self._owned_names()}

    def _owned_names(self) -> set[str]:
        prefix = f"{PREFIX}{self.owner}_"
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT datname FROM pg_database WHERE starts_with(datname, %s) "
                "UNION SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)",
                (prefix, prefix),
            ).fetchall()
        return {row[0] for row in rows}

    def _drop(self, database: str) -> None:
        try:
            with self._connect() as conn:
                ident = sql.Identifier(database)
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(ident))
        except psycopg.Error as exc:
            raise Unavailable(f"postgres: cannot drop database {database}: {exc}") from None


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))
