"""The everyday commands as a user runs them against a real server: `open`, `config get`,
`config pull`, `logs --since/--grep` and `promote --create`.

One server for the module; each test has its own app, a repository whose service is Python's
own HTTP server (nothing to build, no database), which logs every request it answers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import dotenv
import httpx
import pytest

from laneway.api import auth
from laneway.runtime import logfiles
from laneway.settings import load_settings
from laneway.store.repository import Store
from laneway.testing import Output, Server, make_server, poll_until, spec_repo

pytestmark = pytest.mark.e2e

SERVICE = "services:\n  web: {command: python3 -m http.server $PORT --bind 127.0.0.1, health: /}\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = make_server(tmp_path_factory.mktemp("everyday") / "lw")
    try:
        s.start()
        yield s
    finally:
        s.teardown()


def app_with(server: Server, root: Path, app: str, extra: str = "") -> Path:
    """A repository of app `app` and its environment `staging` (kind staging), running."""
    repo = spec_repo(root / app, f"app: {app}\n{SERVICE}{extra}")
    server.cli("env", "create", "staging", "--kind", "staging", "--branch", "main", cwd=repo)
    return repo


def add_token(server: Server, name: str, role: str) -> str:
    token = auth.new_token()
    store = Store.open(load_settings(environ=server.env).database_url)
    try:
        store.add_token(name=name, token_hash=auth.hash_token(token), role=role)
    finally:
        store.close()
    return token


def cli(
    server: Server, *args: str, token: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The CLI as a user of `token` (default: the admin's) runs it; never raises."""
    environ = dict(env if env is not None else server.env)
    environ |= {"LANEWAY_URL": server.url, "LANEWAY_TOKEN": token or server.token()}
    return subprocess.run(
        [sys.executable, "-m", "laneway.cli", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def events(server: Server, app: str, environment: str) -> list[dict]:
    with server.http() as http:
        response = http.get(f"/api/v1/apps/{app}/environments/{environment}/events")
    response.raise_for_status()
    return list(response.json())


# open ---------------------------------------------------------------------------------------


def test_open_prints_or_opens_the_url(server: Server, tmp_path: Path) -> None:
    app_with(server, tmp_path, "opener")
    url = json.loads(cli(server, "env", "show", "staging", "--app", "opener", "--json").stdout)[
        "url"
    ]
    printed = cli(server, "open", "staging", "--app", "opener", "--print")
    assert (printed.returncode, printed.stdout) == (0, url + "\n")
    as_json = json.loads(cli(server, "open", "staging", "--app", "opener", "--json").stdout)
    assert as_json == {"environment": "staging", "url": url, "phase": "running"}

    # a browser, as $BROWSER names one, is handed the URL
    seen = tmp_path / "browser-saw"
    browser = tmp_path / "browser"
    browser.write_text(f'#!/bin/sh\nprintf "%s" "$1" > {seen}\n')
    browser.chmod(0o755)
    quiet = {k: v for k, v in server.env.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    opened = cli(
        server, "open", "staging", "--app", "opener", env=quiet | {"BROWSER": str(browser)}
    )
    assert opened.returncode == 0, opened.stderr
    assert seen.read_text() == url and opened.stdout == ""

    # no browser to be found: the URL is printed
    bare = {k: v for k, v in quiet.items() if k != "BROWSER"} | {"PATH": str(tmp_path / "none")}
    fallback = cli(server, "open", "staging", "--app", "opener", env=bare)
    assert (fallback.returncode, fallback.stdout) == (0, url + "\n"), fallback.stderr

    missing = cli(server, "open", "nope", "--app", "opener")
    assert missing.returncode == 1 and "nope" in missing.stderr


# config get / pull -------------------------------------------------------------------------

PLAIN = {
    "GREETING": "hello world",
    "QUOTED": 'say "hi" and it\'s fine',
    "MULTI": "line1\nline2",
    "DOLLAR": "costs $5 # not a comment",
    "SLASHES": r"a\\b",
}
SECRET = "sk_live_9f8e7d6c5b4a"


def test_config_get_and_pull_show_secrets_only_to_deployers_and_record_it(
    server: Server, tmp_path: Path
) -> None:
    repo = app_with(server, tmp_path, "configured")
    args = ["--app", "configured"]
    server.cli("config", "set", "staging", *(f"{k}={v}" for k, v in PLAIN.items()), cwd=repo)
    server.cli("config", "set", "staging", f"API_KEY={SECRET}", "--secret", cwd=repo)
    viewer = add_token(server, "vic", "viewer")
    deployer = add_token(server, "dana", "deployer")

    got = cli(server, "config", "get", "staging", "QUOTED", *args, token=viewer)
    assert (got.returncode, got.stdout) == (0, PLAIN["QUOTED"] + "\n")
    hidden = cli(server, "config", "get", "staging", "API_KEY", *args, token=viewer)
    assert hidden.returncode == 0 and hidden.stdout.startswith("(secret) hmac:")
    assert SECRET not in hidden.stdout + hidden.stderr
    as_json = json.loads(cli(server, "config", "get", "staging", "API_KEY", "--json", *args).stdout)
    assert as_json["secret"] is True and as_json["value"] is None
    assert as_json["fingerprint"] == hidden.stdout.split()[1]

    refused = cli(server, "config", "get", "staging", "API_KEY", "--reveal", *args, token=viewer)
    assert refused.returncode == 1 and "needs deployer" in refused.stderr
    assert SECRET not in refused.stdout + refused.stderr
    assert not [e for e in events(server, "configured", "staging") if "revealed" in e["message"]]

    revealed = cli(server, "config", "get", "staging", "API_KEY", "--reveal", *args, token=deployer)
    assert (revealed.returncode, revealed.stdout) == (0, SECRET + "\n")
    audit = [e for e in events(server, "configured", "staging") if e["type"] == "config.revealed"]
    assert [e["message"] for e in audit] == ["dana revealed API_KEY (v3)"]

    unknown = cli(server, "config", "get", "staging", "NOPE", *args)
    assert unknown.returncode == 1
    assert "NOPE is not set in staging" in unknown.stderr and "API_KEY" in unknown.stderr
    bad = cli(server, "config", "get", "staging", "1BAD", *args)
    assert bad.returncode == 2 and "not a variable name" in bad.stderr

    # pull: plain values read back exactly by python-dotenv and by sh; secrets left out
    pulled = cli(server, "config", "pull", "staging", *args, token=viewer)
    assert pulled.returncode == 0, pulled.stderr
    assert SECRET not in pulled.stdout
    assert "# secrets left out: API_KEY" in pulled.stdout
    env_file = tmp_path / ".env"
    env_file.write_text(pulled.stdout)
    assert dotenv.dotenv_values(env_file) == PLAIN
    keys = " ".join(PLAIN)
    read_back = subprocess.run(
        [
            "sh",
            "-c",
            f"set -a; . {env_file}; exec {sys.executable} -c "
            f"'import json, os, sys; print(json.dumps({{k: os.environ[k] for k in sys.argv[1:]}}))'"
            f" {keys}",
        ],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"]},
        check=True,
    )
    assert json.loads(read_back.stdout) == PLAIN

    refused_pull = cli(server, "config", "pull", "staging", "--secrets", *args, token=viewer)
    assert refused_pull.returncode == 1 and SECRET not in refused_pull.stdout
    with_secrets = cli(server, "config", "pull", "staging", "--secrets", *args, token=deployer)
    env_file.write_text(with_secrets.stdout)
    assert dotenv.dotenv_values(env_file) == PLAIN | {"API_KEY": SECRET}
    audit = [e for e in events(server, "configured", "staging") if e["type"] == "config.revealed"]
    assert [e["message"] for e in audit][-1] == "dana revealed API_KEY (v3)" and len(audit) == 2
    assert not [e for e in events(server, "configured", "staging") if SECRET in e["message"]]


# logs --since / --grep ---------------------------------------------------------------------


def request(server: Server, app: str, path: str) -> None:
    server.get(f"staging.{app}.localhost", path)


def log_file(server: Server, app: str) -> Path:
    environment_id = server.show("staging", app=app)["id"]
    return load_settings(environ=server.env).logs_dir / environment_id / "web.0.log"


def sampled(log: Path, marker: str) -> bool:
    """Whether the log's times have a sample taken after `marker` was written."""
    data = log.read_bytes()
    if marker.encode() not in data:
        return False
    end = data.index(marker.encode())
    return any(size > end for _, size in logfiles.read_times(log))


def test_logs_since_and_grep_are_filtered_by_the_server(server: Server, tmp_path: Path) -> None:
    app_with(server, tmp_path, "logged")
    args = ["--app", "logged"]
    log = log_file(server, "logged")
    request(server, "logged", "/marker-before")
    poll_until(lambda: sampled(log, "/marker-before"), what="a time sample after the request")
    since = datetime.now(UTC).isoformat()
    request(server, "logged", "/marker-after")
    poll_until(lambda: b"/marker-after" in log.read_bytes(), what="the request's log line")

    recent = cli(server, "logs", "staging", "web", "--since", since, *args)
    assert recent.returncode == 0, recent.stderr
    assert "/marker-after" in recent.stdout and "/marker-before" not in recent.stdout
    hour = cli(server, "logs", "staging", "--since", "1h", *args)
    assert hour.returncode == 0, hour.stderr
    hour = hour.stdout
    assert "/marker-before" in hour and "/marker-after" in hour

    grepped = cli(server, "logs", "staging", "--grep", r"marker-(before|after)", *args)
    lines = grepped.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith("web.0 | ") for line in lines)
    assert "/marker-before" in lines[0] and "/marker-after" in lines[1]
    both = cli(server, "logs", "staging", "--since", since, "--grep", "marker", *args)
    assert [line for line in both.stdout.splitlines()] == [lines[1]]
    as_json = cli(server, "logs", "staging", "--grep", "marker-after", "--json", *args)
    assert [json.loads(line) for line in as_json.stdout.splitlines()] == [
        {"replica": "web.0", "line": lines[1].removeprefix("web.0 | ")}
    ]

    # the server filters: what it sends over the wire is only what matches
    with server.http() as http:
        path = "/api/v1/apps/logged/environments/staging/logs"
        answer = http.get(path, params={"grep": "marker-after"})
        assert answer.status_code == 200 and answer.text.splitlines() == [lines[1]]
        bad = http.get(path, params={"grep": "("})
        assert bad.status_code == 400 and "not a valid regular expression" in bad.json()["detail"]
        assert http.get(path, params={"since": "soon"}).status_code == 400
        assert http.get(path, params={"grep": "x" * 201}).status_code in (400, 422)

    for wrong, says in [
        (["--grep", "("], "not a valid regular expression"),
        (["--grep", "x" * 201], "at most 200"),
        (["--since", "10 minutes"], "expected a duration such as 30s"),
    ]:
        refused = cli(server, "logs", "staging", *wrong, *args)
        assert refused.returncode == 2 and says in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr


def test_a_pattern_that_backtracks_without_end_is_stopped(server: Server, tmp_path: Path) -> None:
    app_with(server, tmp_path, "slowgrep")
    log = log_file(server, "slowgrep")
    request(server, "slowgrep", "/" + "a" * 40 + "!")
    poll_until(lambda: b"a" * 40 in log.read_bytes(), what="the request's log line")
    started = time.monotonic()
    with server.http() as http:
        answer = http.get(
            "/api/v1/apps/slowgrep/environments/staging/logs", params={"grep": "(a|aa)+$"}
        )
    assert answer.status_code == 400 and "took more than" in answer.json()["detail"]
    assert time.monotonic() - started < 60  # a guard: it answers, it does not hang
    with server.http() as http:
        assert http.get("/api/v1/status").status_code == 200


def test_logs_follow_with_grep_prints_only_new_matching_lines(
    server: Server, tmp_path: Path
) -> None:
    app_with(server, tmp_path, "followed")
    environ = server.env | {"LANEWAY_URL": server.url, "LANEWAY_TOKEN": server.token()}
    command = [sys.executable, "-m", "laneway.cli", "logs", "staging", "-f", "--grep", "wanted"]
    with subprocess.Popen(
        [*command, "--app", "followed"], env=environ, stdout=subprocess.PIPE, text=True
    ) as follower:
        try:
            out = Output(follower.stdout)  # type: ignore[arg-type]
            request(server, "followed", "/other-1")
            request(server, "followed", "/wanted-2")
            out.wait_for(r"/wanted-2", what="the matching line")
            request(server, "followed", "/wanted-3")
            out.wait_for(r"/wanted-3", what="the next matching line")
        finally:
            follower.terminate()
    assert "/other-1" not in out.text and '"GET / ' not in out.text  # nor health checks
    assert all("wanted" in line for line in out.lines)


# promote --create --------------------------------------------------------------------------

PIPELINE = "pipeline: [staging, beta, production]\n"


def test_promote_create_makes_the_target_under_the_same_protection(
    server: Server, tmp_path: Path
) -> None:
    app_with(server, tmp_path, "promoted", PIPELINE)
    args = ["--app", "promoted"]
    build = server.show("staging", app="promoted")["build"]

    missing = cli(server, "promote", "staging", "beta", *args)
    assert missing.returncode == 1 and "--create" in missing.stderr

    # production is protected: it takes only what ran healthy in beta, created or not
    refused = cli(server, "promote", "staging", "production", "--create", *args)
    assert refused.returncode == 1 and "production is protected" in refused.stderr
    assert server.show("production", app="promoted") is None

    created = cli(server, "promote", "staging", "beta", "--create", *args)
    assert created.returncode == 0, created.stderr
    assert "v1 is live on beta" in created.stdout
    beta = server.show("beta", app="promoted")
    assert (beta["kind"], beta["build"], beta["phase"]) == ("staging", build, "running")
    assert any("to promote" in e["message"] for e in events(server, "promoted", "beta"))

    production = cli(server, "promote", "beta", "production", "--create", *args)
    assert production.returncode == 0, production.stderr
    shown = server.show("production", app="promoted")
    assert (shown["kind"], shown["build"], shown["phase"]) == ("production", build, "running")

    # with --create, an existing target is promoted to as without it: nothing changes here
    again = cli(server, "promote", "beta", "production", "--create", *args)
    assert again.returncode == 0 and "nothing to deploy" in again.stdout
    wrong_kind = cli(
        server, "promote", "beta", "production", "--create", "--kind", "preview", *args
    )
    assert wrong_kind.returncode == 1 and "of kind production" in wrong_kind.stderr
    with httpx.Client(base_url=server.url, timeout=30) as anonymous:
        body = {"from": "staging", "to": "x", "create": True}
        assert anonymous.post("/api/v1/apps/promoted/promotions", json=body).status_code == 401
