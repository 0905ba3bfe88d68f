"""The log files replicas write to (opened for append by `local.py`): rotation, and
following them (`laneway logs -f` through the API, and `laneway up`).

Rotation copies, then truncates: the process keeps its file open and, writing with O_APPEND,
goes on at the new end, so no signal or reopen is needed. A line written between the copy and
the truncate can be lost; that is the price of not sitting in the app's output path.

Lines carry no time of their own (the app writes them straight to its file), so `LogClock`
keeps beside each file, in `<file>.times`, when it had which size: at most one sample a second,
taken by the environment's reconciler pass. `start_offset` turns a time into the offset from
which every line was written at or after it (give or take a sample's interval: about a
second while the control plane runs, longer for what was written while it was down).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def rotate(directory: Path, *, max_bytes: int) -> list[Path]:
    """Rotate every `*.log` in `directory` larger than `max_bytes` to `*.log.1`."""
    rotated: list[Path] = []
    if not directory.is_dir():
        return rotated
    for path in directory.glob("*.log"):
        try:
            if path.stat().st_size > max_bytes:
                shutil.copyfile(path, path.with_suffix(".log.1"))
                os.truncate(path, 0)
                rotated.append(path)
        except OSError:
            continue
    return rotated


TIMES_SUFFIX = ".times"
SAMPLE_GAP = 1.0
"""Seconds between two samples of one file."""
MAX_TIMES_BYTES = 64 * 1024
"""A `.times` file that grows past this keeps every other sample: coarser, never larger."""


def times_path(path: Path) -> Path:
    return path.with_name(path.name + TIMES_SUFFIX)


def read_times(path: Path) -> list[tuple[float, int]]:
    """The (time, size) samples of a log file, oldest first; none if it has no `.times`."""
    try:
        text = times_path(path).read_text()
    except OSError:
        return []
    samples = []
    for line in text.splitlines():
        when, _, size = line.partition(" ")
        try:
            samples.append((float(when), int(size)))
        except ValueError:
            continue  # a line being written
    return samples


def start_offset(path: Path, since: float) -> int:
    """The offset in `path` from which every line was written at or after `since` (lines
    before it were written earlier): the size at the last sample no later than `since`."""
    try:
        stat = path.stat()
    except OSError:
        return 0
    if stat.st_mtime < since:
        return stat.st_size
    offset = 0
    for when, size in read_times(path):
        if when > since:
            break
        offset = size
    return offset if offset <= stat.st_size else 0  # larger: rotated since that sample


class LogClock:
    """Writes each log file's (time, size) samples; one per reconciler."""

    def __init__(self) -> None:
        self._last: dict[Path, dict[Path, tuple[float, int]]] = {}
        """directory -> file -> its last sample"""

    def sample(self, directory: Path, *, now: float) -> None:
        if not directory.is_dir():
            return
        last = self._last.setdefault(directory, {})
        for path in directory.glob("*.log"):
            try:
                self._sample(path, now, last)
            except OSError:
                continue

    def forget(self, directory: Path) -> None:
        """The directory is gone (its environment destroyed)."""
        self._last.pop(directory, None)

    def _sample(self, path: Path, now: float, known: dict[Path, tuple[float, int]]) -> None:
        size = path.stat().st_size
        last = known.get(path)
        if last is None:
            samples = read_times(path)
            last = samples[-1] if samples else None
        if last is not None and size >= last[1]:
            if size == last[1] or now - last[0] < SAMPLE_GAP:
                return
            mode = "a"
        else:
            mode = "w"  # new, or rotated: the old samples no longer fit the file
        with open(times_path(path), mode) as f:
            f.write(f"{now:.3f} {size}\n")
            grown = f.tell()
        known[path] = (now, size)
        if grown > MAX_TIMES_BYTES:
            kept = read_times(path)
            kept = kept[-1::-2][::-1]
            tmp = times_path(path).with_suffix(".tmp")
            tmp.write_text("".join(f"{when:.3f} {at}\n" for when, at in kept))
            os.replace(tmp, times_path(path))


def label(path: Path) -> str:
    """`web.0.log` -> `web.0`: the replica (or `release`, the hook) a file is the output of."""
    return path.name.removesuffix(".log")


class Follower:
    """The new complete lines of the `*.log` files of a directory, from where each file was
    left; a file that shrank was rotated, and is read again from its start. A file that
    appears later is read from its start."""

    def __init__(self, directory: Path, offsets: dict[Path, int] | None = None) -> None:
        self.directory = directory
        self.offsets: dict[Path, int] = dict(offsets or {})

    @classmethod
    def from_end(cls, directory: Path) -> Follower:
        """Following only what is written from now on."""
        offsets = {}
        for path in directory.glob("*.log") if directory.is_dir() else ():
            try:
                offsets[path] = path.stat().st_size
            except OSError:
                continue
        return cls(directory, offsets)

    def read(self, files: list[Path] | None = None) -> list[tuple[Path, bytes]]:
        """(file, line) of every complete new line, file by file; only `files` if given."""
        if files is None:
            files = sorted(self.directory.glob("*.log")) if self.directory.is_dir() else []
        found = []
        for path in files:
            offset = self.offsets.get(path, 0)
            try:
                size = path.stat().st_size
            except OSError:
                continue
            if size < offset:
                offset = 0  # rotated
            if size == offset:
                continue
            try:
                with open(path, "rb") as f:
                    f.seek(offset)
                    data = f.read(size - offset)
            except OSError:
                continue
            complete = data[: data.rfind(b"\n") + 1]
            self.offsets[path] = offset + len(complete)
            found += [(path, line) for line in complete.splitlines(keepends=True)]
        return found
