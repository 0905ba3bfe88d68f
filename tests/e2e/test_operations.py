"""The everyday operations as a user drives them: `laneway run` (output streamed, exit code
passed back, stopped when the client goes away), `laneway scale` (a release, converged by
the reconciler, undone by a rollback) and `laneway restart` (zero failed requests under load).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from laneway.core.environments import RUN_SERVICE
from laneway.testing import RouterLoad, Server, live, poll_until, step

pytestmark = pytest.mark.e2e

HOST = "staging.shop.localhost"


def staging(server: Server, repo: Path) -> None:
    server.cli("env", "create", "staging", "--kind", "staging", "--branch", "main", cwd=repo)


def releases(server: Server, repo: Path) -> list[dict]:
    return json.loads(server.cli("releases", "staging", "--json", cwd=repo).stdout)


def processes(server: Server, service: str) -> list[str]:
    return sorted(p.key for p in server.processes() if p.service == service)


def events(server: Server, type_: str) -> list[str]:
    with server.http() as http:
        answer = http.get("/api/v1/apps/shop/environments/staging/events")
    return [e["message"] for e in answer.json() if e["type"] == type_]


def test_run_streams_output_passes_the_exit_code_and_stops_with_its_client(
    server: Server, example_repo: Path
) -> None:
    repo = example_repo
    staging(server, repo)
    program = (
        "import os, sys; "
        "print(os.environ['LANEWAY_ENV'], os.environ['LANEWAY_RELEASE'], 'PORT' in os.environ); "
        "print('db', os.environ['DATABASE_URL']); "
        "print('to stderr', file=sys.stderr); sys.exit(7)"
    )
    ran = server.cli("run", "staging", "web", "--", "python", "-c", program, cwd=repo, check=False)
    assert ran.returncode == 7, ran.stderr
    lines = ran.stdout.splitlines()
    assert lines[0] == "staging v1 False"  # the environment's variables, no port of its own
    assert lines[1] == "db ***"  # the database address is redacted
    assert "to stderr" in lines
    assert "running as web on staging v1" in ran.stderr

    # one argument is a shell line, run in the live release's directory
    shell = server.cli("run", "staging", "worker", "--", "echo $LANEWAY_ENV; pwd", cwd=repo)
    assert shell.stdout.splitlines()[0] == "staging"
    assert shell.stdout.splitlines()[1].endswith("/releases/v1")

    # without `--`, options laneway does not know are the command's
    bare = server.cli("run", "staging", "web", "python", "-c", "print(6 * 7)", cwd=repo)
    assert bare.stdout == "42\n"

    # who ran what is recorded, never the output
    recorded = events(server, "run")
    assert any("admin ran `python -c" in m for m in recorded)
    assert "`echo $LANEWAY_ENV; pwd` exited with code 0" in recorded
    assert not any("***" in m or "postgresql" in m for m in recorded)

    refused = server.cli("run", "staging", "nope", "--", "true", cwd=repo, check=False)
    assert refused.returncode == 2 and "service 'nope'" in refused.stderr
    missing = server.cli("run", "nowhere", "web", "--", "true", cwd=repo, check=False)
    assert missing.returncode == 1 and "no environment 'nowhere'" in missing.stderr

    # a client that goes away takes its process with it; the replicas are left alone
    replicas = processes(server, "web") + processes(server, "worker")
    client = subprocess.Popen(
        [sys.executable, "-m", "laneway.cli", "run", "staging", "web", "--", "sleep 300"],
        cwd=repo,
        env=server.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        poll_until(lambda: processes(server, RUN_SERVICE), what="the one-off process")
    finally:
        client.send_signal(signal.SIGINT)
        client.wait(timeout=30)
    poll_until(lambda: not processes(server, RUN_SERVICE), what="the one-off process stopped")
    poll_until(
        lambda: "`sleep 300` stopped: its client went away" in events(server, "run"),
        what="the run's end recorded",
    )
    assert processes(server, "web") + processes(server, "worker") == replicas
    assert len(releases(server, repo)) == 1  # a run makes no release

    # a secret, as written and base64-encoded, is redacted in what the run prints
    secret = "tok-9f8e7d6c5b4a"
    server.cli("config", "set", "staging", f"TOKEN={secret}", "--secret", cwd=repo)
    printed = server.cli(
        "run",
        "staging",
        "web",
        "--",
        "python",
        "-c",
        "import os, base64; t = os.environ['TOKEN']; print(t); print(base64.b64encode(t.encode()).decode())",
        cwd=repo,
    )
    assert printed.stdout == "***\n***\n"
    assert secret not in server.cli("env", "show", "staging", cwd=repo).stdout


def test_scale_is_a_release_converged_shown_and_undone_by_a_rollback(
    server: Server, example_repo: Path
) -> None:
    repo = example_repo
    staging(server, repo)
    web_before = processes(server, "web")

    for bad, message in [
        ("web=65", "at most 64 replicas"),
        ("web=-1", "cannot be negative"),
        ("web", "expected SERVICE=COUNT"),
        ("api=2", "api: no such service in the spec (services: web, worker)"),
    ]:
        refused = server.cli("scale", "staging", bad, cwd=repo, check=False)
        assert refused.returncode == 2, (bad, refused.stderr)
        assert message in refused.stderr and "Traceback" not in refused.stderr
    assert len(releases(server, repo)) == 1  # bad input changes nothing

    scaled = server.cli("scale", "staging", "web=3", cwd=repo)
    assert "v2: scale web=3" in scaled.stdout and "staging runs web=3" in scaled.stdout
    webs = processes(server, "web")
    assert len(webs) == 3 and set(web_before) <= set(webs)  # the running one was kept
    assert all(key.endswith("/v1") for key in webs)  # served by v1's generation
    shown = json.loads(server.cli("env", "show", "staging", "--json", cwd=repo).stdout)
    assert shown["scale"] == {"web": 3, "worker": 1} and shown["serving"] == "v1"
    assert "scale:   web=3, worker=1" in server.cli("env", "show", "staging", cwd=repo).stdout
    listed = releases(server, repo)
    assert [(r["name"], r["state"], r["replicas"]) for r in listed] == [
        ("v2", "live", {"web": 3}),
        ("v1", "superseded", {}),
    ]
    assert listed[0]["description"] == "scale web=3"
    pids = poll_until(
        lambda: (
            len(p := {server.get(HOST, "/api/info").json()["pid"] for _ in range(12)}) == 3 and p
        ),
        what="answers from three web replicas",
    )
    assert len(pids) == 3

    after = server.last_event("staging")
    with RouterLoad(server, HOST) as load:  # replicas scaled down leave the router first
        poll_until(lambda: load.requests > 20, what="requests before scaling down")
        server.cli("scale", "staging", "web=1", "worker=0", cwd=repo)
        for name in ("worker/0", "web/2", "web/1"):
            server.wait_for("staging", step("stopped", name), after=after, what=f"{name} stopped")
        mark = load.requests
        poll_until(lambda: load.requests > mark + 20, what="requests after scaling down")
    assert load.failures == [], load.failures[:5]
    assert processes(server, "worker") == []
    assert len(processes(server, "web")) == 1
    counts = json.loads(server.cli("scale", "staging", "--json", cwd=repo).stdout)
    assert counts == {
        "release": "v3",
        "replicas": {"web": 1, "worker": 0},
        "overrides": {"web": 1, "worker": 0},
    }

    back = server.cli("rollback", "staging", "--to", "v2", cwd=repo)
    assert "v4 is live on staging" in back.stdout
    v4 = sorted(p.service for p in server.processes() if p.release == "v4")
    assert v4 == ["web", "web", "web", "worker"]  # v1's processes are only kept warm
    assert releases(server, repo)[0]["replicas"] == {"web": 3}


def test_restart_replaces_every_replica_with_no_failed_request(
    server: Server, example_repo: Path
) -> None:
    repo = example_repo
    staging(server, repo)
    hooks = len(events(server, "hook"))
    with RouterLoad(server, HOST) as load:
        poll_until(lambda: load.requests > 20, what="requests before the restart")
        restarted = server.cli("restart", "staging", cwd=repo)
        mark = len(load.answers)
        poll_until(lambda: len(load.answers) > mark + 20, what="requests after the restart")
    assert "v2: restart" in restarted.stdout and "v2 is live on staging" in restarted.stdout
    assert load.failures == [], load.failures[:5]
    assert load.since(mark) == {"v2"}
    server.wait_for("staging", live("v2"), what="v2 live")
    fresh = sorted(p.service for p in server.processes() if p.release == "v2")
    assert fresh == ["web", "worker"]  # every replica started again, in a generation of its own
    assert len(events(server, "hook")) == hooks  # the release hook did not run again
    listed = releases(server, repo)
    assert [(r["name"], r["description"], r["build"]) for r in listed][0][:2] == ("v2", "restart")
    assert listed[0]["build"] == listed[1]["build"]

    # one service: its replicas replaced one at a time in the live processes, the rest kept
    server.cli("scale", "staging", "web=2", cwd=repo)  # v3
    shown = server.show("staging")
    assert shown is not None
    webs = {r["pid"] for r in shown["replicas"] if r["service"] == "web"}
    workers = {r["pid"] for r in shown["replicas"] if r["service"] == "worker"}
    with RouterLoad(server, HOST) as load:
        poll_until(lambda: load.requests > 20, what="requests before restarting web")
        restarted = server.cli("restart", "staging", "web", cwd=repo)
        mark = load.requests
        poll_until(lambda: load.requests > mark + 20, what="requests after restarting web")
    assert "v4: restart web" in restarted.stdout
    assert "every web replica of staging restarted" in restarted.stdout
    assert load.failures == [], load.failures[:5]
    shown = server.show("staging")
    assert shown is not None and shown["serving"] == "v2" and shown["release"] == "v4"
    now = {r["service"]: set() for r in shown["replicas"]}
    for r in shown["replicas"]:
        now[r["service"]].add(r["pid"])
    assert len(now["web"]) == 2 and not now["web"] & webs
    assert now["worker"] == workers
