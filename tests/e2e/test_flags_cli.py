"""`laneway flags` as a user types it: define, list, switch, roll out, export and import, bad
input refused with exit 2 and nothing changed, the history, and the client key that reads the
environment's flags over OFREP."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from laneway.testing import Server, spec_repo

pytestmark = pytest.mark.e2e

SPEC = "app: shop\nservices:\n  web: {command: python3 -m http.server $PORT --bind 127.0.0.1}\n"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = spec_repo(tmp_path / "shop", SPEC)
    return repo


def refused(server: Server, repo: Path, *args: str) -> str:
    result = server.cli(*args, cwd=repo, check=False)
    assert result.returncode == 2, (args, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result.stderr


def test_flags_from_the_command_line(server: Server, repo: Path, tmp_path: Path):
    server.cli("env", "create", "staging", "--kind", "staging", "--branch", "main", cwd=repo)
    server.cli("env", "create", "production", "--kind", "production", "--branch", "main", "--hotfix", "--reason", "tests", "--no-wait", cwd=repo)  # fmt: skip

    created = server.cli("flags", "create", "new-checkout", "--enable-in", "staging", cwd=repo)
    assert "flag new-checkout created in app shop" in created.stdout
    assert "staging: on: on" in created.stdout and "production: off" in created.stdout
    server.cli(
        "flags", "create", "color", "--type", "string",
        "--variant", "a=blue", "--variant", "b=green", "--default", "b", cwd=repo,
    )  # fmt: skip

    listed = json.loads(server.cli("flags", "list", "--json", cwd=repo).stdout)
    states = {
        f["key"]: {e: s["state"] for e, s in f["environments"].items()} for f in listed["flags"]
    }
    assert states == {
        "new-checkout": {"production": "DISABLED", "staging": "ENABLED"},
        "color": {"production": "DISABLED", "staging": "DISABLED"},
    }
    table = server.cli("flags", "list", cwd=repo).stdout
    assert "new-checkout" in table and "color" in table and "staging" in table

    server.cli("flags", "set", "new-checkout", "--env", "production", "on", cwd=repo)
    server.cli("flags", "set", "color", "--env", "staging", "on", "--variant", "a", cwd=repo)
    rolled = server.cli("flags", "rollout", "new-checkout", "--env", "staging", "10", cwd=repo)
    assert "10% of users get on, the rest off" in rolled.stdout
    one = json.loads(server.cli("flags", "list", "--env", "staging", "--json", cwd=repo).stdout)
    by_key = {f["key"]: f for f in one["flags"]}
    assert by_key["new-checkout"]["rollout"] == {"variant": "on", "percent": 10.0, "rest": "off"}
    assert (by_key["color"]["state"], by_key["color"]["defaultVariant"]) == ("ENABLED", "a")

    exported = tmp_path / "staging.json"
    server.cli("flags", "export", str(exported), "--env", "staging", cwd=repo)
    before = exported.read_text()
    assert json.loads(before)["flags"]["new-checkout"]["targeting"] == {
        "fractional": [["on", 10], ["off", 90]]
    }
    history_before = server.cli("flags", "history", "--env", "staging", "--json", cwd=repo).stdout

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"flags": {"x": {"state": "ENABLED", "variants": {"on": True}, "defaultVariant": "off"}}}))  # fmt: skip
    not_json = tmp_path / "notes.txt"
    not_json.write_text("flags: yes\n")
    assert "flags.x.defaultVariant: 'off' is not one of the variants (on)" in refused(
        server, repo, "flags", "import", str(bad), "--env", "staging"
    )
    assert "notes.txt: not JSON" in refused(server, repo, "flags", "import", str(not_json), "--env", "staging")  # fmt: skip
    assert "say which variant with --variant" in refused(
        server, repo, "flags", "rollout", "color", "--env", "staging", "10"
    )
    assert "expected on or off" in refused(server, repo, "flags", "set", "color", "--env", "staging", "maybe")  # fmt: skip
    assert "percent" in refused(server, repo, "flags", "rollout", "new-checkout", "--env", "staging", "150")  # fmt: skip
    assert "expected a number" in refused(
        server, repo, "flags", "create", "limit", "--type", "number", "--variant", "a=x"
    )
    assert "--variant: expected NAME=VALUE" in refused(
        server, repo, "flags", "create", "limit", "--type", "number", "--variant", "5"
    )
    assert "flag key 'Bad Key'" in refused(server, repo, "flags", "create", "Bad Key")
    server.cli("flags", "export", str(exported), "--env", "staging", cwd=repo)
    assert exported.read_text() == before
    assert (
        server.cli("flags", "history", "--env", "staging", "--json", cwd=repo).stdout
        == history_before
    )

    history = json.loads(
        server.cli(
            "flags", "history", "new-checkout", "--env", "staging", "--json", cwd=repo
        ).stdout
    )
    assert [(c["key"], c["actor"]) for c in history] == [("new-checkout", "admin")] * 2
    assert history[0]["after"]["targeting"] and history[1]["before"] is None
    table = server.cli("flags", "history", "--env", "staging", cwd=repo).stdout
    assert "created" in table and "targeting" in table

    printed = server.cli("flags", "key", "--env", "staging", cwd=repo).stdout.split()
    url = printed[0].removeprefix("LANEWAY_FLAGS_URL=")
    key = printed[1].removeprefix("LANEWAY_FLAGS_KEY=")
    assert url == server.url and key.startswith("lwf_")
    answer = httpx.post(
        f"{url}/ofrep/v1/evaluate/flags/color",
        headers={"Authorization": f"Bearer {key}"},
        json={"context": {"targetingKey": "u"}},
    )
    assert answer.json() == {"key": "color", "value": "blue", "reason": "STATIC", "variant": "a", "metadata": {}}  # fmt: skip

    server.cli("flags", "import", str(exported), "--env", "production", cwd=repo)
    elsewhere = tmp_path / "elsewhere"  # not an app's repository: the server's only app
    elsewhere.mkdir()
    again = json.loads(server.cli("flags", "list", "--env", "production", "--json", cwd=elsewhere).stdout)  # fmt: skip
    assert again["flags"] == one["flags"]
    server.cli("flags", "delete", "color", cwd=repo)
    assert "color" not in server.cli("flags", "list", cwd=repo).stdout


TESTBED = Path(__file__).parents[1] / "unit" / "flags" / "flagd_testbed" / "testkit-flags.json"


def test_importing_the_flagd_testbed_file_warns_and_strict_refuses(server: Server, repo: Path):
    server.cli("env", "create", "staging", "--kind", "staging", "--branch", "main", "--no-wait", cwd=repo)  # fmt: skip
    strict = refused(server, repo, "flags", "import", str(TESTBED), "--env", "staging", "--strict")
    assert "flags.starts-with-wrong-args-flag.targeting: starts_with takes 2 arguments" in strict
    assert "import that is not strict takes them" in strict
    listed = json.loads(server.cli("flags", "list", "--env", "staging", "--json", cwd=repo).stdout)
    assert listed["flags"] == []

    imported = server.cli("flags", "import", str(TESTBED), "--env", "staging", cwd=repo)
    assert "60 flags imported into staging (version 1), 5 with warnings" in imported.stdout
    warnings = [line for line in imported.stderr.splitlines() if line.startswith("warning: ")]
    assert [w.split(".")[1] for w in warnings] == [
        "semver-invalid-operator-flag",
        "ref-to-nonexistent-evaluator-flag",
        "starts-with-wrong-args-flag",
        "ends-with-wrong-args-flag",
        "semver-wrong-args-flag",
    ]
    assert warnings[1] == (
        "warning: flags.ref-to-nonexistent-evaluator-flag.targeting: $ref "
        "'nonexistent_evaluator' names no rule in $evaluators (flagd answers PARSE_ERROR)"
    )
