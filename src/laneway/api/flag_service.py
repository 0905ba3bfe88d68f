"""The flags as the server serves them: the store, client keys, parsed sets, change watchers.

One `FlagService` per app (`get(app)`), made on first use. It keeps each environment's parsed
`FlagSet` keyed by the stored version: a write through the store drops it at once (the
store's listener), so the next evaluation sees the change; a cached set is also checked
against the store's version once a second, which catches a destroyed environment or a write
by another process sharing the store.

For watchers (the flagd sync service): `wait_for_change(environment_id, version)` returns when
the environment's version differs from `version`, or at a timeout; `version(...)` is one
indexed query, so a watcher may also poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from dataclasses import dataclass

from fastapi import FastAPI

from laneway.controllers.context import Context
from laneway.flags import keys
from laneway.flags.definitions import parse_flag_set
from laneway.flags.types import FlagSet
from laneway.store.flags import FlagStore

REVALIDATE_AFTER = 1.0
"""Seconds a cached set is trusted without asking the store for its version."""

# flagd's reference operations log at ERROR (some with a traceback) whenever a rule meets a
# context it cannot use, e.g. `fractional` without a targeting key; the answer already says
# so, and at OFREP rates the log would drown.
logging.getLogger("openfeature.contrib.tools.flagd.core.targeting").setLevel(logging.CRITICAL)


@dataclass
class _Entry:
    version: int
    flag_set: FlagSet
    checked: float


class FlagService:
    def __init__(self, store: FlagStore, secret: bytes) -> None:
        self.store = store
        self._secret = secret
        self._cache: dict[str, _Entry] = {}
        self._waiters: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}
        self._waiters_lock = threading.Lock()
        store.add_listener(self._changed)

    # keys -------------------------------------------------------------------------------

    def client_key(self, environment_id: str) -> str:
        return keys.client_key(self._secret, environment_id)

    def environment_of(self, key: str) -> str | None:
        """The environment id a client key was made for (None: not a valid key). No I/O."""
        return keys.verify_client_key(self._secret, key)

    # flag sets --------------------------------------------------------------------------

    def cached(self, environment_id: str) -> FlagSet | None:
        """The parsed set if it is known to be current; None means `load` must ask the store."""
        entry = self._cache.get(environment_id)
        if entry is None or time.monotonic() - entry.checked > REVALIDATE_AFTER:
            return None
        return entry.flag_set

    def load(self, environment_id: str) -> FlagSet | None:
        """The environment's current parsed set (store I/O); None if it does not exist."""
        entry = self._cache.get(environment_id)
        version = self.store.version(environment_id)
        if version is None:
            self._cache.pop(environment_id, None)
            return None
        if entry is not None and entry.version == version:
            entry.checked = time.monotonic()
            return entry.flag_set
        stored = self.store.flag_set(environment_id)
        flag_set = parse_flag_set(stored.document)
        self._cache[environment_id] = _Entry(stored.version, flag_set, time.monotonic())
        return flag_set

    # changes ----------------------------------------------------------------------------

    def _changed(self, environment_id: str, version: int) -> None:
        self._cache.pop(environment_id, None)
        with self._waiters_lock:
            waiters = list(self._waiters.get(environment_id, ()))
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # its loop has closed
                loop.call_soon_threadsafe(event.set)

    async def wait_for_change(
        self, environment_id: str, version: int, *, timeout: float
    ) -> int | None:
        """The environment's version once it differs from `version` (or at `timeout`, the
        version then); None if the environment no longer exists."""
        event = asyncio.Event()
        waiter = (asyncio.get_running_loop(), event)
        with self._waiters_lock:
            self._waiters.setdefault(environment_id, set()).add(waiter)
        try:
            current = await asyncio.to_thread(self.store.version, environment_id)
            if current == version:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), timeout)
                current = await asyncio.to_thread(self.store.version, environment_id)
            return current
        finally:
            with self._waiters_lock:
                waiting = self._waiters.get(environment_id, set())
                waiting.discard(waiter)
                if not waiting:
                    self._waiters.pop(environment_id, None)


def get(app: FastAPI) -> FlagService:
    """The app's FlagService, handed to `create_app` by the composition root."""
    service: FlagService = app.state.flags
    return service


def api_url(ctx: Context) -> str:
    """The API's base URL, as environments' processes reach it (LANEWAY_FLAGS_URL)."""
    return ctx.settings.api_url
