"""Which provider serves which resource type, built from the settings."""

from __future__ import annotations

from laneway.resources.base import ResourceProvider
from laneway.resources.files import DirectoryProvider, SqliteProvider
from laneway.resources.postgres import PostgresProvider
from laneway.settings import Settings


def providers(settings: Settings, *, secret: bytes) -> dict[str, ResourceProvider]:
    return {
        "postgres": PostgresProvider(settings.postgres_url, owner=settings.owner, secret=secret),
        "sqlite": SqliteProvider(settings.environments_dir),
        "directory": DirectoryProvider(settings.environments_dir),
    }
