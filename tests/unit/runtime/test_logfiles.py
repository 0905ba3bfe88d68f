"""Following the log files replicas write: new complete lines, file by file."""

from __future__ import annotations

import os
from pathlib import Path

from laneway.runtime import logfiles


def lines(follower: logfiles.Follower) -> list[tuple[str, bytes]]:
    return [(logfiles.label(path), line) for path, line in follower.read()]


def test_from_end_reads_only_what_is_written_after(tmp_path: Path):
    (tmp_path / "web.0.log").write_bytes(b"old\n")
    follower = logfiles.Follower.from_end(tmp_path)
    assert lines(follower) == []
    with open(tmp_path / "web.0.log", "ab") as f:
        f.write(b"new\n")
    assert lines(follower) == [("web.0", b"new\n")]


def test_a_partial_line_waits_for_its_end(tmp_path: Path):
    follower = logfiles.Follower(tmp_path)
    log = tmp_path / "worker.0.log"
    log.write_bytes(b"one\ntw")
    assert lines(follower) == [("worker.0", b"one\n")]
    with open(log, "ab") as f:
        f.write(b"o\n")
    assert lines(follower) == [("worker.0", b"two\n")]


def test_a_file_that_appears_later_is_read_from_its_start(tmp_path: Path):
    follower = logfiles.Follower.from_end(tmp_path)
    (tmp_path / "release.log").write_bytes(b"--- release v1\nmigrated\n")
    assert lines(follower) == [("release", b"--- release v1\n"), ("release", b"migrated\n")]


def test_a_rotated_file_is_read_again_from_its_start(tmp_path: Path):
    log = tmp_path / "web.0.log"
    log.write_bytes(b"x" * 100 + b"\n")
    follower = logfiles.Follower(tmp_path)
    assert len(lines(follower)) == 1
    assert logfiles.rotate(tmp_path, max_bytes=10) == [log]
    with open(log, "ab") as f:
        f.write(b"after\n")
    assert lines(follower) == [("web.0", b"after\n")]
    assert (tmp_path / "web.0.log.1").exists() and os.path.getsize(log) == 6


def test_only_the_files_asked_for(tmp_path: Path):
    (tmp_path / "web.0.log").write_bytes(b"w\n")
    (tmp_path / "worker.0.log").write_bytes(b"k\n")
    follower = logfiles.Follower(tmp_path)
    assert [line for _, line in follower.read([tmp_path / "web.0.log"])] == [b"w\n"]
    assert lines(follower) == [("worker.0", b"k\n")]
