"""The filter between a process laneway starts and its log file, so that the secrets it may
print (a secret config value, a database address or password, in their common encodings:
`core.redaction`) never reach the disk.

Two ways to run it (`command` below builds the line):
- `redacting` alone filters its stdin to its stdout: the release hook's pipe;
- `redacting -- COMMAND` runs `/bin/sh -c COMMAND` with its output through the filter, and
  ends as COMMAND ends (same exit code, or the same signal): a replica. It stays in the
  replica's process group, so it outlives the control plane with it; it ignores SIGTERM and
  reads on until the replica stops writing, so what a replica says while it drains is kept.

The names of the variables to hide come from LANEWAY_REDACT_KEYS, their values from the
filter's own environment, which it shares with the process: no value is on a command line.
"""

from __future__ import annotations

import contextlib
import os
import select
import shlex
import signal
import subprocess
import sys

from laneway.core.redaction import StreamRedactor, redactor

KEYS = "LANEWAY_REDACT_KEYS"
TAIL = "LANEWAY_OUTPUT_TAIL"
"""A file the filter leaves its command's last output in (redacted) when the command ends:
a replica's own tail, apart from the log file the replica before it writes to as well."""
TAIL_BYTES = 8192
_UNTIL_DONE = "trap 'trap - TERM; kill -TERM $$' TERM\n"
"""The shell that runs a command outlives a SIGTERM to the group until the command has ended
(a trapped signal waits for the foreground command), then ends by it, as it would have: its
end is how the filter knows the command's."""
CHUNK = 64 * 1024
_BOOT = "import sys; sys.path.insert(0, sys.argv.pop(1)); from laneway.runtime.redacting import main; main()"


def command(wrapped: str | None = None) -> str:
    """The shell words that run the filter with this very laneway (`python -I` ignores the
    environment and the working directory, which belong to the app); with `wrapped`, as the
    wrapper of that command."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
    words = [sys.executable, "-I", "-c", _BOOT, root]
    if wrapped is not None:
        words += ["--", wrapped]
    return shlex.join(words)


def _stream() -> StreamRedactor:
    names = [n for n in os.environ.get(KEYS, "").split(",") if n]
    return StreamRedactor(redactor(frozenset(os.environ[n] for n in names if os.environ.get(n))))


def _write(data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(1, view) :]


def _pump(fd: int, child: subprocess.Popen[bytes] | None) -> bytes:
    """Copy `fd` to stdout through the filter until it ends or, with a child, until the child
    has ended and nothing more is waiting (a daemon it left may hold the pipe open); the last
    `TAIL_BYTES` written."""
    stream = _stream()
    tail = bytearray()
    while True:
        if child is not None and child.poll() is not None:
            os.set_blocking(fd, False)
        try:
            if child is not None and os.get_blocking(fd):
                ready, _, _ = select.select([fd], [], [], 0.5)
                if not ready:
                    continue
            chunk = os.read(fd, CHUNK)
        except BlockingIOError:
            break
        if not chunk:
            break
        _write(_kept(tail, stream.feed(chunk)))
    _write(_kept(tail, stream.close()))
    return bytes(tail)


def _kept(tail: bytearray, data: bytes) -> bytes:
    tail += data
    del tail[:-TAIL_BYTES]
    return data


def _leave_tail(path: str, tail: bytes) -> None:
    with contextlib.suppress(OSError):
        with open(path + ".tmp", "wb") as f:
            f.write(tail)
        os.replace(path + ".tmp", path)


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: None)  # a handler, not SIG_IGN: the child resets it
    arguments = sys.argv[1:]
    if not arguments:
        _pump(0, None)
        return
    if arguments[0] != "--" or len(arguments) != 2:
        sys.exit("usage: redacting [-- COMMAND]")
    tail_path = os.environ.pop(TAIL, None)
    child = subprocess.Popen(
        ["/bin/sh", "-c", _UNTIL_DONE + arguments[1]],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert child.stdout is not None
    tail = _pump(child.stdout.fileno(), child)
    code = child.wait()
    if tail_path:
        _leave_tail(tail_path, tail)
    if code < 0:  # end by the same signal
        with contextlib.suppress(OSError, ValueError):  # SIGKILL's cannot be set, nor needs to
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)


if __name__ == "__main__":
    main()
