"""Re-sealing every sealed value with the vault's newest key: what `laneway secrets rotate`
does after it put a new key in front of the seal keyring (`store/keyring.py`).

Sealed values are each release's config (`releases.config_sealed`) and each resource's
details (`resources.details_json`). Each is re-sealed alone, compared and set against the
text it was read as, in batches; values written meanwhile are sealed with the new key
already (the vault swapped its ring first). Then the old keys are dropped, once a pass
finds no value that still needs them. Safe to interrupt: the ring still holds every key a
stored value needs, and running the rotation again finishes it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from laneway.errors import Unavailable
from laneway.store import db, keyring
from laneway.store.models import ReleaseRow, ResourceRow
from laneway.store.vault import SEALED, Vault

BATCH = 200
PASSES = 3
"""Passes before giving up on values that another writer keeps sealing with an old key."""

_rotating = threading.Lock()


@dataclass(frozen=True)
class Rotation:
    """What a rotation did, for the CLI to say."""

    configs: int
    """Release configs sealed again with the new key."""
    resources: int
    """Resources' details sealed again."""
    dropped: int
    """Old keys taken out of the keyring."""


class Resealing:
    """Mixed into `Store`, which provides `_session`."""

    _session: Callable[[], AbstractContextManager[Session]]

    def reseal(self, vault: Vault) -> tuple[int, int]:
        """Seal every value not sealed with the vault's newest key again; how many release
        configs and resource details were."""
        configs = resources = 0
        for (environment_id, number), token in self._configs():
            if not vault.sealed_with_newest(token):
                configs += self._set_config(environment_id, number, token, vault.reseal(token))
        for (environment_id, name), stored in self._resources():
            details = _token(stored)
            if details is not None and not vault.sealed_with_newest(details):
                sealed = json.dumps({SEALED: vault.reseal(details)})
                resources += self._set_details(environment_id, name, stored, sealed)
        return configs, resources

    def unsealed_by_newest(self, vault: Vault) -> int:
        """Stored values the newest key does not open."""
        tokens = [token for _, token in self._configs()]
        tokens += [t for _, stored in self._resources() if (t := _token(stored)) is not None]
        return sum(1 for token in tokens if not vault.sealed_with_newest(token))

    def _configs(self) -> Iterator[tuple[tuple[str, int], str]]:
        after = ("", -1)
        while True:
            with self._session() as s:
                rows = s.execute(
                    select(ReleaseRow.environment_id, ReleaseRow.number, ReleaseRow.config_sealed)
                    .where(ReleaseRow.config_sealed != "")
                    .where(
                        (ReleaseRow.environment_id > after[0])
                        | ((ReleaseRow.environment_id == after[0]) & (ReleaseRow.number > after[1]))
                    )
                    .order_by(ReleaseRow.environment_id, ReleaseRow.number)
                    .limit(BATCH)
                ).all()
            if not rows:
                return
            for environment_id, number, token in rows:
                yield (environment_id, number), token
            after = (rows[-1][0], rows[-1][1])

    def _resources(self) -> Iterator[tuple[tuple[str, str], str]]:
        after = ("", "")
        while True:
            with self._session() as s:
                rows = s.execute(
                    select(ResourceRow.environment_id, ResourceRow.name, ResourceRow.details_json)
                    .where(
                        (ResourceRow.environment_id > after[0])
                        | ((ResourceRow.environment_id == after[0]) & (ResourceRow.name > after[1]))
                    )
                    .order_by(ResourceRow.environment_id, ResourceRow.name)
                    .limit(BATCH)
                ).all()
            if not rows:
                return
            for environment_id, name, stored in rows:
                yield (environment_id, name), stored
            after = (rows[-1][0], rows[-1][1])

    def _set_config(self, environment_id: str, number: int, old: str, new: str) -> int:
        with self._session() as s:
            done = s.execute(
                update(ReleaseRow)
                .where(ReleaseRow.environment_id == environment_id)
                .where(ReleaseRow.number == number)
                .where(ReleaseRow.config_sealed == old)
                .values(config_sealed=new)
            )
            return db.rowcount(done)

    def _set_details(self, environment_id: str, name: str, old: str, new: str) -> int:
        with self._session() as s:
            done = s.execute(
                update(ResourceRow)
                .where(ResourceRow.environment_id == environment_id)
                .where(ResourceRow.name == name)
                .where(ResourceRow.details_json == old)
                .values(details_json=new)
            )
            return db.rowcount(done)


def _token(stored: str) -> str | None:
    try:
        token = json.loads(stored).get(SEALED)
    except (ValueError, AttributeError):
        return None
    return token if isinstance(token, str) else None


def rotate(state_dir: Path, store: Resealing, vault: Vault) -> Rotation:
    """Put a new key in front of the ring, re-seal everything with it, drop the rest.
    Blocking (a thread's work); one rotation at a time per process."""
    if not _rotating.acquire(blocking=False):
        raise Unavailable("a rotation is already running")
    try:
        keys = keyring.load(state_dir) or list(vault.keys)
        ring = [keyring.new_key(), *keys]
        keyring.save(state_dir, ring)  # before any value is sealed with the new key
        vault.use(ring)
        configs = resources = 0
        for _ in range(PASSES):
            more_configs, more_resources = store.reseal(vault)
            configs, resources = configs + more_configs, resources + more_resources
            if store.unsealed_by_newest(vault) == 0:
                break
        else:
            raise Unavailable(
                "values are still being sealed with an old key; the new key is in use and "
                "the old ones are kept: run the rotation again"
            )
        keyring.save(state_dir, ring[:1])
        vault.use(ring[:1])
        return Rotation(configs=configs, resources=resources, dropped=len(ring) - 1)
    finally:
        _rotating.release()
