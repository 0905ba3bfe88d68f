"""API paths: made in one place, each name percent-encoded whole, so that no name can reach
another resource (`env destroy "nope/../victim"` once destroyed `victim`); and names that
are not valid are refused before any request, naming the argument."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import laneway.cli
from laneway.cli.client import ApiPath, Client, path

CLI = Path(laneway.cli.__file__).parent


@pytest.mark.parametrize(
    ("segments", "expected"),
    [
        (("apps", "shop", "environments", "staging"), "/apps/shop/environments/staging"),
        (
            ("apps", "shop", "environments", "nope/../victim"),
            "/apps/shop/environments/nope%2F..%2Fvictim",
        ),
        (("apps", "shop", "environments", ".."), "/apps/shop/environments/%2E%2E"),
        (("apps", "."), "/apps/%2E"),
        (("apps", "a?b#c d%e"), "/apps/a%3Fb%23c%20d%25e"),
        (("apps", "shop", "releases", 3), "/apps/shop/releases/3"),
        (("apps", "ünï"), "/apps/%C3%BCn%C3%AF"),
    ],
)
def test_each_segment_is_encoded_whole(segments: tuple[str, ...], expected: str) -> None:
    made = path(*segments)
    assert made == expected and isinstance(made, ApiPath)


def test_an_empty_segment_is_refused() -> None:
    with pytest.raises(ValueError, match="empty segment"):
        path("apps", "", "environments")


class Recorder(BaseHTTPRequestHandler):
    seen: list[str] = []

    def _record(self) -> None:
        Recorder.seen.append(f"{self.command} {self.path}")
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_DELETE = do_POST = do_PUT = _record  # noqa: N815 (http.server's names)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[str]:
    Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_server_receives_the_encoded_path(recorder: str) -> None:
    client = Client(recorder, "t")
    try:
        client.request("DELETE", path("apps", "shop", "environments", "nope/../victim"))
        client.request("GET", path("apps", "shop", "environments", ".."))
    finally:
        client.close()
    assert Recorder.seen == [
        "DELETE /api/v1/apps/shop/environments/nope%2F..%2Fvictim",
        "GET /api/v1/apps/shop/environments/%2E%2E",
    ]


def test_the_client_takes_no_path_but_a_made_one(recorder: str) -> None:
    client = Client(recorder, "t")
    try:
        with pytest.raises(TypeError, match=r"made with laneway.cli.client.path\(\)"):
            client.request("GET", "/apps/shop/environments/x")  # type: ignore[arg-type]
    finally:
        client.close()
    assert Recorder.seen == []


def _path_arguments() -> Iterator[tuple[str, int, ast.expr]]:
    for source in sorted(CLI.glob("*.py")):
        tree = ast.parse(source.read_text(), filename=str(source))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("request", "stream", "events")
                and len(node.args) >= 2
            ):
                yield source.name, node.lineno, node.args[1]


def test_every_command_builds_its_paths_with_path() -> None:
    """No command writes a path as a string: each passes path(...) (or a name bound to one)."""
    calls = list(_path_arguments())
    assert len(calls) > 20  # the check sees the commands' calls
    written = [
        f"{name}:{line}"
        for name, line, arg in calls
        if isinstance(arg, ast.JoinedStr | ast.BinOp)
        or (isinstance(arg, ast.Constant) and isinstance(arg.value, str))
    ]
    assert written == []
    for source in CLI.glob("*.py"):
        if source.name != "client.py":
            assert "/api/v1" not in source.read_text(), source.name


def laneway(*args: str, url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANEWAY_")}
    env.update(LANEWAY_URL=url, LANEWAY_TOKEN="t", LANEWAY_HOME=str(cwd), COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "laneway.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (("env", "destroy", "nope/../victim", "--app", "shop"), "'NAME'"),
        (("env", "show", "../../etc", "--app", "shop"), "'NAME'"),
        (("env", "show", "Staging", "--app", "shop"), "'NAME'"),
        (("env", "create", "x" * 41, "--branch", "main", "--app", "shop"), "41 characters long"),
        (("deploy", "staging", "--build", "abc", "--app", "shop"), "at least 6 hex digits"),
        (("deploy", "a/b", "--ref", "main", "--app", "shop"), "'ENV'"),
        (("env", "list", "--app", "../x"), "'--app'"),
        (("logs", "..", "--app", "shop"), "'ENV'"),
        (("releases", "x%2F..", "--app", "shop"), "'ENV'"),
        (("config", "list", "a?b", "--app", "shop"), "'ENV'"),
        (("promote", "staging", "prod/x", "--app", "shop"), "'TARGET'"),
        (("flags", "list", "--env", "..", "--app", "shop"), "'--env'"),
        (("flags", "key", "--env", "a/b", "--app", "shop"), "'--env'"),
    ],
)
def test_a_name_that_is_not_valid_is_refused_before_any_request(
    recorder: str, tmp_path: Path, args: tuple[str, ...], names: str
) -> None:
    result = laneway(*args, url=recorder, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert names in result.stderr and "Usage: " in result.stderr
    assert "at most 40 characters" in result.stderr or "--build" in args
    assert Recorder.seen == []
