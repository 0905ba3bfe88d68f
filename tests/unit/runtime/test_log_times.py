"""The times kept beside log files, and `--since` read through them: every line written at or
after the time is shown, and lines from before the sample before it are not."""

from __future__ import annotations

import os
from pathlib import Path

from laneway.runtime import logfiles


def write(path: Path, text: str, *, mtime: float) -> None:
    with open(path, "a") as f:
        f.write(text)
    os.utime(path, (mtime, mtime))


def test_since_starts_at_the_last_sample_before_it(tmp_path: Path) -> None:
    log = tmp_path / "web.0.log"
    clock = logfiles.LogClock()
    write(log, "early\n", mtime=100)
    clock.sample(tmp_path, now=100)
    write(log, "middle\n", mtime=105)
    clock.sample(tmp_path, now=105)
    write(log, "late\n", mtime=110)
    clock.sample(tmp_path, now=110)
    data = log.read_bytes()
    assert data[logfiles.start_offset(log, 99) :] == b"early\nmiddle\nlate\n"
    assert data[logfiles.start_offset(log, 100) :] == b"middle\nlate\n"
    assert data[logfiles.start_offset(log, 107) :] == b"late\n"
    assert data[logfiles.start_offset(log, 111) :] == b""  # nothing written since


def test_samples_are_kept_only_on_change_and_at_most_one_a_second(tmp_path: Path) -> None:
    log = tmp_path / "web.0.log"
    clock = logfiles.LogClock()
    write(log, "a\n", mtime=100)
    clock.sample(tmp_path, now=100)
    clock.sample(tmp_path, now=103)  # unchanged
    write(log, "b\n", mtime=103.5)
    clock.sample(tmp_path, now=103.5)
    clock.sample(tmp_path, now=103.9)  # too soon after: nothing changed since
    assert logfiles.read_times(log) == [(100.0, 2), (103.5, 4)]


def test_a_new_clock_goes_on_from_the_file_and_a_rotation_starts_it_again(tmp_path: Path) -> None:
    log = tmp_path / "web.0.log"
    write(log, "a\n", mtime=100)
    logfiles.LogClock().sample(tmp_path, now=100)
    write(log, "b\n", mtime=101)
    logfiles.LogClock().sample(tmp_path, now=102)  # a restarted control plane
    assert logfiles.read_times(log) == [(100.0, 2), (102.0, 4)]
    logfiles.rotate(tmp_path, max_bytes=1)
    write(log, "c\n", mtime=103)
    logfiles.LogClock().sample(tmp_path, now=103)
    assert logfiles.read_times(log) == [(103.0, 2)]
    assert log.read_bytes()[logfiles.start_offset(log, 101) :] == b"c\n"


def test_a_file_without_samples_is_read_whole(tmp_path: Path) -> None:
    log = tmp_path / "web.0.log"
    write(log, "a\nb\n", mtime=200)
    assert logfiles.start_offset(log, 150) == 0
    assert logfiles.start_offset(log, 250) == 4


def test_the_times_file_is_thinned_not_grown(tmp_path: Path) -> None:
    log = tmp_path / "web.0.log"
    clock = logfiles.LogClock()
    for second in range(10_000):
        write(log, "x\n", mtime=second)
        clock.sample(tmp_path, now=second)
    assert logfiles.times_path(log).stat().st_size <= logfiles.MAX_TIMES_BYTES
    samples = logfiles.read_times(log)
    assert samples[-1] == (9999.0, 20_000)
    assert samples == sorted(samples)
    # coarser, still true: from the start offset on, only lines written at or after 5000 - gap
    offset = logfiles.start_offset(log, 5000)
    assert 0 < offset <= 5001 * 2
