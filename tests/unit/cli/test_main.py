"""The `laneway` command's exit codes and messages for bad usage, and its help, run as a user
runs them (a process; no server needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def laneway(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "laneway.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("LANEWAY_")},
            "COLUMNS": "100",
        },
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("env", "create"), "Error: Missing argument 'NAME'."),
        (("rollback", "staging", "--timeout", "soon"), "Invalid value for '--timeout'"),
        (("deploy", "staging", "--bogus"), "Error: No such option: --bogus"),
        (("bogus",), "Error: No such command 'bogus'."),
        (("run", "staging", "web"), "Error: Missing argument 'command'."),
        (("run", "staging", "web", "--timeout", "x", "true"), "Invalid value for '--timeout'"),
    ],
)
def test_bad_usage_exits_2_with_the_usage_line(
    tmp_path: Path, args: tuple[str, ...], says: str
) -> None:
    result = laneway(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert says in result.stderr
    assert "Usage: " in result.stderr and "Traceback" not in result.stderr
    assert "unexpected" not in result.stderr


def test_no_command_prints_the_help_and_exits_2(tmp_path: Path) -> None:
    result = laneway(cwd=tmp_path)
    assert result.returncode == 2
    assert "Commands:" in result.stderr + result.stdout


def test_help_lists_every_command_with_its_summary(tmp_path: Path) -> None:
    result = laneway("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    listed = [
        line.split()[0]
        for line in result.stdout.split("Commands:")[1].splitlines()
        if line.startswith("  ")
    ]
    assert listed == [
        "build",
        "builds",
        "releases",
        "logs",
        "server",
        "demo",
        "halt",
        "up",
        "down",
        "init",
        "deploy",
        "promote",
        "rollback",
        "diff",
        "open",
        "run",
        "restart",
        "scale",
        "approvals",
        "approve",
        "reject",
        "env",
        "spec",
        "config",
        "flags",
        "canary",
        "access",
        "secrets",
        "audit",
    ]
    assert "List the app's builds." in result.stdout
    create = laneway("env", "create", "--help", cwd=tmp_path)
    assert "--wait / --no-wait" in create.stdout and "[env var: LANEWAY_APP]" in create.stdout


def test_spec_check_json_prints_the_problems_of_an_invalid_spec(tmp_path: Path) -> None:
    (tmp_path / "laneway.yaml").write_text("app: shop\nservices:\n  web:\n    comand: x\n")
    (tmp_path / "broken.yaml").write_text("app: [\n")
    result = laneway("spec", "check", "--json", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    report = json.loads(result.stdout)
    assert report["valid"] is False and report["file"] == "laneway.yaml"
    assert {
        "file": "laneway.yaml",
        "line": 4,
        "column": 5,
        "field": "services.web.comand",
        "message": "unknown key; did you mean 'command'? "
        "(allowed: command, env, health, port, replicas)",
    } in report["problems"]
    broken = json.loads(laneway("spec", "check", "--json", "broken.yaml", cwd=tmp_path).stdout)
    [problem] = broken["problems"]
    assert problem["line"] == 2 and problem["field"] is None
    assert problem["message"].startswith("invalid YAML")
    missing = laneway("spec", "check", "--json", "nope.yaml", cwd=tmp_path)
    assert missing.returncode == 2
    assert json.loads(missing.stdout)["problems"][0]["message"].startswith("cannot read")


@pytest.mark.parametrize(
    ("args", "usage"),
    [
        (("deploy",), "deploy [OPTIONS] ENV\n"),
        (("config", "set"), "config set [OPTIONS] ENV ASSIGNMENTS...\n"),
        (("promote",), "promote [OPTIONS] SOURCE TARGET\n"),
    ],
)
def test_usage_names_arguments_as_click_does(
    tmp_path: Path, args: tuple[str, ...], usage: str
) -> None:
    """`ENV`, `[REF]`, `KEY...`: not typer 0.28's `{environment}`."""
    result = laneway(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert usage in result.stderr and "{" not in result.stderr
    assert "[REF]" in laneway("build", "--help", cwd=tmp_path).stdout
