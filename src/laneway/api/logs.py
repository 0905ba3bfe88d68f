"""Reading an environment's log files: the last lines, or those since a time or matching a
pattern, then new ones as they are written.

Each line is labelled with its file (`web.0 | ...`), so one stream multiplexes services.
Every line served goes through the environment's redactor: processes write their files
through a filter that hides secrets already (`runtime/redacting.py`), this is the second
line of defence (a file written before a secret was set, or by another way).

Filtering happens here, on the server, so that a large log is not shipped to be thrown away;
a pattern is matched against each line as it is sent, after redaction, so that a pattern
cannot probe what the reader is not shown.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import regex

from laneway.core.redaction import Redactor
from laneway.errors import InvalidInput
from laneway.runtime import logfiles

POLL = 0.2
MAX_TAIL = 10_000
DEFAULT_TAIL = 100
MAX_SCAN = 16 * 1024 * 1024
"""Bytes read back per file for `since` or `grep` (files rotate at 10 MB)."""
SCAN_BUDGET = 2.0
"""Seconds a pattern may take over the history of one request."""
LINE_BUDGET = 0.1
"""Seconds a pattern may take on one new line while following."""


@dataclass(frozen=True)
class Selection:
    """Which lines a request asks for: the last `tail` of those written at or after `since`
    (epoch seconds) that match `pattern`."""

    tail: int = DEFAULT_TAIL
    since: float | None = None
    pattern: regex.Pattern[str] | None = None

    def matches(self, line: bytes, *, deadline: float) -> bool:
        """Whether `line` (as it is sent) is one asked for; TimeoutError past `deadline`."""
        if self.pattern is None:
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        text = line.decode("utf-8", errors="replace").rstrip("\n")
        return self.pattern.search(text, timeout=left) is not None


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


def redacted(lines: list[bytes], redactor: Redactor) -> list[bytes]:
    """`lines` redacted as one block (a secret may span lines), each ending in a newline."""
    text = redactor.redact(
        b"".join(line if line.endswith(b"\n") else line + b"\n" for line in lines)
    )
    return text.splitlines(keepends=True)


def selected_lines(
    path: Path, selection: Selection, redactor: Redactor, *, deadline: float
) -> tuple[list[bytes], int]:
    """The lines of one file that `selection` asks for, redacted, and the offset after them."""
    if selection.since is None and selection.pattern is None:
        lines, size = tail_lines(path, selection.tail)
        return redacted(lines, redactor), size
    start = 0 if selection.since is None else logfiles.start_offset(path, selection.since)
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        start = max(start, size - MAX_SCAN)
        f.seek(max(start - 1, 0))
        if start > 0 and f.read(1) != b"\n":
            f.readline()  # a line begun before `since`: left out
        data = f.read(max(0, size - f.tell()))
    kept: deque[bytes] = deque(maxlen=selection.tail)
    for line in redacted(data.splitlines(keepends=True), redactor):
        if selection.matches(line, deadline=deadline):
            kept.append(line)
    return list(kept), size


def history(
    files: list[Path], selection: Selection, redactor: Redactor
) -> tuple[list[tuple[Path, bytes]], dict[Path, int]]:
    """Each file's selected lines, and where following it goes on; run in a thread."""
    deadline = time.monotonic() + SCAN_BUDGET
    found: list[tuple[Path, bytes]] = []
    offsets: dict[Path, int] = {}
    try:
        for path in files:
            try:
                lines, offsets[path] = selected_lines(path, selection, redactor, deadline=deadline)
            except FileNotFoundError:
                continue
            found += [(path, line) for line in lines]
    except TimeoutError:
        raise InvalidInput(
            f"grep: the pattern took more than {SCAN_BUDGET:g}s over the logs",
            hint="make it simpler, or narrow the lines with --since or a service",
        ) from None
    return found, offsets


def labelled(path: Path, line: bytes) -> bytes:
    return f"{logfiles.label(path)} | ".encode() + (line if line.endswith(b"\n") else line + b"\n")


async def read(
    directory: Path, service: str | None, selection: Selection, redactor: Redactor
) -> tuple[list[bytes], dict[Path, int]]:
    """The history a request asks for, read off the event loop; raises before any answer is
    sent, so that a bad request gets a problem, not a broken stream."""
    found, offsets = await asyncio.to_thread(
        history, log_files(directory, service), selection, redactor
    )
    return [labelled(path, line) for path, line in found], offsets


async def stream(
    directory: Path,
    service: str | None,
    selection: Selection,
    *,
    lines: list[bytes],
    offsets: dict[Path, int],
    follow: bool,
    alive: Callable[[], bool],
    disconnected: Callable[[], Awaitable[bool]],
    redactor: Callable[[], Redactor],
    until: float,
) -> AsyncIterator[bytes]:
    """`lines` (the history `read` found); with `follow`, new ones until the environment is
    gone, the client went away, or the event loop's clock reaches `until`."""
    loop = asyncio.get_running_loop()
    for line in lines:
        yield line
    follower = logfiles.Follower(directory, offsets)
    # the store and the files are read in threads: the event loop serves everyone else
    while (
        follow
        and loop.time() < until
        and await asyncio.to_thread(alive)
        and not await disconnected()
    ):
        await asyncio.sleep(POLL)
        found = await asyncio.to_thread(lambda: follower.read(log_files(directory, service)))
        if not found:
            continue
        hiding = await asyncio.to_thread(redactor)
        for path, group in itertools.groupby(found, key=lambda item: item[0]):
            for line in redacted([line for _, line in group], hiding):
                try:
                    wanted = selection.matches(line, deadline=time.monotonic() + LINE_BUDGET)
                except TimeoutError:
                    yield b"laneway | --grep stopped: the pattern took too long on a line\n"
                    return
                if wanted:
                    yield labelled(path, line)
