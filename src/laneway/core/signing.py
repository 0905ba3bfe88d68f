"""Signatures of laneway's outgoing webhook calls, so a receiver can tell they come from it.

A call carries `X-Laneway-Timestamp` (Unix seconds) and `X-Laneway-Signature:
sha256=<hex>`, the HMAC-SHA256 under the shared secret of `<timestamp>.<body>`: the
timestamp is signed with the body, so a recorded call replayed later fails the receiver's
freshness check (`verify`'s `tolerance`), and a changed body or timestamp fails the digest.
Pure: the caller passes the time.
"""

from __future__ import annotations

import hashlib
import hmac

SCHEME = "sha256="
TOLERANCE = 300.0
"""Seconds a receiver accepts a call's timestamp away from its own clock, by default."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The `X-Laneway-Signature` value of a call."""
    message = str(timestamp).encode() + b"." + body
    return SCHEME + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    now: float,
    tolerance: float = TOLERANCE,
) -> bool:
    """Whether a received call is signed with `secret` and recent: what a receiver checks
    (compared in constant time)."""
    if not timestamp.isdigit() or len(timestamp) > 12:
        return False
    if abs(now - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), body), signature)
