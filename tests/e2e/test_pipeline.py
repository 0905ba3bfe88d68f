"""The pipeline as a user drives it: deploy, promote the same build, config with secrets,
diff, instant rollback; and deploys that fail without moving traffic."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from laneway.testing import Server, git, poll_until, step

pytestmark = pytest.mark.e2e


def info(server: Server, name: str) -> dict:
    response = server.get(f"{name}.shop.localhost", "/api/info")
    assert response.status_code == 200, response.text
    return response.json()


def branch_with(example_repo: Path, tmp_path: Path, name: str, edit) -> str:
    """A branch off main with one commit that `edit(worktree)` makes; returns its name."""
    tree = tmp_path / name
    git(example_repo, "worktree", "add", "-q", "-b", name, str(tree), "main")
    edit(tree)
    git(tree, "commit", "-q", "-am", name)
    return name


def contents(path: Path) -> bytes:
    """A file's bytes; none once it is gone (a generation retired while the test reads)."""
    try:
        return path.read_bytes() if path.is_file() else b""
    except FileNotFoundError:
        return b""


def releases(server: Server, repo: Path, env: str) -> list[dict]:
    return json.loads(server.cli("releases", env, "--json", cwd=repo).stdout)


def test_deploy_promote_config_diff_rollback(server: Server, example_repo: Path, tmp_path: Path):
    repo = example_repo
    server.cli("env", "create", "staging", "--kind", "staging", "--branch", "main", cwd=repo)
    v1 = info(server, "staging")
    assert v1["release"] == "v1"

    def page_change(tree: Path) -> None:
        spec = (tree / "laneway.yaml").read_text()
        (tree / "laneway.yaml").write_text(
            spec.replace("PYTHONPATH: .deps", "PYTHONPATH: .deps\n  GREETING: two")
        )

    branch = branch_with(repo, tmp_path, "second", page_change)
    deployed = server.cli("deploy", "staging", "--ref", branch, cwd=repo)
    assert "v2 is live on staging" in deployed.stdout
    v2 = info(server, "staging")
    assert v2["release"] == "v2" and v2["pid"] != v1["pid"]
    staging_build = releases(server, repo, "staging")[0]["build"]

    # the same again changes nothing
    again = server.cli("deploy", "staging", "--ref", branch, cwd=repo)
    assert "nothing to deploy" in again.stdout
    assert [r["name"] for r in releases(server, repo, "staging")] == ["v2", "v1"]

    # production starts from the first build; a promote brings staging's build, not a rebuild
    first_build = releases(server, repo, "staging")[1]["build"]
    server.cli(
        "env", "create", "production", "--kind", "production", "--build", first_build, cwd=repo
    )
    builds_before = json.loads(server.cli("builds", "--json", cwd=repo).stdout)
    promoted = server.cli("promote", "staging", "production", cwd=repo)
    assert "v2 is live on production" in promoted.stdout
    assert releases(server, repo, "production")[0]["build"] == staging_build
    assert json.loads(server.cli("builds", "--json", cwd=repo).stdout) == builds_before
    assert info(server, "production")["build"] == staging_build[7:19]

    # production is protected: a build that never ran in staging is refused without --hotfix
    def add_file(tree: Path) -> None:
        (tree / "THIRD").write_text("3\n")
        git(tree, "add", "THIRD")

    third = branch_with(repo, tmp_path, "third", add_file)
    created = server.cli(
        "env",
        "create",
        "production",
        "--kind",
        "production",
        "--branch",
        third,
        cwd=repo,
        check=False,
    )
    assert created.returncode == 1 and "production is protected" in created.stderr
    refused = server.cli("deploy", "production", "--ref", third, cwd=repo, check=False)
    assert refused.returncode == 1 and "production is protected" in refused.stderr
    assert "--hotfix" in refused.stderr
    no_reason = server.cli(
        "deploy", "production", "--ref", third, "--hotfix", cwd=repo, check=False
    )
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr
    assert [r["name"] for r in releases(server, repo, "production")] == ["v2", "v1"]

    # config: a plain value and a secret, each a new release; the secret is never shown back
    secret = "s3cr3t-value-9f1c"
    server.cli("config", "set", "staging", "FEATURE_Y=on", cwd=repo)
    shown = server.cli("config", "set", "staging", f"API_KEY={secret}", "--secret", cwd=repo)
    listed = server.cli("config", "list", "staging", cwd=repo)
    as_json = server.cli("config", "list", "staging", "--json", cwd=repo)
    rel = server.cli("releases", "staging", "v4", "--json", cwd=repo)
    events = server.cli("logs", "staging", cwd=repo)
    assert "FEATURE_Y" in listed.stdout and "(secret)" in listed.stdout
    assert {v["key"]: v["value"] for v in json.loads(as_json.stdout)} == {
        "API_KEY": None,
        "FEATURE_Y": "on",
    }
    assert info(server, "staging")["release"] == "v4"

    drift = server.cli("diff", "staging", "production", cwd=repo, check=False)
    assert drift.returncode == 1
    rows = {
        (r["section"], r["item"]): r
        for r in json.loads(
            server.cli("diff", "staging", "production", "--json", cwd=repo, check=False).stdout
        )["rows"]
    }
    assert rows[("config", "FEATURE_Y")]["status"] == "left-only"
    assert rows[("build", "build")]["status"] == "same"
    assert rows[("resources", "db")]["left"].startswith("postgres ")

    everything = [
        shown.stdout,
        shown.stderr,
        listed.stdout,
        as_json.stdout,
        rel.stdout,
        drift.stdout,
        events.stdout,
    ]
    with server.http() as http:
        for path in (
            "environments/staging/events",
            "environments/staging/releases",
            "environments/staging/releases/4",
            "environments/staging/config",
            "diff?left=staging&right=production",
        ):
            everything.append(http.get(f"/api/v1/apps/shop/{path}").text)
    logs = [p.read_text(errors="replace") for p in (server.home).rglob("*.log")]
    assert not [t for t in everything + logs if secret in t]

    # rollback inside the warm window: a switch to the processes of v3, which still run
    before = info(server, "staging")
    rolled = server.cli("rollback", "staging", cwd=repo)
    assert "v5 is live on staging" in rolled.stdout
    after = info(server, "staging")
    assert after["release"] == "v3" and after["pid"] != before["pid"]
    latest = releases(server, repo, "staging")[0]
    assert (latest["name"], latest["description"], latest["generation"]) == (
        "v5",
        "rollback to v3",
        "v3",
    )


def test_unhealthy_deploy_and_failing_hook_leave_traffic_where_it_was(
    server: Server, example_repo: Path, tmp_path: Path
):
    repo = example_repo
    server.cli("env", "create", "qa", "--kind", "staging", "--branch", "main", cwd=repo)
    before = info(server, "qa")

    def never_healthy(tree: Path) -> None:
        spec = (tree / "laneway.yaml").read_text()
        (tree / "laneway.yaml").write_text(
            spec.replace("health: /healthz", "health: {path: /nowhere, grace: 3.0}")
        )

    sick = branch_with(repo, tmp_path, "sick", never_healthy)
    failed = server.cli("deploy", "qa", "--ref", sick, cwd=repo, check=False)
    assert failed.returncode == 1, failed.stdout
    assert "traffic stayed where it was" in failed.stderr
    assert "did not become healthy" in failed.stderr + failed.stdout
    assert info(server, "qa")["pid"] == before["pid"]
    shown = releases(server, repo, "qa")
    assert [(r["name"], r["state"]) for r in shown] == [("v2", "failed"), ("v1", "live")]
    assert "404" in shown[0]["message"]

    def failing_hook(tree: Path) -> None:
        spec = (tree / "laneway.yaml").read_text()
        (tree / "laneway.yaml").write_text(
            spec.replace("release: python -m shop.migrate", "release: echo migrating; exit 3")
        )

    broken = branch_with(repo, tmp_path, "broken-hook", failing_hook)
    failed = server.cli("deploy", "qa", "--ref", broken, cwd=repo, check=False)
    assert failed.returncode == 1 and "v3" in failed.stdout, failed.stdout + failed.stderr
    assert info(server, "qa")["pid"] == before["pid"]
    v3 = json.loads(server.cli("releases", "qa", "v3", "--json", cwd=repo).stdout)
    assert v3["state"] == "failed" and "exited with code 3" in v3["message"]
    assert "migrating" in (v3["hook_output"] or "")

    # a second deploy while one runs is refused with a clear message; the first one's hook
    # takes a minute, so it is still under way whatever the machine's load
    def slow_hook(tree: Path) -> None:
        spec = (tree / "laneway.yaml").read_text()
        (tree / "laneway.yaml").write_text(
            spec.replace("release: python -m shop.migrate", "release: sleep 60")
        )

    slow = branch_with(repo, tmp_path, "slow-hook", slow_hook)
    first = server.cli("deploy", "qa", "--ref", slow, "--no-wait", cwd=repo)
    assert "v4" in first.stdout
    second = server.cli("deploy", "qa", "--ref", "main", cwd=repo, check=False)
    assert second.returncode == 1 and "in progress" in second.stderr
    cancelled = server.cli("deploy", "qa", "--cancel", cwd=repo)
    assert "v1 serves qa" in cancelled.stdout
    assert releases(server, repo, "qa")[0]["state"] == "failed"
    again = server.cli("deploy", "qa", "--cancel", cwd=repo, check=False)
    assert again.returncode == 1 and "no deploy of qa is under way" in again.stderr

    # a hook that prints a secret: its output is redacted before it reaches any file
    secret = "tok-secret-4711"
    server.cli("config", "set", "qa", f"TOKEN={secret}", "--secret", cwd=repo)

    def leaky_hook(tree: Path) -> None:
        spec = (tree / "laneway.yaml").read_text()
        (tree / "laneway.yaml").write_text(
            spec.replace(
                "release: python -m shop.migrate",
                "release: echo token=$TOKEN pid=$$ && python -m shop.migrate",
            )
        )

    leaky = branch_with(repo, tmp_path, "leaky-hook", leaky_hook)
    server.cli("deploy", "qa", "--ref", leaky, cwd=repo)
    logs = server.cli("logs", "qa", "release", cwd=repo).stdout
    assert "token=***" in logs and secret not in logs
    # os.walk passes over a directory that a retiring generation removes while it walks
    files = [
        Path(top, name)
        for top, _, names in os.walk(server.home)
        for name in names
        if Path(name).suffix in (".log", ".json", "")
    ]
    assert not [p for p in files if secret.encode() in contents(p)]

    # while a slow build runs, the live release is still supervised: a crash is restarted
    def slow_build(tree: Path) -> None:
        spec = (tree / "laneway.yaml").read_text()
        (tree / "laneway.yaml").write_text(
            spec.replace("command: pip install", "command: sleep 8 && pip install")
        )

    slow = branch_with(repo, tmp_path, "slow-build", slow_build)
    live = info(server, "qa")
    after = server.last_event("qa")
    name = server.cli("deploy", "qa", "--ref", slow, "--no-wait", cwd=repo).stdout.split(":")[0]
    os.kill(live["pid"], signal.SIGKILL)
    first = server.wait_for(
        "qa",
        lambda e: e.type == "built" or step("started", f"web/0 of {live['release']} ")(e),
        after=after,
        what="the live web restarted or the build done",
    )
    assert first.type == "started", "the live web was not restarted while the build ran"

    def restarted() -> dict | None:
        try:
            now = info(server, "qa")
        except AssertionError:
            return None
        return now if now["pid"] != live["pid"] else None

    # polled: the router answers from the new process once its next table is loaded
    again = poll_until(restarted, what="an answer from the restarted web")
    assert again["release"] == live["release"]
    server.wait_for("qa", step("switched", f"{name} is live"), after=after, what=f"{name} live")

    serving = info(server, "qa")

    def crashing(tree: Path) -> None:
        spec = (tree / "laneway.yaml").read_text()
        (tree / "laneway.yaml").write_text(
            spec.replace("command: python -m shop.web", "command: echo the new web gave up; exit 4")
        )

    # the failure shows the new web's own last output, not the probes the live web answered
    crash = branch_with(repo, tmp_path, "crashing", crashing)
    failed = server.cli("deploy", "qa", "--ref", crash, cwd=repo, check=False)
    told = failed.stderr + failed.stdout
    assert failed.returncode == 1, told
    assert "the new web gave up" in told
    assert '"GET /healthz HTTP/1.1" 200' not in told  # the live web, probed
    assert info(server, "qa")["pid"] == serving["pid"]
