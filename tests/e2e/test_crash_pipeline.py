"""kill -9 of the control plane during deploys, a promote and rollbacks: after a restart each
release ends live (or cleanly failed, traffic where it was), requests through the router are
answered throughout, no replica runs twice, no generation outlives its warm time, and the
releases are numbered one per command.

Each kill waits for a condition (a step on the environment's event stream, the release hook's
process in /proc), never for time. The app's spec on these branches keeps the previous
generation warm for 4 s and lets its release hook be held: while the file named by the config
variable HOLD exists the hook waits, and with FAIL_HOOK set it fails.

A build left running by a killed server is stopped by the next one before it builds again.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from laneway.testing import (
    RouterLoad,
    Server,
    git,
    live,
    owned_databases,
    poll_until,
    status,
    step,
)

pytestmark = pytest.mark.e2e

HOOK = (
    "release: 'python -m shop.migrate"
    ' && while [ -e "${HOLD:-}" ]; do sleep 0.05; done'
    ' && [ -z "${FAIL_HOOK:-}" ]\''
)
STAGING = "environments/staging"
CONFIG = STAGING + "/config"
ROLLBACK = STAGING + "/rollback"
KINDS = """environments:
  staging: {keep_warm: 4s, drain: 1s}
  production: {protected: true, replicas: {web: 2}, keep_warm: 4s, drain: 1s}
"""


@pytest.fixture(scope="module")
def branches(example_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """`crash`: the example with the hook and warm time above; `crash-2`: one commit more (a
    second build)."""
    tree = tmp_path_factory.mktemp("crash") / "tree"
    git(example_repo, "worktree", "add", "-q", "-b", "crash", str(tree), "main")
    spec = (tree / "laneway.yaml").read_text()
    spec = spec.replace("release: python -m shop.migrate", HOOK)
    spec = spec[: spec.index("environments:")] + KINDS
    (tree / "laneway.yaml").write_text(spec)
    git(tree, "commit", "-q", "-am", "crash: held hook, short warm time")
    git(tree, "checkout", "-q", "-b", "crash-2")
    (tree / "SECOND").write_text("2\n")
    git(tree, "add", "SECOND")
    git(tree, "commit", "-q", "-m", "crash-2")
    return "crash", "crash-2"


def restart(server: Server) -> None:
    server.kill()
    server.start()


def propose(server: Server, environment: str, method: str, path: str, body: object) -> int:
    """Make a release through the API, as `laneway deploy|config|rollback|promote --no-wait`
    does (without a CLI start-up: an instant rollback must come within the warm time).
    Returns the id of the environment's last event before it: its steps come after."""
    after = server.last_event(environment)
    with server.http() as http:
        response = http.request(method, f"/api/v1/apps/shop/{path}", json=body)
    assert response.status_code == 202, response.text
    return after


def steps(server: Server, environment: str, after: int) -> list[str]:
    """The types of the environment's events after id `after`."""
    with server.http() as http:
        response = http.get(
            f"/api/v1/apps/shop/environments/{environment}/events", params={"after": after}
        )
    response.raise_for_status()
    return [e["type"] for e in response.json()]


def releases(server: Server, environment: str) -> list[dict[str, Any]]:
    with server.http() as http:
        response = http.get(f"/api/v1/apps/shop/environments/{environment}/releases")
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


def processes(server: Server, environment_id: str) -> list[str]:
    """`service/index/generation` of the environment's live processes, release hooks too."""
    found = [p for p in server.processes() if p.environment_id == environment_id]
    twice = [key for key, count in Counter(p.key for p in found).items() if count > 1]
    assert twice == [], "a replica runs twice"
    return sorted(p.key.split("/", 1)[1] for p in found)


def settled(
    server: Server,
    environment: str,
    release: str,
    *,
    serving: str | None = None,
    after: int = 0,
) -> dict[str, Any]:
    """Wait until `release` serves; check that it is the one live release, that the releases
    are numbered 1..n once each, and that no process runs twice. (A generation that was warm
    before the switch may still be draining: `retired` checks what runs once it is gone.)
    Returns the environment."""
    shown = server.wait_for(
        environment, live(release, serving=serving), after=after, what=f"{release} live"
    ).data
    numbers = [r["number"] for r in releases(server, environment)]
    assert numbers == list(range(len(numbers), 0, -1)), numbers
    assert [r["name"] for r in releases(server, environment) if r["state"] == "live"] == [release]
    processes(server, shown["id"])
    return shown


def retired(server: Server, environment: str, serving: str, replicas: list[str]) -> None:
    """Wait until the warm generation is retired: only `serving`'s replicas run then."""
    shown = server.wait_for(
        environment,
        status(lambda e: e["warm"] is None and e["serving"] == serving),
        what=f"the generation before {serving} retired",
    ).data
    assert processes(server, shown["id"]) == sorted(f"{r}/{serving}" for r in replicas)


def held_hook(server: Server, environment_id: str, release: int) -> int:
    """The pid of the release hook of `release`, once it runs (polled: a process appearing in
    /proc sends no event)."""
    key = f"{environment_id}/_hook/{release}"
    hook = poll_until(
        lambda: next((p for p in server.processes() if p.key.startswith(key)), None),
        what=f"the release hook of v{release}",
    )
    return int(hook.pid)


def hook_runs(server: Server, environment_id: str, release: int) -> int:
    log = server.home / "logs" / environment_id / "release.log"
    return log.read_text().count(f"--- release v{release}\n")


def build_processes(server: Server) -> set[int]:
    """Processes working in a build's scratch directory (the server's `tmp`)."""
    scratch = str(server.home / "tmp")
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and str(entry.joinpath("cwd").readlink()).startswith(scratch):
                found.add(int(entry.name))
        except OSError:
            continue
    return found


def test_kills_during_deploys_and_rollbacks(
    server: Server, example_repo: Path, branches: tuple[str, str], tmp_path: Path
) -> None:
    repo = example_repo
    first, second = branches
    hold = tmp_path / "hold"
    server.cli("env", "create", "staging", "--kind", "staging", "--branch", first, cwd=repo)
    staging = server.show("staging")
    assert staging is not None
    environment_id = staging["id"]
    web_and_worker = ["web/0", "worker/0"]

    with RouterLoad(server, "staging.shop.localhost") as load:
        # while v2 builds
        after = propose(server, "staging", "POST", STAGING + "/deploys", {"ref": second})
        server.wait_for("staging", step("build", "building"), after=after, what="v2 building")
        restart(server)
        settled(server, "staging", "v2", after=after)
        built = steps(server, "staging", after)
        assert built.count("build") == 2 and built.count("built") == 1, built
        assert list((server.home / "tmp").iterdir()) == [], "a build's scratch directory is left"

        # while the release hook of v3 runs: it is waited for, not run again
        hold.touch()
        after = propose(server, "staging", "PATCH", CONFIG, {"set": {"HOLD": str(hold)}})
        server.wait_for("staging", step("hook", "release hook:"), after=after, what="v3's hook")
        hook = held_hook(server, environment_id, 3)
        restart(server)
        assert held_hook(server, environment_id, 3) == hook
        hold.unlink()
        settled(server, "staging", "v3", after=after)
        assert hook_runs(server, environment_id, 3) == 1, "the release hook ran twice"

        # after v4's first replica started, before the switch (a worker counts after 3 s up)
        after = propose(server, "staging", "PATCH", CONFIG, {"set": {"STEP": "4"}})
        server.wait_for("staging", step("started", " of v4 "), after=after, what="v4 starting")
        assert server.show("staging")["serving"] == "v3"  # type: ignore[index]
        restart(server)
        settled(server, "staging", "v4", after=after)

        # right after the switch to v5: v4 is kept warm, then stopped
        after = propose(server, "staging", "PATCH", CONFIG, {"set": {"STEP": "5"}})
        server.wait_for("staging", step("switched", "v5 is live"), after=after, what="v5 live")
        restart(server)
        settled(server, "staging", "v5", after=after)
        retired(server, "staging", "v5", web_and_worker)

        # an instant rollback to v5 (a switch back to its warm processes), killed once recorded
        after = propose(server, "staging", "PATCH", CONFIG, {"set": {"STEP": "6"}})
        settled(server, "staging", "v6", after=after)
        after = propose(server, "staging", "POST", ROLLBACK, {})
        server.wait_for("staging", step("deploy", "v7: rollback to v5"), after=after, what="v7")
        restart(server)
        settled(server, "staging", "v7", serving="v5", after=after)
        assert releases(server, "staging")[0]["generation"] == "v5", "not an instant rollback"
        retired(server, "staging", "v5", web_and_worker)

        # a rollback to a release whose processes are gone: a new generation, killed starting
        after = propose(server, "staging", "POST", ROLLBACK, {"to": 2})
        server.wait_for("staging", step("started", " of v8 "), after=after, what="v8 starting")
        restart(server)
        settled(server, "staging", "v8", after=after)

        # a release whose hook fails after the restart: v8 serves on, v9's processes are gone
        serving_from = len(load.answers)
        hold.touch()
        after = propose(
            server, "staging", "PATCH", CONFIG, {"set": {"HOLD": str(hold), "FAIL_HOOK": "1"}}
        )
        server.wait_for("staging", step("hook", "release hook:"), after=after, what="v9's hook")
        held_hook(server, environment_id, 9)
        restart(server)
        hold.unlink()
        server.wait_for(
            "staging", step("deploy.failed", "deploy of v9"), after=after, what="v9 failed"
        )
        shown = settled(server, "staging", "v8", after=after)
        retired(server, "staging", "v8", web_and_worker)

    print(f"\nrouter load: {load.requests} requests, {len(load.failures)} failed")
    assert load.failures == [], load.failures[:5]
    assert load.since(serving_from) == {"v8"}, "traffic moved to a release that failed"
    assert hook_runs(server, environment_id, 9) == 1
    assert [(r["name"], r["state"], r["description"]) for r in releases(server, "staging")] == [
        ("v9", "failed", "config set FAIL_HOOK, HOLD"),
        ("v8", "live", "rollback to v2"),
        ("v7", "superseded", "rollback to v5"),
        ("v6", "superseded", "config set STEP"),
        ("v5", "superseded", "config set STEP"),
        ("v4", "superseded", "config set STEP"),
        ("v3", "superseded", "config set HOLD"),
        ("v2", "superseded", f"deploy {second} (commit {shown['commit'][:12]})"),
        ("v1", "superseded", releases(server, "staging")[-1]["description"]),
    ]
    assert len(owned_databases(server.owner())) == 1
    assert json.loads(server.cli("env", "list", "--json", cwd=repo).stdout)[0]["phase"] == "running"


def test_kills_during_a_promote(
    server: Server, example_repo: Path, branches: tuple[str, str]
) -> None:
    repo = example_repo
    first, second = branches
    server.cli("env", "create", "staging", "--kind", "staging", "--branch", second, cwd=repo)
    server.cli(
        "env", "create", "production", "--kind", "production", "--branch", first,
        "--hotfix", "--reason", "a build to promote over", cwd=repo,
    )  # fmt: skip
    production = server.show("production")
    assert production is not None
    environment_id = production["id"]

    with RouterLoad(server, "production.shop.localhost") as load:
        body = {"from": "staging", "to": "production"}
        after = propose(server, "production", "POST", "promotions", body)
        server.wait_for("production", step("unpacked", "as v2"), after=after, what="v2 unpacked")
        restart(server)
        server.wait_for("production", step("started", "web/1 of v2"), after=after, what="web/1")
        restart(server)
        settled(server, "production", "v2", after=after)
        retired(server, "production", "v2", ["web/0", "web/1", "worker/0"])

    print(f"\nrouter load: {load.requests} requests, {len(load.failures)} failed")
    assert load.failures == [], load.failures[:5]
    assert load.since(0) == {"v1", "v2"} and load.answers[-1] == "v2"
    assert hook_runs(server, environment_id, 2) == 1, "the release hook ran twice"
    promoted = releases(server, "production")
    assert [(r["name"], r["state"]) for r in promoted] == [("v2", "live"), ("v1", "superseded")]
    assert promoted[0]["build"] == releases(server, "staging")[0]["build"]
    assert len(owned_databases(server.owner())) == 2


def test_a_build_killed_with_the_server_stops_with_it(
    server: Server, example_repo: Path, tmp_path: Path
) -> None:
    hold = tmp_path / "build-hold"
    tree = tmp_path / "tree"
    git(example_repo, "worktree", "add", "-q", "-b", "held-build", str(tree), "main")
    spec = (tree / "laneway.yaml").read_text()
    gate = f"while [ -e {hold} ]; do sleep 0.05; done; pip install"
    (tree / "laneway.yaml").write_text(spec.replace("command: pip install", f"command: {gate}"))
    git(tree, "commit", "-q", "-am", "a build that waits for a file to go")
    hold.touch()
    server.cli("env", "create", "held", "--branch", "held-build", "--no-wait", cwd=example_repo)
    server.wait_for("held", step("build", "building"), what="the build")
    killed = poll_until(lambda: build_processes(server), what="the build's processes")
    try:
        restart(server)
        assert build_processes(server) & killed == set(), "the killed server's build runs on"
        hold.unlink()
        server.wait_for("held", status(lambda e: e["phase"] == "running"), what="running")
        assert build_processes(server) == set()
    finally:
        hold.unlink(missing_ok=True)
        for pid in build_processes(server):
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
