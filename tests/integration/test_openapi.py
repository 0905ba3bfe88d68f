"""The OpenAPI document is true: Schemathesis generates requests from it against a real
server and finds no 5xx and no answer the document does not describe (status, content type,
body schema, headers; 405 with `Allow` for a method a path does not take; auth enforced).
Bounded: a few examples per operation, with a fixed seed, so a failure can be replayed."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from laneway.testing import Server, git, make_server

pytestmark = pytest.mark.integration

CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "10"))
"""Per operation; SCHEMATHESIS_EXAMPLES=100 for a longer run (60 passed too)."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("openapi")
    repo = base / "repo"
    repo.mkdir()
    (repo / "laneway.yaml").write_text(
        "app: shop\nservices:\n  web: {command: python3 -m http.server $PORT --bind 127.0.0.1}\n"
    )
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "shop")
    server = make_server(base / "lw")
    try:
        server.start()
        with server.http() as http:
            assert http.put("/api/v1/apps/shop", json={"repo": str(repo)}).status_code == 200
            staging = {"name": "staging", "kind": "staging", "branch": "main"}
            response = http.post("/api/v1/apps/shop/environments", json=staging)
            assert response.status_code == 202, response.text
        yield server
    finally:
        server.teardown()


def test_schemathesis_finds_no_server_error_and_no_conformance_failure(server, tmp_path):
    command = shutil.which("schemathesis")
    assert command, "schemathesis is a test dependency (pyproject.toml [test])"
    result = subprocess.run(
        [
            command,
            "--no-color",
            "--config-file",
            str(CONFIG),
            "run",
            f"{server.url}/openapi.json",
            "--header",
            f"Authorization: Bearer {server.token()}",
            "--max-examples",
            str(EXAMPLES),
            "--seed",
            "1",
            "--request-timeout",
            "30",
            "--report-dir",
            str(tmp_path),
        ],
        cwd=tmp_path,  # where Schemathesis keeps its cache
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert result.returncode == 0, result.stdout[-20_000:] + result.stderr[-5000:]
    log = server.log.read_text()
    assert "Traceback" not in log, log[-10_000:]
