"""The pure packages do no I/O that an import contract cannot see: no `open()`, no file
reads or writes through a path object, no reading of the clock. (`.importlinter` forbids
the I/O modules themselves.)"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import laneway

PURE = ("core", "spec", "flags", "analysis")
FORBIDDEN_CALLS = {"open", "read_text", "read_bytes", "write_text", "write_bytes", "now", "utcnow"}
ROOT = Path(laneway.__file__).parent


def _calls(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name in FORBIDDEN_CALLS:
                found.append((node.lineno, name))
    return found


@pytest.mark.parametrize("package", PURE)
def test_pure_packages_call_no_file_or_clock_functions(package: str) -> None:
    offences = [
        f"{path.relative_to(ROOT)}:{line}: {name}()"
        for path in sorted((ROOT / package).rglob("*.py"))
        for line, name in _calls(path)
    ]
    assert offences == []


def test_the_check_sees_an_offence(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import datetime\nx = open('f')\ny = datetime.datetime.now()\n")
    assert _calls(sample) == [(2, "open"), (3, "now")]
