"""Which log lines a request gets (api/logs.py), on real files: the tail, since a time, those
matching a pattern, and the pattern applied to each line as it would be sent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from laneway.api import logs
from laneway.core import redaction
from laneway.core.grep import compile_pattern
from laneway.errors import InvalidInput
from laneway.runtime import logfiles


def write(path: Path, text: str, *, at: float) -> None:
    with open(path, "a") as f:
        f.write(text)
    os.utime(path, (at, at))


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    clock = logfiles.LogClock()
    write(tmp_path / "web.0.log", "boot ok\nGET /a 200\n", at=100)
    clock.sample(tmp_path, now=100)
    write(tmp_path / "web.0.log", "GET /b 500\nGET /c 200\n", at=110)
    clock.sample(tmp_path, now=110)
    write(tmp_path / "worker.0.log", "job 1 done\n", at=105)
    clock.sample(tmp_path, now=105)
    return tmp_path


def lines(
    directory: Path,
    service: str | None = None,
    secrets: frozenset[str] = frozenset(),
    **selection: object,
) -> list[bytes]:
    found, _ = logs.history(
        logs.log_files(directory, service),
        logs.Selection(**selection),  # type: ignore[arg-type]
        redaction.redactor(secrets),
    )
    return [logs.labelled(path, line) for path, line in found]


def test_tail_since_and_grep_combine(logdir: Path) -> None:
    assert lines(logdir, tail=1) == [b"web.0 | GET /c 200\n", b"worker.0 | job 1 done\n"]
    assert lines(logdir, since=101.0) == [
        b"web.0 | GET /b 500\n",
        b"web.0 | GET /c 200\n",
        b"worker.0 | job 1 done\n",
    ]
    assert lines(logdir, "web", pattern=compile_pattern(r" [45]\d\d$")) == [b"web.0 | GET /b 500\n"]
    assert lines(logdir, since=101.0, pattern=compile_pattern("GET"), tail=1) == [
        b"web.0 | GET /c 200\n"
    ]
    assert lines(logdir, since=200.0) == []


def test_the_pattern_sees_lines_as_they_are_sent(tmp_path: Path) -> None:
    """A pattern cannot probe what the reader is not shown: it matches the redacted line,
    and a secret is hidden even where it spans two lines of the file."""
    write(tmp_path / "web.0.log", "token=hunter22secret\nsplit hunter22\nsecret here\n", at=100)
    hidden = frozenset({"hunter22secret", "hunter22\nsecret"})
    probe = compile_pattern("hunter2")
    assert len(lines(tmp_path, pattern=probe)) == 2
    assert lines(tmp_path, pattern=probe, secrets=hidden) == []
    assert lines(tmp_path, pattern=compile_pattern(r"\*\*\*"), secrets=hidden) == [
        b"web.0 | token=***\n",
        b"web.0 | split *** here\n",
    ]
    assert lines(tmp_path, secrets=hidden) == [
        b"web.0 | token=***\n",
        b"web.0 | split *** here\n",
    ]


def test_a_slow_pattern_is_refused_not_left_running(tmp_path: Path) -> None:
    write(tmp_path / "web.0.log", "a" * 40 + "!\n", at=100)
    with pytest.raises(InvalidInput, match="took more than"):
        lines(tmp_path, pattern=compile_pattern("(a|aa)+$"))


@pytest.mark.parametrize(
    ("pattern", "says"),
    [("(", "missing )"), ("[z-a]", "bad character range"), ("x" * 201, "at most 200")],
)
def test_bad_patterns_say_what_is_wrong(pattern: str, says: str) -> None:
    with pytest.raises(InvalidInput, match="grep") as caught:
        compile_pattern(pattern)
    assert says in caught.value.message
