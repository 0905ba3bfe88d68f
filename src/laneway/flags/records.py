"""What the store returns about flags: frozen records, no ORM objects. Pure.

`StoredFlagSet` is one environment's flagd document with its version, `FlagChange` one entry
of the append-only history, `AppFlag` a flag defined for a whole app (the definition new
environments start from). Treat the dicts inside as read-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from laneway.flags.types import JsonValue

IMPORT_KEY = "*"
"""The flag key a history entry of a whole-document import is recorded under."""


@dataclass(frozen=True)
class StoredFlagSet:
    """One environment's flag set. `version` rises by one with every change, starting at 1;
    0 means nothing was written for the environment yet (it has its app's flags as created)."""

    environment_id: str
    app: str
    version: int
    document: dict[str, JsonValue]
    digest: str
    updated_by: str
    updated_at: datetime | None


@dataclass(frozen=True)
class FlagChange:
    """Who changed which flag of which environment when, and its definition before and after
    (None where the flag did not exist); for an import, `flag_key` is `*` and before/after are
    whole documents."""

    id: int
    environment_id: str
    app: str
    flag_key: str
    version: int
    actor: str
    time: datetime
    before: JsonValue
    after: JsonValue


@dataclass(frozen=True)
class AppFlag:
    """A flag created for an app: every environment, existing or created later, gets it."""

    app: str
    key: str
    definition: dict[str, JsonValue]
    created_by: str
    created_at: datetime
