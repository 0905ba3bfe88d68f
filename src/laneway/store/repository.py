"""The store: desired and observed state of apps, builds, environments, leases, events;
principals and tokens in `access.py`.

Callers get frozen records from `laneway.core.types`, never ORM objects. Every write is one
short transaction, so a crash leaves either the old or the new row, never half of a change.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import asdict
from datetime import datetime

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from laneway.core import rollouts
from laneway.core.types import (
    App,
    BuildRecord,
    Desired,
    Environment,
    Event,
    EventType,
    Kind,
    Phase,
    PortLease,
    ReleaseState,
    ReplicaStatus,
    ResourceRecord,
    ResourceType,
)
from laneway.errors import Conflict, NotFound, Unavailable
from laneway.store import db, retrying
from laneway.store.access import AccessStore
from laneway.store.approvals import ApprovalStore
from laneway.store.grants import GrantStore
from laneway.store.models import (
    AppRow,
    BuildRow,
    EnvironmentRow,
    EventRow,
    FlagSetRow,
    PortLeaseRow,
    ReleaseRow,
    ResourceRow,
    VerdictRow,
)
from laneway.store.records import (
    aware,
    build_record,
    environment_record,
    utcnow,
)
from laneway.store.releases import ReleaseStore
from laneway.store.resealing import Resealing
from laneway.store.vault import Vault
from laneway.store.verdicts import VerdictStore

TRAFFIC = ("rollout_json", "rollout_version", "id")
"""Written only through the rollout's own functions (store/releases.py)."""
CHECK_THEN_INSERT_ATTEMPTS = 10  # each lost race is another caller's win: 10 racers at once


class Store(AccessStore, GrantStore, ReleaseStore, VerdictStore, Resealing, ApprovalStore):
    def __init__(self, engine: Engine, *, vault: Vault | None = None) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._vault = vault

    @classmethod
    def open(cls, url: str, *, vault: Vault | None = None) -> Store:
        """The store at `url`, migrated. `vault` seals and opens resources' details (their
        passwords); a store opened without one reads everything else."""
        engine = db.create_store_engine(url)
        db.migrate(engine, vault=vault)
        return cls(engine, vault=vault)

    @property
    def vault(self) -> Vault | None:
        """What seals and opens its values (shared with the controllers: a rotation swaps
        its keys in one place)."""
        return self._vault

    def _sealing(self) -> Vault:
        if self._vault is None:
            raise Unavailable("resource details need the instance secret: open the store with it")
        return self._vault

    def close(self) -> None:
        self.engine.dispose()

    def _session(self) -> AbstractContextManager[Session]:
        return retrying.transaction(self._sessions)

    # apps -------------------------------------------------------------------------------

    def ensure_app(self, name: str, repo: str) -> App:
        return retrying.run(
            lambda: self._ensure_app(name, repo), attempts=CHECK_THEN_INSERT_ATTEMPTS
        )

    def _ensure_app(self, name: str, repo: str) -> App:
        with self._session() as s:
            row = s.get(AppRow, name)
            if row is None:
                row = AppRow(name=name, repo=repo, created_at=utcnow())
                s.add(row)
            elif row.repo != repo:
                row.repo = repo
            return App(row.name, row.repo, aware(row.created_at))

    def get_app(self, name: str) -> App:
        with self._session() as s:
            row = s.get(AppRow, name)
            if row is None:
                raise NotFound(f"no app named {name!r}")
            return App(row.name, row.repo, aware(row.created_at))

    def list_apps(self) -> list[App]:
        with self._session() as s:
            rows = s.scalars(select(AppRow).order_by(AppRow.name))
            return [App(r.name, r.repo, aware(r.created_at)) for r in rows]

    # builds -----------------------------------------------------------------------------

    def record_build(self, build: BuildRecord) -> BuildRecord:
        """Record a build once; one recorded meanwhile by another caller is the same build."""
        return retrying.run(lambda: self._record_build(build), attempts=CHECK_THEN_INSERT_ATTEMPTS)

    def _record_build(self, build: BuildRecord) -> BuildRecord:
        with self._session() as s:
            if s.get(BuildRow, build.id) is None:
                s.add(BuildRow(**asdict(build)))
        return build

    def get_build(self, build_id: str) -> BuildRecord:
        with self._session() as s:
            row = s.get(BuildRow, build_id)
            if row is None:
                raise NotFound(f"no build {build_id!r}")
            return build_record(row)

    def find_builds(self, prefix: str) -> list[BuildRecord]:
        with self._session() as s:
            like = prefix if prefix.startswith("sha256:") else f"sha256:{prefix}"
            rows = s.scalars(select(BuildRow).where(BuildRow.id.startswith(like)))
            return [build_record(r) for r in rows]

    def list_builds(self, app: str | None = None) -> list[BuildRecord]:
        with self._session() as s:
            query = select(BuildRow).order_by(BuildRow.created_at.desc())
            if app:
                query = query.where(BuildRow.app == app)
            return [build_record(r) for r in s.scalars(query)]

    # environments -----------------------------------------------------------------------

    def create_environment(
        self,
        *,
        app: str,
        name: str,
        kind: Kind,
        branch: str | None,
        ref: str | None,
        build_id: str | None,
        commit: str | None = None,
        created_by: str = "",
        hotfix_reason: str | None = None,
        config_sealed: str = "",
    ) -> Environment:
        """The environment and its release v1 (with `config_sealed`), in one transaction."""
        now = utcnow()
        with self._session() as s:
            existing = s.scalar(
                select(EnvironmentRow).where(EnvironmentRow.app == app, EnvironmentRow.name == name)
            )
            if existing is not None:
                if existing.desired == Desired.DELETED:
                    raise Conflict(
                        f"environment {name!r} of app {app!r} is still being destroyed",
                        hint="wait for `laneway env destroy` to finish, then create it again",
                    )
                raise Conflict(f"environment {name!r} of app {app!r} exists already")
            row = EnvironmentRow(
                id=secrets.token_hex(4),
                app=app,
                name=name,
                kind=str(kind),
                branch=branch,
                ref=ref,
                build_id=build_id,
                commit=None,
                desired=Desired.RUNNING,
                phase=Phase.PENDING,
                message="waiting for the controller",
                hook_release=0,
                failure=None,
                replicas_json="[]",
                created_at=now,
                updated_at=now,
                rollout_json=json.dumps(rollouts.to_json(rollouts.first(1)), sort_keys=True),
                rollout_version=1,
            )
            row.commit = commit
            s.add(row)
            try:
                s.flush()
            except IntegrityError:
                raise Conflict(f"environment {name!r} of app {app!r} exists already") from None
            s.add(
                ReleaseRow(
                    environment_id=row.id,
                    number=1,
                    build_id=build_id,
                    commit=commit,
                    config_version=0,
                    state=ReleaseState.PENDING,
                    message="",
                    created_by=created_by,
                    created_at=now,
                    updated_at=now,
                    description=f"create from {branch or ref or build_id}",
                    generation=1,
                    hotfix_reason=hotfix_reason,
                    config_sealed=config_sealed,
                )
            )
            return environment_record(row)

    def get_environment(self, app: str, name: str) -> Environment:
        with self._session() as s:
            row = s.scalar(
                select(EnvironmentRow).where(EnvironmentRow.app == app, EnvironmentRow.name == name)
            )
            if row is None:
                raise NotFound(f"no environment {name!r} in app {app!r}")
            return environment_record(row)

    def get_environment_by_id(self, environment_id: str) -> Environment | None:
        with self._session() as s:
            row = s.get(EnvironmentRow, environment_id)
            return None if row is None else environment_record(row)

    def list_environments(self, app: str | None = None) -> list[Environment]:
        with self._session() as s:
            query = select(EnvironmentRow).order_by(EnvironmentRow.app, EnvironmentRow.name)
            if app:
                query = query.where(EnvironmentRow.app == app)
            return [environment_record(r) for r in s.scalars(query)]

    def update_environment(
        self,
        environment_id: str,
        *,
        replicas: tuple[ReplicaStatus, ...] | None = None,
        **changes: object,
    ) -> Environment:
        """Write controller-owned fields (phase, message, build_id, commit, replicas, ...)."""
        with self._session() as s:
            row = s.get(EnvironmentRow, environment_id)
            if row is None:
                raise NotFound(f"no environment with id {environment_id!r}")
            if replicas is not None:
                row.replicas_json = json.dumps([asdict(r) for r in replicas])
            for key, value in changes.items():
                if key in TRAFFIC or not hasattr(EnvironmentRow, key):
                    raise TypeError(f"update_environment cannot write {key!r}")
                if key in ("phase", "desired", "kind"):
                    setattr(row, key, str(value))
                else:
                    setattr(row, key, value)
            row.updated_at = utcnow()
            return environment_record(row)

    def delete_environment_record(self, environment_id: str) -> None:
        with self._session() as s:
            s.execute(delete(EnvironmentRow).where(EnvironmentRow.id == environment_id))
            s.execute(delete(PortLeaseRow).where(PortLeaseRow.environment_id == environment_id))
            s.execute(delete(ResourceRow).where(ResourceRow.environment_id == environment_id))
            s.execute(delete(ReleaseRow).where(ReleaseRow.environment_id == environment_id))
            s.execute(delete(FlagSetRow).where(FlagSetRow.environment_id == environment_id))
            s.execute(delete(VerdictRow).where(VerdictRow.environment_id == environment_id))

    # port leases ------------------------------------------------------------------------

    def leases(self, environment_id: str | None = None) -> list[PortLease]:
        with self._session() as s:
            query = select(PortLeaseRow).order_by(PortLeaseRow.port)
            if environment_id:
                query = query.where(PortLeaseRow.environment_id == environment_id)
            return [
                PortLease(r.port, r.environment_id, r.service, r.index, r.generation)
                for r in s.scalars(query)
            ]

    def lease_port(
        self,
        environment_id: str,
        service: str,
        index: int,
        candidates: Iterator[int],
        *,
        generation: int = 0,
    ) -> PortLease:
        """Lease the first candidate no one holds; the same (env, generation, service, index)
        keeps its port."""
        # a retry goes on with the same candidates: the one it lost was taken by the winner
        return retrying.run(
            lambda: self._lease_port(environment_id, service, index, candidates, generation),
            attempts=CHECK_THEN_INSERT_ATTEMPTS,
        )

    def _lease_port(
        self,
        environment_id: str,
        service: str,
        index: int,
        candidates: Iterator[int],
        generation: int,
    ) -> PortLease:
        with self._session() as s:
            mine = s.scalar(
                select(PortLeaseRow).where(
                    PortLeaseRow.environment_id == environment_id,
                    PortLeaseRow.service == service,
                    PortLeaseRow.index == index,
                    PortLeaseRow.generation == generation,
                )
            )
            if mine is not None:
                return PortLease(mine.port, environment_id, service, index, generation)
            taken = set(s.scalars(select(PortLeaseRow.port)))
            for port in candidates:
                if port not in taken:
                    s.add(
                        PortLeaseRow(
                            port=port,
                            environment_id=environment_id,
                            service=service,
                            index=index,
                            generation=generation,
                        )
                    )
                    return PortLease(port, environment_id, service, index, generation)
        raise Unavailable("no free port left in LANEWAY_PORTS")

    def release_port(self, port: int) -> None:
        with self._session() as s:
            s.execute(delete(PortLeaseRow).where(PortLeaseRow.port == port))

    def release_ports(self, environment_id: str) -> None:
        with self._session() as s:
            s.execute(delete(PortLeaseRow).where(PortLeaseRow.environment_id == environment_id))

    # resources --------------------------------------------------------------------------

    def resources(self, environment_id: str) -> list[ResourceRecord]:
        with self._session() as s:
            rows = s.scalars(
                select(ResourceRow).where(ResourceRow.environment_id == environment_id)
            )
            return [
                ResourceRecord(
                    r.environment_id,
                    r.name,
                    ResourceType(r.type),
                    self._sealing().open_details(r.details_json),
                )
                for r in rows
            ]

    def put_resource(self, record: ResourceRecord) -> None:
        sealed = self._sealing().seal_details(record.details)
        with self._session() as s:
            row = s.get(ResourceRow, (record.environment_id, record.name))
            if row is None:
                s.add(
                    ResourceRow(
                        environment_id=record.environment_id,
                        name=record.name,
                        type=record.type,
                        details_json=sealed,
                    )
                )
            else:
                row.type = record.type
                row.details_json = sealed

    def remove_resource(self, environment_id: str, name: str) -> None:
        with self._session() as s:
            s.execute(
                delete(ResourceRow).where(
                    ResourceRow.environment_id == environment_id, ResourceRow.name == name
                )
            )

    # events -----------------------------------------------------------------------------

    def add_event(self, environment_id: str, type_: EventType, message: str) -> None:
        with self._session() as s:
            s.add(
                EventRow(environment_id=environment_id, time=utcnow(), type=type_, message=message)
            )

    def prune_events(self, keep: set[str], *, before: datetime) -> int:
        """Delete events of environments not in `keep` that are older than `before`."""
        with self._session() as s:
            result = s.execute(
                delete(EventRow).where(EventRow.environment_id.not_in(keep), EventRow.time < before)
            )
            return db.rowcount(result)

    def latest_event_id(self, environment_id: str) -> int:
        with self._session() as s:
            return int(
                s.scalar(
                    select(func.max(EventRow.id)).where(EventRow.environment_id == environment_id)
                )
                or 0
            )

    def events(self, environment_id: str, *, after: int = 0, limit: int = 500) -> list[Event]:
        with self._session() as s:
            rows = s.scalars(
                select(EventRow)
                .where(EventRow.environment_id == environment_id, EventRow.id > after)
                .order_by(EventRow.id)
                .limit(limit)
            )
            return [
                Event(r.id, r.environment_id, aware(r.time), EventType(r.type), r.message)
                for r in rows
            ]
