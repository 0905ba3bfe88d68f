"""SQLite-file and directory resources: paths under the environment's own data directory."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

VERSIONS = {"sqlite": f"sqlite {sqlite3.sqlite_version}", "directory": "directory"}


class SqliteProvider:
    type = "sqlite"

    def __init__(self, environments_dir: Path) -> None:
        self.root = environments_dir

    def path(self, environment_id: str, name: str) -> Path:
        return self.root / environment_id / "data" / f"{name}.sqlite3"

    def ensure(self, environment_id: str, name: str) -> str:
        path = self.path(environment_id, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        sqlite3.connect(path).close()
        return f"sqlite:///{path.resolve()}"

    def destroy(self, environment_id: str, name: str) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{self.path(environment_id, name)}{suffix}").unlink(missing_ok=True)

    def version(self) -> str:
        return VERSIONS[self.type]

    def owned_environments(self) -> set[str]:
        return set()  # lives in the environment directory, which the controller removes whole

    def destroy_all(self, environment_id: str) -> None:
        data = self.root / environment_id / "data"
        for path in data.glob("*.sqlite3*"):
            path.unlink(missing_ok=True)


class DirectoryProvider:
    type = "directory"

    def __init__(self, environments_dir: Path) -> None:
        self.root = environments_dir

    def path(self, environment_id: str, name: str) -> Path:
        return self.root / environment_id / "data" / name

    def ensure(self, environment_id: str, name: str) -> str:
        path = self.path(environment_id, name)
        path.mkdir(parents=True, exist_ok=True)
        return str(path.resolve())

    def destroy(self, environment_id: str, name: str) -> None:
        shutil.rmtree(self.path(environment_id, name), ignore_errors=True)

    def version(self) -> str:
        return VERSIONS[self.type]

    def owned_environments(self) -> set[str]:
        return set()

    def destroy_all(self, environment_id: str) -> None:
        data = self.root / environment_id / "data"
        for path in data.iterdir() if data.is_dir() else ():
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
