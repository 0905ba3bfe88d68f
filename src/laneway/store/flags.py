"""The flags store: each environment's flagd document, the app's flags, the change history.

Model (tables in migration 0003):

- `flag_sets`: one row per environment, its whole flagd document (flags, `$evaluators`,
  metadata) and a version that rises by one with every change. This is what is served.
- `app_flags`: the flags `laneway flags create` made for an app. An environment with no
  `flag_sets` row yet has exactly these (version 0); creating a flag adds it to every
  environment's document at once, so an environment made later starts from the same list.
- `flag_changes`: append-only; who changed which flag of which environment, when, and its
  definition before and after (`*` and whole documents for an import).

Every write is one transaction that validates the new document whole (`parse_flag_set`:
nothing half-valid is stored; a flag a change touches must not draw a warning, and an
import draws them as warnings, or is refused for them when strict), compares and sets the version, and appends the history, so
two concurrent changes both land, one after the other: a write that lost the race is applied
again to what won. Listeners (`add_listener`) learn of each committed change (environment
id, new version), so the API can drop its parsed copy and wake whoever watches the set.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from laneway.errors import Conflict, NotFound
from laneway.flags import editing
from laneway.flags.definitions import FlagDefinitionError, parse_flag_set
from laneway.flags.records import IMPORT_KEY, AppFlag, FlagChange, StoredFlagSet
from laneway.flags.types import FlagSet, JsonValue, State
from laneway.store import db, retrying
from laneway.store.models import (
    AppFlagRow,
    AppRow,
    EnvironmentRow,
    FlagChangeRow,
    FlagSetRow,
)
from laneway.store.records import aware, utcnow

log = logging.getLogger("laneway.store.flags")

Change = Callable[[dict[str, JsonValue]], dict[str, JsonValue]]
Listener = Callable[[str, int], None]
ATTEMPTS = 50
R = TypeVar("R")


@dataclass
class _Current:
    environment: EnvironmentRow
    version: int
    document: dict[str, Any]
    stored: bool


def _dumps(value: JsonValue) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class FlagStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._listeners: list[Listener] = []

    @classmethod
    def open(cls, url: str) -> FlagStore:
        """A store of its own (tools, benchmarks); the server shares `Store`'s engine instead."""
        engine = db.create_store_engine(url)
        db.migrate(engine)
        return cls(engine)

    def add_listener(self, listener: Listener) -> None:
        """Called with (environment id, version) after each committed change, in the writer's
        thread; it must be quick and must not raise."""
        self._listeners.append(listener)

    # reads ------------------------------------------------------------------------------

    def flag_set(self, environment_id: str) -> StoredFlagSet:
        with self._session() as s:
            return self._record(s, self._current(s, environment_id, lock=False))

    def version(self, environment_id: str) -> int | None:
        """The environment's flag-set version (0: never written), None if it does not exist."""
        with self._session() as s:
            row = s.execute(
                select(EnvironmentRow.id, FlagSetRow.version)
                .outerjoin(FlagSetRow, FlagSetRow.environment_id == EnvironmentRow.id)
                .where(EnvironmentRow.id == environment_id)
            ).first()
            return None if row is None else int(row[1] or 0)

    def app_flags(self, app: str) -> list[AppFlag]:
        with self._session() as s:
            return [_app_flag(r) for r in self._app_flag_rows(s, app)]

    def history(
        self, environment_id: str, key: str | None = None, *, limit: int = 100
    ) -> list[FlagChange]:
        """Newest first."""
        with self._session() as s:
            query = select(FlagChangeRow).where(FlagChangeRow.environment_id == environment_id)
            if key is not None:
                query = query.where(FlagChangeRow.flag_key.in_([key, IMPORT_KEY]))
            rows = s.scalars(query.order_by(FlagChangeRow.id.desc()).limit(limit))
            return [_change(r) for r in rows]

    # writes -----------------------------------------------------------------------------

    def update(
        self,
        environment_id: str,
        change: Change,
        *,
        actor: str,
        whole: bool = False,
        strict: bool = False,
        expected_version: int | None = None,
    ) -> StoredFlagSet:
        """Apply `change` to the environment's document and store the result, or nothing.

        `whole` records the change as one import (`*`) rather than per flag; its warnings
        (`FlagSet.warnings`) are taken, or refused with `strict`. Any other change is
        refused if a flag it touches draws a warning. With `expected_version`, a document
        changed meanwhile is a Conflict instead of a retry.
        """

        def attempt() -> tuple[StoredFlagSet, list[tuple[str, int]]]:
            with self._session() as s:
                current = self._current(s, environment_id)
                if expected_version is not None and current.version != expected_version:
                    raise Conflict(
                        f"the flags of environment {current.environment.name!r} changed "
                        f"meanwhile (version {current.version}, expected {expected_version})",
                        hint="read them again and repeat the change",
                    )
                new = change(current.document)
                parsed = _validate(new, current.environment.name, strict=whole and strict)
                if not whole:
                    touched = {key for key, _, _ in editing.diff(current.document, new)}
                    _refuse_warnings(parsed, touched, current.environment.name)
                if new == current.document:
                    return self._record(s, current), []
                stored = self._write(s, current, new, parsed.digest, actor, whole=whole)
                return stored, [(environment_id, stored.version)]

        return self._run(attempt)

    def create_flag(
        self,
        app: str,
        key: str,
        definition: Mapping[str, JsonValue],
        *,
        actor: str,
        enabled_in: Collection[str] = (),
    ) -> list[StoredFlagSet]:
        """Define `key` for the app: every environment gets it, in `definition`'s state
        (DISABLED unless it says otherwise), but ENABLED in the environments `enabled_in`."""
        editing.check_flag_key(key)
        flag = {"state": str(State.DISABLED), **definition}
        parse_flag_set(editing.with_flag(editing.empty_document(), key, flag), strict=True)

        def attempt() -> tuple[list[StoredFlagSet], list[tuple[str, int]]]:
            with self._session() as s:
                _lock_app(s, app)
                if s.get(AppFlagRow, (app, key)) is not None:
                    raise Conflict(f"flag {key!r} exists already in app {app!r}")
                environments = list(
                    s.scalars(
                        select(EnvironmentRow)
                        .where(EnvironmentRow.app == app)
                        .order_by(EnvironmentRow.name)
                    )
                )
                missing = set(enabled_in) - {e.id for e in environments}
                if missing:
                    raise NotFound(f"no environment with id {sorted(missing)[0]!r} in app {app!r}")
                results = []
                for environment in environments:
                    current = self._current(s, environment.id, environment=environment)
                    state = State.ENABLED if environment.id in enabled_in else flag["state"]
                    try:
                        new = editing.with_flag(current.document, key, {**flag, "state": state})
                    except Conflict:
                        raise Conflict(
                            f"flag {key!r} exists already in environment {environment.name!r} "
                            "(imported there)",
                            hint="delete it there first, or import the environment's flags",
                        ) from None
                    parsed = _validate(new, environment.name)
                    results.append(self._write(s, current, new, parsed.digest, actor))
                s.add(
                    AppFlagRow(
                        app=app,
                        key=key,
                        definition_json=_dumps(flag),
                        created_by=actor,
                        created_at=utcnow(),
                    )
                )
                s.flush()
                return results, [(r.environment_id, r.version) for r in results]

        return self._run(attempt)

    def delete_flag(self, app: str, key: str, *, actor: str) -> list[StoredFlagSet]:
        """Remove `key` from the app and from every environment that has it."""

        def attempt() -> tuple[list[StoredFlagSet], list[tuple[str, int]]]:
            with self._session() as s:
                _lock_app(s, app)
                defined = s.get(AppFlagRow, (app, key))
                environments = s.scalars(
                    select(EnvironmentRow)
                    .where(EnvironmentRow.app == app)
                    .order_by(EnvironmentRow.name)
                )
                results = []
                for environment in environments:
                    current = self._current(s, environment.id, environment=environment)
                    if key not in (current.document.get("flags") or {}):
                        continue
                    new = editing.without_flag(current.document, key)
                    parsed = _validate(new, environment.name)
                    results.append(self._write(s, current, new, parsed.digest, actor))
                if defined is None and not results:
                    raise NotFound(f"no flag {key!r} in app {app!r}")
                if defined is not None:
                    s.delete(defined)
                return results, [(r.environment_id, r.version) for r in results]

        return self._run(attempt)

    def prune(self) -> int:
        """Drop the flag sets of environments that no longer exist (their history stays)."""
        with self._session() as s:
            gone = select(EnvironmentRow.id)
            result = s.execute(delete(FlagSetRow).where(FlagSetRow.environment_id.not_in(gone)))
            return db.rowcount(result)

    # internals --------------------------------------------------------------------------

    def _session(self) -> AbstractContextManager[Session]:
        return retrying.transaction(self._sessions)

    def _run(self, attempt: Callable[[], tuple[R, list[tuple[str, int]]]]) -> R:
        """A write: `attempt` (its result, and the flag sets it changed) run again whole
        while it loses races, then the listeners told."""
        try:
            result, changed = retrying.run(attempt, attempts=ATTEMPTS)
        except retrying.LostRace:
            raise Conflict("the flags kept changing under this write; try again") from None
        for environment_id, version in changed:
            self._notify(environment_id, version)
        return result

    def _notify(self, environment_id: str, version: int) -> None:
        for listener in self._listeners:
            try:
                listener(environment_id, version)
            except Exception:  # a listener's failure must not fail a committed write
                log.exception("flag change listener failed")

    def _app_flag_rows(self, s: Session, app: str) -> list[AppFlagRow]:
        return list(
            s.scalars(
                select(AppFlagRow)
                .where(AppFlagRow.app == app)
                .order_by(AppFlagRow.created_at, AppFlagRow.key)
            )
        )

    def _current(
        self,
        s: Session,
        environment_id: str,
        *,
        environment: EnvironmentRow | None = None,
        lock: bool = True,
    ) -> _Current:
        environment = environment or s.get(EnvironmentRow, environment_id)
        if environment is None:
            raise NotFound(f"no environment with id {environment_id!r}")
        row = s.get(FlagSetRow, environment_id)
        if row is not None:
            return _Current(environment, row.version, json.loads(row.document_json), True)
        if lock:  # serialised with create_flag: a write never starts from a stale list
            _lock_app(s, environment.app)
        document = editing.empty_document()
        for flag in self._app_flag_rows(s, environment.app):
            document["flags"][flag.key] = json.loads(flag.definition_json)
        return _Current(environment, 0, document, False)

    def _record(self, s: Session, current: _Current) -> StoredFlagSet:
        row = s.get(FlagSetRow, current.environment.id) if current.stored else None
        return StoredFlagSet(
            environment_id=current.environment.id,
            app=current.environment.app,
            version=current.version,
            document=current.document,
            digest=row.digest if row else parse_flag_set(current.document).digest,
            updated_by=row.updated_by if row else "",
            updated_at=aware(row.updated_at) if row else None,
        )

    def _write(
        self,
        s: Session,
        current: _Current,
        new: dict[str, Any],
        digest: str,
        actor: str,
        *,
        whole: bool = False,
    ) -> StoredFlagSet:
        environment = current.environment
        now = utcnow()
        version = current.version + 1
        values = {
            "version": version,
            "document_json": _dumps(new),
            "digest": digest,
            "updated_by": actor,
            "updated_at": now,
        }
        if current.stored:
            result = s.execute(
                update(FlagSetRow)
                .where(
                    FlagSetRow.environment_id == environment.id,
                    FlagSetRow.version == current.version,
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if db.rowcount(result) != 1:
                raise retrying.LostRace("store: the flag set changed meanwhile")
        else:
            s.add(FlagSetRow(environment_id=environment.id, app=environment.app, **values))
            s.flush()
        entries = (
            [(IMPORT_KEY, current.document, new)] if whole else editing.diff(current.document, new)
        )
        for key, before, after in entries:
            s.add(
                FlagChangeRow(
                    environment_id=environment.id,
                    app=environment.app,
                    flag_key=key,
                    version=version,
                    actor=actor,
                    time=now,
                    before_json=None if before is None else _dumps(before),
                    after_json=None if after is None else _dumps(after),
                )
            )
        return StoredFlagSet(
            environment_id=environment.id,
            app=environment.app,
            version=version,
            document=new,
            digest=digest,
            updated_by=actor,
            updated_at=now,
        )


def _lock_app(s: Session, app: str) -> None:
    """Hold the app's row until commit (PostgreSQL; SQLite has one writer at a time anyway)."""
    if s.execute(select(AppRow.name).where(AppRow.name == app).with_for_update()).first() is None:
        raise NotFound(f"no app named {app!r}")


def _validate(document: dict[str, Any], environment: str, *, strict: bool = False) -> FlagSet:
    where = f"in environment {environment!r}"
    try:
        parsed = parse_flag_set(document)
    except FlagDefinitionError as exc:
        raise FlagDefinitionError(exc.problems, hint=where) from None
    if strict and parsed.warnings:
        raise FlagDefinitionError(
            [warning.message for warning in parsed.warnings], hint=f"{where}; {STRICT_HINT}"
        )
    return parsed


STRICT_HINT = (
    "flagd loads such flags and answers them with an error or the default; an import that "
    "is not strict takes them and lists each as a warning"
)


def _refuse_warnings(parsed: FlagSet, keys: Collection[str], environment: str) -> None:
    """A change to a flag must leave it answering as written: what only warns on an import
    (targeting flagd answers with an error or null) is refused here."""
    found = [warning.message for warning in parsed.warnings if warning.key in keys]
    if found:
        raise FlagDefinitionError(found, hint=f"in environment {environment!r}")


def _app_flag(row: AppFlagRow) -> AppFlag:
    return AppFlag(
        app=row.app,
        key=row.key,
        definition=json.loads(row.definition_json),
        created_by=row.created_by,
        created_at=aware(row.created_at),
    )


def _change(row: FlagChangeRow) -> FlagChange:
    return FlagChange(
        id=row.id,
        environment_id=row.environment_id,
        app=row.app,
        flag_key=row.flag_key,
        version=row.version,
        actor=row.actor,
        time=aware(row.time),
        before=None if row.before_json is None else json.loads(row.before_json),
        after=None if row.after_json is None else json.loads(row.after_json),
    )
