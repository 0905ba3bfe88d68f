"""Rotation of the log files replicas write to (opened for append by `local.py`).

Copy, then truncate: the process keeps its file open and, writing with O_APPEND, goes on
at the new end, so no signal or reopen is needed. A line written between the copy and the
truncate can be lost; that is the price of not sitting in the app's output path.
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
