"""Config as dotenv: what `laneway config pull` writes is read back exactly by python-dotenv
and by a POSIX shell (dash and bash), or left out and named."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dotenv
import pytest

from laneway.core.dotenv import quote, render

TRICKY = {
    "SPACES": "has  two spaces ",
    "DOUBLE": 'say "hi"',
    "SINGLE": "it's",
    "NEWLINES": "line1\nline2\n",
    "DOLLAR": "cost $5 and $HOME",
    "HASH": "x # not a comment",
    "HASH_FIRST": "#hash",
    "BACKSLASH": r"back\slash \n not a newline",
    "BACKSLASHES": r"two \\ in a row",
    "BACKQUOTE": "`not run`",
    "EMPTY": "",
    "QUOTE_MIX": 'it\'s "quoted" \\ here',
    "EQUALS": "a=b=c",
    "UNICODE": "café ✓",
    "TAB": "a\tb",
    "ESCAPED_QUOTE": r"x\"y",
}
UNQUOTABLE = {
    "BOTH": "it's $5",
    "BRACES": "${HOME}",
    "TRAILING": "ends with \\",
    "CR": "a\rb",
    "BACKSLASH_DOLLAR": r"\\$x",
}


def shell_reads(path: Path, shell: str, keys: list[str]) -> dict[str, str | None]:
    script = (
        f"set -a; . {path}; exec {sys.executable} -c "
        f"'import json, os, sys; print(json.dumps({{k: os.environ.get(k) for k in sys.argv[1:]}}))'"
        f" {' '.join(keys)}"
    )
    result = subprocess.run(
        [shell, "-c", script], capture_output=True, text=True, env={"PATH": os.environ["PATH"]}
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_tricky_values_read_back_the_same_by_python_dotenv_and_shells(tmp_path: Path) -> None:
    values = TRICKY | UNQUOTABLE
    rendered = render(values, left_out=["API_KEY"])
    assert sorted(rendered.unquotable) == sorted(UNQUOTABLE)
    path = tmp_path / ".env"
    path.write_text(rendered.text)
    assert dotenv.dotenv_values(path) == TRICKY
    for shell in ("sh", "bash"):
        assert shell_reads(path, shell, list(values)) == TRICKY | dict.fromkeys(UNQUOTABLE)


def test_comments_name_what_was_left_out() -> None:
    rendered = render({"A": "1", "B": "${X}"}, left_out=["TOKEN", "KEY"])
    lines = rendered.text.splitlines()
    assert lines[0] == (
        "# secrets left out: KEY, TOKEN (`laneway config pull --secrets` includes them)"
    )
    assert lines[1] == "A='1'"
    assert lines[2].startswith("# left out, no quoting reads back the same") and "B" in lines[2]


@pytest.mark.parametrize("value", list(UNQUOTABLE.values()))
def test_values_with_no_common_form_are_refused(value: str) -> None:
    assert quote(value) is None
