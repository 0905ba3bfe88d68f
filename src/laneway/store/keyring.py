"""The seal keyring: the keys `store.vault` seals with once `laneway secrets rotate` has run,
newest first, in a 0600 JSON file beside the instance secret (`$LANEWAY_HOME/state/
seal-keys`), never in the store.

A rotation writes the ring with a new key in front before re-sealing anything, and drops
the old keys only once no value is sealed with them: a crash at any point leaves a ring
that opens every stored value, and running the rotation again finishes it. Before the
first rotation there is no file, and the vault derives its one key from the instance
secret.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.fernet import Fernet

from laneway.errors import Unavailable

FILE = "seal-keys"
MAX_KEYS = 16
"""Keys a ring may hold: each interrupted rotation adds one until a rotation completes."""


def load(state_dir: Path) -> list[bytes] | None:
    """The ring's keys, newest first; None when no rotation has run."""
    path = state_dir / FILE
    try:
        data = json.loads(path.read_text())
        keys = [str(key).encode() for key in data["keys"]]
        for key in keys:
            Fernet(key)  # a malformed key is said now, not at the first value it should open
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise Unavailable(f"the seal keyring {path} cannot be read: {exc}") from None
    if not keys:
        raise Unavailable(f"the seal keyring {path} holds no key")
    return keys


def save(state_dir: Path, keys: list[bytes]) -> None:
    """Write the ring whole (0600, replaced atomically, flushed to disk before it counts)."""
    if not 1 <= len(keys) <= MAX_KEYS:
        raise Unavailable(
            f"the seal keyring would hold {len(keys)} keys (1 to {MAX_KEYS}): "
            "finish a rotation before starting another"
        )
    path = state_dir / FILE
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"keys": [key.decode() for key in keys]}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    directory = os.open(state_dir, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def new_key() -> bytes:
    return Fernet.generate_key()
