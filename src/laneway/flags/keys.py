"""Per-environment client keys for flag evaluation (OFREP, flagd sync). Pure.

A key is derived from the instance secret and the environment's id, so it needs no storage:
the control plane recomputes it to check one, and hands it to the environment's processes as
`LANEWAY_FLAGS_KEY`. The environment's id is in the key, so a key can only ever address its
own environment; the MAC makes it unforgeable. A destroyed environment's key stops working
because its id no longer names an environment (ids are never reused).

    lwf_<environment id>_<43 characters: base64url of HMAC-SHA256(secret, label + id)>
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

PREFIX = "lwf_"
_LABEL = b"laneway flags client key v1\0"
"""Domain separation: the instance secret also derives database passwords."""
_KEY = re.compile(r"^lwf_([A-Za-z0-9-]{1,16})_([A-Za-z0-9_-]{43})$")


def client_key(secret: bytes, environment_id: str) -> str:
    """The client key of one environment: it reads that environment's flags and nothing else."""
    if not re.fullmatch(r"[A-Za-z0-9-]{1,16}", environment_id):
        raise ValueError(f"environment id {environment_id!r}: expected 1-16 letters, digits or -")
    return f"{PREFIX}{environment_id}_{_mac(secret, environment_id)}"


def verify_client_key(secret: bytes, key: str) -> str | None:
    """The environment id a key was made for, or None if it is not a valid key."""
    match = _KEY.fullmatch(key.strip())
    if match is None:
        return None
    environment_id, mac = match.groups()
    if not hmac.compare_digest(mac.encode(), _mac(secret, environment_id).encode()):
        return None
    return environment_id


def looks_like_client_key(text: str) -> bool:
    return text.strip().startswith(PREFIX)


def _mac(secret: bytes, environment_id: str) -> str:
    digest = hmac.new(secret, _LABEL + environment_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")
