"""Hiding secrets in text that users will see (events, messages, API answers). Pure."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit


def redact(text: str, values: Iterable[str]) -> str:
    """`text` with every resource address, and each password in one, replaced by ***: what
    a hook prints reaches events and API answers."""
    secrets = set()
    for value in values:
        secrets.add(value)
        password = urlsplit(value).password if "://" in value else None
        if password:
            secrets.add(password)
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 6:
            text = text.replace(secret, "***")
    return text
