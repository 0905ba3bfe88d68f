"""The commands a user types outside the environment lifecycle: init, spec, logs, up, demo,
and what the CLI says when something is wrong."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from laneway.resources.postgres import PostgresProvider
from laneway.runtime.local import scan
from laneway.settings import load_settings
from laneway.testing import (
    PG_ADMIN,
    Output,
    Server,
    free_port,
    git,
    make_server,
    owned_databases,
    poll_until,
)

pytestmark = pytest.mark.e2e


def laneway(
    *args: str, cwd: Path, env: dict[str, str] | None = None, check: bool = False
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "laneway.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_init_from_a_procfile_then_check(tmp_path: Path):
    (tmp_path / "Procfile").write_text(
        "web: gunicorn app:app --bind 0.0.0.0:$PORT\nworker: python worker.py\nrelease: python manage.py migrate\n"
    )
    (tmp_path / "requirements.txt").write_text("gunicorn\n")
    laneway("init", cwd=tmp_path, check=True)
    spec = (tmp_path / "laneway.yaml").read_text()
    assert "gunicorn app:app" in spec and "python worker.py" in spec
    assert "release: python manage.py migrate" in spec
    assert "pip install -r requirements.txt --target .deps" in spec and ".deps/bin" in spec
    assert laneway("spec", "check", cwd=tmp_path, check=True).stdout.startswith("laneway.yaml: ok")

    again = laneway("init", cwd=tmp_path)
    assert again.returncode == 1 and "exists already" in again.stderr and "--force" in again.stderr


def test_spec_errors_and_schema(tmp_path: Path):
    (tmp_path / "laneway.yaml").write_text(
        "app: shop\nservices:\n  web:\n    comand: x\n    replicas: two\n"
    )
    result = laneway("spec", "check", cwd=tmp_path)
    assert result.returncode == 2
    assert (
        "laneway.yaml:4:5: services.web.comand: unknown key; did you mean 'command'?"
        in result.stderr
    )
    assert re.search(r"laneway.yaml:5:\d+: services.web.replicas", result.stderr)
    assert "Traceback" not in result.stderr
    schema = json.loads(laneway("spec", "schema", cwd=tmp_path, check=True).stdout)
    assert (
        schema["$schema"].startswith("https://json-schema.org/")
        and "services" in schema["properties"]
    )


def test_no_server_is_a_plain_error(tmp_path: Path, example_repo: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANEWAY_")}
    env.update(
        LANEWAY_HOME=str(tmp_path), LANEWAY_URL=f"http://127.0.0.1:{free_port()}", LANEWAY_TOKEN="x"
    )
    result = laneway("env", "list", cwd=example_repo, env=env)
    assert result.returncode == 1
    assert "cannot reach the laneway server" in result.stderr and "Traceback" not in result.stderr
    result = laneway(
        "env", "create", "x", "--kind", "prod", "--branch", "main", cwd=example_repo, env=env
    )
    assert result.returncode == 2 and "--kind" in result.stderr


def test_logs_show_each_replica_and_follow(server: Server, example_repo: Path):
    server.cli(
        "env", "create", "staging", "--kind", "staging", "--branch", "main", cwd=example_repo
    )
    server.get("staging.shop.localhost", "/api/info")
    out = server.cli("logs", "staging", "-n", "50", cwd=example_repo).stdout
    assert "web.0 | " in out and "worker.0 | " in out and "release | " in out
    only_web = server.cli("logs", "staging", "web", "-n", "50", cwd=example_repo).stdout
    assert "worker.0" not in only_web and "GET /api/info" in only_web
    missing = server.cli("logs", "staging", "nope", cwd=example_repo, check=False)
    assert missing.returncode == 1 and "no logs for service 'nope'" in missing.stderr

    follow = subprocess.Popen(
        [sys.executable, "-m", "laneway.cli", "logs", "staging", "web", "-f", "-n", "0"],
        cwd=example_repo,
        env=server.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in follow.stdout], daemon=True).start()
    try:
        deadline = time.monotonic() + 30
        seen = ""
        while "marker=followed" not in seen:
            assert time.monotonic() < deadline, "no followed line within 30 s"
            server.get("staging.shop.localhost", "/api/info?marker=followed")
            with contextlib.suppress(queue.Empty):
                seen = lines.get(timeout=0.5)
        assert seen.startswith("web.0 | ")
    finally:
        follow.terminate()
        follow.wait(timeout=10)


def _drop_owned(home: Path) -> None:
    # `laneway up` keeps its resources under a home of its own: <home>/dev
    for owner_home in (home, home / "dev"):
        settings = load_settings(environ={"LANEWAY_HOME": str(owner_home)})
        provider = PostgresProvider(PG_ADMIN, owner=settings.owner, secret=b"")
        for environment_id in provider.owned_environments():
            provider.destroy_all(environment_id)


def _up(
    repo: Path, env: dict[str, str], log: Path, *args: str
) -> tuple[subprocess.Popen[str], Output]:
    process = subprocess.Popen(
        [sys.executable, "-m", "laneway.cli", "up", *args],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    return process, Output(process.stdout, log=log)


def _url(output: Output) -> str:
    match = output.wait_for(r"web\.0 at (http://127\.0\.0\.1:\d+)/", what="web's address")
    return match.group(1)


def test_up_runs_the_work_tree_and_restarts_on_change(tmp_path: Path, example_repo: Path):
    repo = tmp_path / "shop"
    shutil.copytree(example_repo, repo)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANEWAY_")}
    env["LANEWAY_HOME"] = str(tmp_path / "home")
    env["PYTHONUNBUFFERED"] = "1"
    up, output = _up(repo, env, tmp_path / "up.log")
    try:
        url = _url(output)
        first = poll_until(lambda: _info(url), what="an answer from web")
        assert first["environment"] == "dev" and first["kind"] == "development"
        assert _processes_in(repo), "the replicas run in the work tree"
        httpx.get(f"{url}/", timeout=5).raise_for_status()  # a visit, kept in the database
        (repo / "shop" / "web.py").write_text(
            (repo / "shop" / "web.py").read_text() + "\n# changed\n"
        )
        output.wait_for("changed: web.py", what="the change noticed")
        poll_until(
            lambda: (_info(url) or {}).get("pid") not in (None, first["pid"]),
            what="web to restart at the same URL",
        )
        assert "worker.0 |" in output.text and "release |" in output.text
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=30) == 0
        output.wait_for("stopping", what="the stop announced")
        assert not _processes_in(repo), "laneway up left processes behind"

        # a second run: a release of its own (the hook runs again), the same database
        up, again = _up(repo, env, tmp_path / "up-again.log")
        url = _url(again)
        second = poll_until(lambda: _info(url), what="an answer from web again")
        assert second["release"] == "v2" and second["visits"] >= 1
        refused = laneway("down", cwd=repo, env=env)
        assert refused.returncode == 1 and "`laneway up` runs app 'shop' already" in refused.stderr
        up.send_signal(signal.SIGTERM)
        assert up.wait(timeout=30) == 0
        again.wait_for("release \\| migrate:", what="the hook's second run")

        # `laneway up --reset`: a fresh start, with an empty database
        up, fresh = _up(repo, env, tmp_path / "up-reset.log", "--reset")
        fresh.wait_for("removed the development environment of shop", what="the reset")
        url = _url(fresh)
        third = poll_until(lambda: _info(url), what="an answer from web after the reset")
        assert third["release"] == "v1" and third["visits"] == 0
        up.send_signal(signal.SIGTERM)
        assert up.wait(timeout=30) == 0

        # `laneway down`: the development database, files and record go; the work tree stays
        dev = load_settings(environ={"LANEWAY_HOME": str(tmp_path / "home" / "dev")})
        assert owned_databases(dev.owner) != []
        down = laneway("down", cwd=repo, env=env, check=True)
        assert "removed the development environment of shop" in down.stdout
        assert owned_databases(dev.owner) == []
        assert list((tmp_path / "home" / "dev" / "environments").iterdir()) == []
        assert (repo / "shop" / "web.py").exists() and (repo / "laneway.yaml").exists()
        assert "no development environment" in laneway("down", cwd=repo, env=env).stdout
    finally:
        if up.poll() is None:  # the test failed: stop what it started all the same
            up.send_signal(signal.SIGINT)
            up.wait(timeout=60)
        _drop_owned(tmp_path / "home")
    assert not _processes_in(repo), "laneway up left processes behind"
    dev = load_settings(environ={"LANEWAY_HOME": str(tmp_path / "home" / "dev")})
    assert owned_databases(dev.owner) == [], "the test left the development database behind"


def _info(url: str) -> dict | None:
    try:
        return httpx.get(f"{url}/api/info", timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return None


def _processes_in(directory: Path) -> list[int]:
    return [
        process.pid
        for process in psutil.process_iter(["cwd"])
        if process.info["cwd"] == str(directory)
    ]


def test_demo_prints_urls_that_serve(tmp_path: Path, shared_artifacts: Path):
    server = make_server(tmp_path / "home", artifacts=shared_artifacts)
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "laneway.cli",
            "demo",
            "--api",
            server.api,
            "--router",
            server.router,
        ],
        env={**server.env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert demo.stdout is not None
    output = Output(demo.stdout, log=tmp_path / "demo.log")
    try:
        for name in ("staging", "feature-x"):
            output.wait_for(rf"http://{name}\.shop\.localhost:", what=f"{name}'s URL")
        staging = server.get("staging.shop.localhost", "/api/info").json()
        feature = server.get("feature-x.shop.localhost", "/api/info").json()
        repo = server.home / "demo" / "shop"
        assert staging["commit"] == git(repo, "rev-parse", "--short=7", "main")
        assert feature["commit"] == git(repo, "rev-parse", "--short=7", "feature-x")
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=30)
        listed = json.loads(
            server.cli(
                "env", "list", "--json", cwd=server.home / "demo" / "shop", check=False
            ).stdout
            or "[]"
        )
        server.teardown()
    assert {e["name"] for e in listed} <= {"staging", "feature-x"}
    assert [p for p in scan(server.owner())] == []


def test_halt_refuses_while_the_server_runs(server: Server, example_repo: Path):
    result = server.cli("halt", check=False)
    assert result.returncode == 1 and "laneway server is running" in result.stderr
    server.kill()
    assert "stopped laneway router/0" in server.cli("halt").stdout
    assert "nothing was running" in server.cli("halt").stdout


def test_a_name_with_a_path_in_it_reaches_no_other_environment(server: Server, example_repo: Path):
    server.cli("env", "create", "victim", "--branch", "main", "--no-wait", cwd=example_repo)
    for name in ("nope/../victim", "../victim", "victim/.", "victim%2F"):
        result = server.cli("env", "destroy", name, cwd=example_repo, check=False)
        assert result.returncode == 2, result.stderr
        assert "Invalid value for 'NAME'" in result.stderr and "at most 40" in result.stderr
    shown = json.loads(server.cli("env", "show", "victim", "--json", cwd=example_repo).stdout)
    assert shown["phase"] != "deleting"
    server.cli("env", "destroy", "victim", cwd=example_repo)


def _bad_build_branch(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "bad-build")
    spec = (repo / "laneway.yaml").read_text()
    start = spec.index("  command: pip install")
    end = spec.index("\n", start)
    (repo / "laneway.yaml").write_text(
        spec[:start] + "  command: echo compiling [bold]; echo broken-marker; exit 3" + spec[end:]
    )
    git(repo, "commit", "-q", "-am", "a build that fails")
    git(repo, "checkout", "-q", "main")


def test_a_failing_build_is_told_once(server: Server, example_repo: Path):
    """Its output once (not again as the error's hint), one summary naming the ref and its
    commit, and for a first build what is left behind and how to remove it."""
    _bad_build_branch(example_repo)
    commit = git(example_repo, "rev-parse", "bad-build").strip()
    built = server.cli("build", "bad-build", cwd=example_repo, check=False)
    assert built.returncode == 1
    assert built.stderr.count("broken-marker") == 1, built.stderr
    assert "compiling [bold]" in built.stderr
    assert f"error: build of bad-build (commit {commit[:12]}) failed: command exited 3" in (
        built.stderr
    )

    created = server.cli(
        "env", "create", "broken", "--branch", "bad-build", cwd=example_repo, check=False
    )
    assert created.returncode == 1
    assert created.stderr.count("broken-marker") == 1, created.stderr
    assert created.stderr.count(f"failed: build of commit {commit[:12]}") == 1, created.stderr
    assert "`laneway env destroy broken` removes it" in created.stderr

    server.cli(
        "env", "create", "staging", "--kind", "staging", "--branch", "main", cwd=example_repo
    )
    deployed = server.cli("deploy", "staging", "--ref", "bad-build", cwd=example_repo, check=False)
    assert deployed.returncode == 1
    assert f"building commit {commit[:12]}" in deployed.stderr
    assert "building main" not in deployed.stderr
    assert deployed.stderr.count("broken-marker") == 1, deployed.stderr
    assert deployed.stderr.count(f"build of commit {commit[:12]} failed") == 1, deployed.stderr
    assert "error: v2 failed on staging; traffic stayed where it was" in deployed.stderr
