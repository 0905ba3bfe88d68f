"""What a `laneway` process imports: a client command never loads the server side, and
`laneway --help` loads neither HTTP nor rich's console. Checked on the module graph in a fresh
interpreter, not by timing (bench/b5_cli_startup.py measures the time)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from laneway.testing import git

SERVER_SIDE = [
    "sqlalchemy",
    "alembic",
    "psycopg",
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "grpc",
    "google.protobuf",
    "watchfiles",
    "openfeature",
    "json_logic",
    "cryptography",
    "laneway.server",
    "laneway.api",
    "laneway.controllers",
    "laneway.store",
    "laneway.runtime",
    "laneway.router",
    "laneway.resources",
    "laneway.builds",
    "laneway.flags",
]
NOT_FOR_HELP = ["httpx", "httpcore", "httpx_sse", "rich.console", "yaml", "laneway.spec"]
NEVER_RUN = ["trio", "httpx._main", "pygments", "click"]
NAME_RULES = {"laneway.spec", "laneway.spec.names"}
"""The rules for names (pure, a regular expression each): every command checks its names
with them before any request. The rest of laneway.spec (pydantic, YAML) stays unloaded."""

PROGRAM = """
import json, sys
sys.argv = ["laneway", *json.loads(sys.argv[1])]
from laneway.cli.main import main
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code
modules = [n for n, m in sys.modules.items() if m is not None]
print("IMPORTED " + json.dumps({"exit": code, "modules": modules}))
"""


def imported(*args: str, cwd: Path | None = None) -> tuple[int, set[str]]:
    """The exit code of `laneway ARGS` and the modules the process had imported by its end."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        nobody = s.getsockname()[1]  # closed below: nothing listens there
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANEWAY_")}
    env.update(LANEWAY_URL=f"http://127.0.0.1:{nobody}", LANEWAY_TOKEN="x")
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=cwd,
    )
    report = json.loads(result.stdout.split("IMPORTED ", 1)[1])
    return report["exit"], set(report["modules"])


def loaded(modules: set[str], names: list[str]) -> list[str]:
    modules = modules - NAME_RULES
    return [n for n in names if any(m == n or m.startswith(f"{n}.") for m in modules)]


def test_help_imports_no_http_client_and_no_server() -> None:
    code, modules = imported("--help")
    assert code == 0
    assert loaded(modules, SERVER_SIDE + NOT_FOR_HELP + NEVER_RUN) == []


@pytest.mark.parametrize(
    "args",
    [
        ("env", "list", "--app", "shop"),
        ("deploy", "staging", "--build", "sha256:000000", "--app", "shop"),
        ("flags", "list", "--app", "shop"),
        ("logs", "staging", "--app", "shop"),
        ("access", "tokens", "ci-deploy"),
    ],
)
def test_a_client_command_imports_no_server_side(args: tuple[str, ...]) -> None:
    code, modules = imported(*args)
    assert code == 1  # it did try: the server is not there
    assert "httpx" in modules  # the request was made
    assert loaded(modules, SERVER_SIDE + NEVER_RUN) == []


def test_in_the_apps_repository_only_the_name_is_read(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "laneway.yaml").write_text("app: shop\nservices:\n  web: {command: x}\n")
    code, modules = imported("env", "list", cwd=tmp_path)
    assert code == 1
    assert "yaml" in modules
    assert loaded(modules, ["laneway.spec", *SERVER_SIDE]) == []
