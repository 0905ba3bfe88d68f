"""A filter between a release hook and its log file: `python -m laneway.runtime.redacting`.

The hook's output goes through it, so that values the hook may print (a secret config value,
a database address with its password) never reach the disk. It reads the names of the
variables to hide from LANEWAY_REDACT_KEYS and their values from its own environment, which
it shares with the hook: the values never appear on a command line.
"""

from __future__ import annotations

import os
import sys

from laneway.core.redaction import redact

KEYS = "LANEWAY_REDACT_KEYS"


def main() -> None:
    names = [n for n in os.environ.get(KEYS, "").split(",") if n]
    values = [os.environ[n] for n in names if os.environ.get(n)]
    stdin = sys.stdin.buffer
    stdout = sys.stdout.buffer
    for line in iter(stdin.readline, b""):
        text = line.decode("utf-8", errors="replace")
        stdout.write(redact(text, values).encode())
        stdout.flush()


if __name__ == "__main__":
    main()
