"""Feature flags, read through OpenFeature from laneway's OFREP endpoint.

laneway gives every process LANEWAY_FLAGS_URL (its API) and LANEWAY_FLAGS_KEY (the
environment's client key). Without them (`laneway up`, or running the app by hand), or
without the OpenFeature packages, every flag answers its default, as OpenFeature does when its
provider cannot answer.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from shop import log

DOMAIN = "shop"
TIMEOUT = 0.5  # seconds: a page never waits long on its flags

_lock = threading.Lock()
_client: Any = None
_ready = False


def client() -> Any:
    """The OpenFeature client, or None when flags are not served to this process."""
    global _client, _ready
    with _lock:
        if _ready:
            return _client
        _ready = True
        url = os.environ.get("LANEWAY_FLAGS_URL", "").strip()
        key = os.environ.get("LANEWAY_FLAGS_KEY", "").strip()
        if not url or not key:
            log("flags", "LANEWAY_FLAGS_URL or LANEWAY_FLAGS_KEY not set: flags use their defaults")
            return None
        try:
            from openfeature import api
            from openfeature.contrib.provider.ofrep import OFREPProvider
        except ImportError:
            log("flags", "openfeature-sdk is not installed: flags use their defaults")
            return None
        headers = {"Authorization": f"Bearer {key}"}
        provider = OFREPProvider(url, headers_factory=lambda: headers, timeout=TIMEOUT)
        api.set_provider(provider, DOMAIN)
        _client = api.get_client(DOMAIN)
        log("flags", f"reading flags from {url} (OFREP)")
        return _client


def enabled(flag: str, user: str, default: bool = False) -> bool:
    """A boolean flag for this user (the targeting key, so rollouts stick to users)."""
    flags = client()
    if flags is None:
        return default
    from openfeature.evaluation_context import EvaluationContext

    return bool(flags.get_boolean_value(flag, default, EvaluationContext(targeting_key=user)))
