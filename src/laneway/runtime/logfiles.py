"""The log files replicas write to (opened for append by `local.py`): rotation, and
following them (`laneway logs -f` through the API, and `laneway up`).

Rotation copies, then truncates: the process keeps its file open and, writing with O_APPEND,
goes on at the new end, so no signal or reopen is needed. A line written between the copy and
the truncate can be lost; that is the price of not sitting in the app's output path.
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
