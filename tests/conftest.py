"""Shared fixtures: the example app as a git repo, and laneway servers on ports chosen at run time.

Every server gets its own LANEWAY_HOME; at teardown its processes are halted and every
database it made is dropped, whatever the test did.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from laneway.testing import (
    Server,
    git,
)
from laneway.testing import (
    make_server as new_server,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "src" / "laneway" / "examples" / "shop"


@pytest.fixture(scope="session")
def example_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example app with branches main and feature-x (one extra commit)."""
    repo = tmp_path_factory.mktemp("repo") / "shop"
    shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns("__pycache__", ".deps"))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "shop")
    git(repo, "checkout", "-q", "-b", "feature-x")
    (repo / "FEATURE").write_text("x\n")
    git(repo, "add", "FEATURE")
    git(repo, "commit", "-q", "-m", "feature x")
    git(repo, "checkout", "-q", "main")
    return repo


@pytest.fixture(scope="session")
def shared_artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One artifact store for the session, so each commit is built (pip install) once."""
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture
def make_server(tmp_path: Path, shared_artifacts: Path) -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def make(name: str = "lw") -> Server:
        server = new_server(tmp_path / name, artifacts=shared_artifacts)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.teardown()


@pytest.fixture
def server(make_server: Callable[..., Server]) -> Server:
    s = make_server()
    s.start()
    return s
