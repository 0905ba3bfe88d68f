"""A bad setting stops a command before it does anything: exit 2 and one line naming the
variable (and its option) and what it expects, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

HOST_PORT = "expected HOST:PORT such as 127.0.0.1:8080"


@pytest.mark.parametrize(
    ("args", "environ", "line"),
    [
        (
            ["server"],
            {"LANEWAY_PORTS": "99-1"},
            "LANEWAY_PORTS: expected a range like 20000-29999, got '99-1'",
        ),
        (["server", "--api", "nowhere"], {}, f"LANEWAY_API (--api): {HOST_PORT}, got 'nowhere'"),
        (
            ["server"],
            {"LANEWAY_FLAGS_SYNC": "127.0.0.1"},
            f"LANEWAY_FLAGS_SYNC (--flags-sync): {HOST_PORT}, got '127.0.0.1'",
        ),
        (["halt"], {"LANEWAY_ROUTER": ":8080"}, f"LANEWAY_ROUTER (--router): {HOST_PORT}"),
    ],
)
def test_a_bad_setting_exits_2_with_one_line(
    tmp_path: Path, args: list[str], environ: dict[str, str], line: str
):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LANEWAY_")}
    result = subprocess.run(
        [sys.executable, "-m", "laneway.cli", *args],
        env=clean | {"LANEWAY_HOME": str(tmp_path / "home")} | environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    [said] = result.stderr.strip().splitlines()
    assert said.startswith(f"error: {line}"), said
    assert not (tmp_path / "home").exists(), "a bad setting changed something"
