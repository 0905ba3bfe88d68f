"""Reading an environment's log files: the last lines, then new ones as they are written.

Each line is labelled with its file (`web.0 | ...`), so one stream multiplexes services.
Every line served goes through the environment's redactor: processes write their files
through a filter that hides secrets already (`runtime/redacting.py`), this is the second
line of defence (a file written before a secret was set, or by another way).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from laneway.core.redaction import Redactor
from laneway.runtime import logfiles

POLL = 0.2


def log_files(directory: Path, service: str | None) -> list[Path]:
    if not directory.is_dir():
        return []
    files = sorted(directory.glob("*.log"))
    if service is None:
        return files
    return [f for f in files if f.name.split(".")[0] == service]


def tail_lines(path: Path, count: int) -> tuple[list[bytes], int]:
    """The last `count` lines and the offset just after them."""
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        block = min(size, max(64 * 1024, count * 512))
        f.seek(size - block)
        data = f.read(block)
    lines = data.splitlines(keepends=True)
    if block < size and lines:
        lines = lines[1:]
    return (lines[-count:] if count else []), size


def _labelled(path: Path, lines: list[bytes], redactor: Redactor) -> list[bytes]:
    """`lines` of `path`, redacted as one block (a secret may span lines), each labelled."""
    text = redactor.redact(
        b"".join(line if line.endswith(b"\n") else line + b"\n" for line in lines)
    )
    prefix = f"{logfiles.label(path)} | ".encode()
    return [prefix + line for line in text.splitlines(keepends=True)]


async def stream(
    directory: Path,
    service: str | None,
    *,
    tail: int,
    follow: bool,
    alive: Callable[[], bool],
    disconnected: Callable[[], Awaitable[bool]],
    redactor: Callable[[], Redactor],
    until: float,
) -> AsyncIterator[bytes]:
    """The last `tail` lines of each file; with `follow`, new ones until the environment is
    gone, the client went away, or the event loop's clock reaches `until`."""
    loop = asyncio.get_running_loop()
    follower = logfiles.Follower(directory)
    for path in log_files(directory, service):
        lines, follower.offsets[path] = tail_lines(path, tail)
        for line in _labelled(path, lines, redactor()):
            yield line
    while follow and loop.time() < until and alive() and not await disconnected():
        await asyncio.sleep(POLL)
        found = follower.read(log_files(directory, service))
        if not found:
            continue
        hiding = redactor()
        for path, group in itertools.groupby(found, key=lambda item: item[0]):
            for line in _labelled(path, [line for _, line in group], hiding):
                yield line
