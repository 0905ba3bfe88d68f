"""The `laneway` command's exit codes and messages for bad usage, and its help, run as a user
runs them (a process; no server needed)."""

from __future__ import annotations

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
        "init",
        "deploy",
        "promote",
        "rollback",
        "diff",
        "env",
        "spec",
        "config",
        "flags",
    ]
    assert "List the app's builds." in result.stdout
    create = laneway("env", "create", "--help", cwd=tmp_path)
    assert "--wait / --no-wait" in create.stdout and "[env var: LANEWAY_APP]" in create.stdout
