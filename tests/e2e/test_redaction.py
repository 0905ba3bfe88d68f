"""Secrets a service or a release hook prints, in plain or encoded, reach no log line a viewer
reads, no event, and no file under the state directory."""

from __future__ import annotations

import base64
import os
import urllib.parse
from pathlib import Path

import httpx
import pytest

from laneway.api import auth
from laneway.composition import instance_secret
from laneway.settings import load_settings
from laneway.store.repository import Store
from laneway.store.vault import Vault
from laneway.testing import Server, git, make_server, poll_until, spec_repo

pytestmark = pytest.mark.e2e

SPEC = """\
app: leak
services:
  worker: {command: python leak.py}
resources:
  db: {type: postgres}
hooks:
  release: python hook.py
"""

LEAK = """\
import base64, os, sys, time, urllib.parse

def show(name, value):
    raw = value.encode()
    print(f"{name} plain={value}")
    print(f"{name} base64={base64.b64encode(raw).decode()}")
    print(f"{name} inside-base64={base64.b64encode(b'user:' + raw + b'!').decode()}")
    print(f"{name} urlsafe={base64.urlsafe_b64encode(b'k=' + raw).decode().rstrip('=')}")
    print(f"{name} hex={raw.hex()} HEX={raw.hex().upper()}")
    print(f"{name} quoted={urllib.parse.quote(value, safe='')} plus={urllib.parse.quote_plus(value)}")
    sys.stdout.flush()
    sys.stdout.write(f"{name} split={value[:4]}")  # the rest in a later write
    sys.stdout.flush()
    time.sleep(0.3)
    sys.stdout.write(f"{value[4:]}\\n")

token = os.environ.get("TOKEN")
if token:
    show("token", token)
    show("password", urllib.parse.urlsplit(os.environ["DATABASE_URL"]).password)
    print("printed", flush=True)
time.sleep(3600)
"""

HOOK = """\
import base64, os, sys
token = os.environ.get("TOKEN", "")
print("hook", base64.b64encode(token.encode()).decode(), token.encode().hex(), flush=True)
sys.exit(3 if os.path.exists("FAIL") and token else 0)
"""

TOKEN = "s3cr3t/t0k+en=v&lue"


def forms(value: str) -> list[str]:
    """The value as the test programs print it, computed here independently of laneway."""
    raw = value.encode()
    inside = base64.b64encode(b"user:" + raw + b"!").decode()
    urlsafe = base64.urlsafe_b64encode(b"k=" + raw).decode()
    return [
        value,
        base64.b64encode(raw).decode().rstrip("="),
        inside[8:-4],  # the part of it that only `value` determines
        urlsafe[4:-4],
        raw.hex(),
        raw.hex().upper(),
        urllib.parse.quote(value, safe=""),
        urllib.parse.quote_plus(value),
    ]


def leaked(text: str | bytes, values: list[str]) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [f for value in values for f in forms(value) if f.encode() in data]


def viewer_token(server: Server) -> str:
    token = auth.new_token()
    store = Store.open(load_settings(environ=server.env).database_url)
    try:
        store.add_token(name="vic", token_hash=auth.hash_token(token), role="viewer")
    finally:
        store.close()
    return token


@pytest.fixture
def leak_server(tmp_path: Path):
    repo = spec_repo(tmp_path / "repo", SPEC)
    (repo / "leak.py").write_text(LEAK)
    (repo / "hook.py").write_text(HOOK)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "leaky programs")
    server = make_server(tmp_path / "lw")
    try:
        server.start()
        with server.http() as http:
            http.put("/api/v1/apps/leak", json={"repo": str(repo)}).raise_for_status()
        yield repo, server
    finally:
        server.teardown()


def test_printed_secrets_are_hidden_everywhere(leak_server, tmp_path: Path):
    repo, server = leak_server
    server.cli("env", "create", "qa", "--kind", "staging", "--branch", "main", cwd=repo, timeout=40)
    server.cli("config", "set", "qa", f"TOKEN={TOKEN}", "--secret", cwd=repo)
    viewer = httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {viewer_token(server)}"}
    )
    base = "/api/v1/apps/leak/environments/qa"

    def logs() -> str:
        response = viewer.get(f"{base}/logs", params={"tail": 1000})
        assert response.status_code == 200, response.text
        return response.text

    poll_until(lambda: "printed" in logs(), timeout=120, what="the worker's output")
    resources = load_settings(environ=server.env)
    store = Store.open(resources.database_url, vault=Vault(instance_secret(resources)))
    try:
        (db,) = store.resources(store.get_environment("leak", "qa").id)
    finally:
        store.close()
    password = urllib.parse.urlsplit(db.details["value"]).password
    assert password and len(password) >= 6
    secrets = [TOKEN, password]

    # a failing release hook: its output (base64, hex) becomes part of the failure message
    git(repo, "checkout", "-q", "-b", "failing")
    (repo / "FAIL").write_text("")
    git(repo, "add", "FAIL")
    git(repo, "commit", "-q", "-m", "a hook that fails")
    failed = server.cli("deploy", "qa", "--ref", "failing", cwd=repo, check=False)
    assert failed.returncode != 0
    git(repo, "checkout", "-q", "main")

    served = logs()
    assert "token plain=***" in served and "password plain=***" in served
    assert "hook ***" in served  # the hook's output, through the logs API
    assert leaked(served, secrets) == []

    events = viewer.get(f"{base}/events").json()
    messages = "\n".join(e["message"] for e in events)
    assert "exited with code 3" in messages and "hook ***" in messages
    assert leaked(messages, secrets) == []
    releases = viewer.get(f"{base}/releases").json()
    assert leaked(str(releases), secrets) == []
    assert leaked(viewer.get(base).text, secrets) == []
    config = server.cli("config", "list", "qa", "--json", cwd=repo).stdout
    assert "TOKEN" in config and leaked(config, secrets) == []
    with server.http() as admin:  # the audit log names what changed, never a value
        assert server.cli("config", "get", "qa", "TOKEN", "--reveal", cwd=repo).stdout.strip()
        exported = admin.get("/api/v1/audit/export").text
    assert '"revealed": "TOKEN"' in exported or '"revealed":"TOKEN"' in exported
    assert leaked(exported, secrets) == []

    found = {}
    for top, _, names in os.walk(server.home):
        for name in names:
            path = Path(top, name)
            if path.is_socket():
                continue  # the router's counters socket: nothing is stored in it
            try:
                data = path.read_bytes()
            except (FileNotFoundError, IsADirectoryError):
                continue
            hits = leaked(data, secrets)
            if hits:
                found[str(path)] = hits
    assert found == {}
    viewer.close()
