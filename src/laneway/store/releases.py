"""The store's releases: numbered pairings of a build with the config in force, per
environment, and the environment's generation numbers that move with them (target, live,
warm). Every write is one transaction; `create_release` is a compare-and-set.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from laneway.core.types import Desired, Environment, Release, ReleaseState
from laneway.errors import Conflict, NotFound
from laneway.store import db
from laneway.store.models import EnvironmentRow, PortLeaseRow, ReleaseRow
from laneway.store.records import (
    environment_record,
    release_record,
    replica_counts,
    restart_times,
    utcnow,
)


class ReleaseStore:
    """Mixed into `Store`, which provides `_session`."""

    _session: Callable[[], AbstractContextManager[Session]]

    def get_release(self, environment_id: str, number: int) -> Release:
        with self._session() as s:
            row = s.get(ReleaseRow, (environment_id, number))
            if row is None:
                raise NotFound(f"no release v{number}")
            return release_record(row)

    def sealed_config(self, environment_id: str, number: int) -> str:
        with self._session() as s:
            row = s.get(ReleaseRow, (environment_id, number))
            return "" if row is None else row.config_sealed

    def sealed_configs(self, environment_id: str) -> list[str]:
        """The sealed config of every release of the environment, distinct ones once."""
        with self._session() as s:
            return list(
                s.scalars(
                    select(ReleaseRow.config_sealed)
                    .where(ReleaseRow.environment_id == environment_id)
                    .distinct()
                )
            )

    def create_release(
        self,
        environment_id: str,
        *,
        expect_release: int,
        build_id: str | None,
        commit: str | None,
        ref: str | None,
        config_version: int,
        config_sealed: str,
        description: str,
        created_by: str,
        hotfix_reason: str | None = None,
        generation: int | None = None,
        replicas: dict[str, int] | None = None,
        skip_hook: bool = False,
        restarts: dict[str, float] | None = None,
    ) -> tuple[Environment, Release]:
        """The next release, made the environment's target in the same transaction.

        Compare-and-set: if the environment's release is no longer `expect_release` (another
        deploy got there first), nothing is written and Conflict is raised. `generation` names
        warm processes to reuse (a rollback) or the live ones (a scale); by default the
        release starts its own. `replicas` are its scale counts (by default the current
        release's); `skip_hook` records its release hook as done (a restart: same build and
        config as the live release, whose hook ran); `restarts`: services whose replicas
        started before the given time are to be replaced (`laneway restart ENV SERVICE`).
        """
        now = utcnow()
        with self._session() as s:
            # the claim comes first and is one conditional UPDATE: it takes the write lock
            # (SQLite) or the row lock (PostgreSQL) before anything is read, so of two
            # concurrent calls with the same expectation exactly one matches a row
            claimed = s.execute(
                update(EnvironmentRow)
                .where(
                    EnvironmentRow.id == environment_id,
                    EnvironmentRow.release == expect_release,
                    EnvironmentRow.desired == str(Desired.RUNNING),
                )
                .values(updated_at=now)
            )
            env = s.get(EnvironmentRow, environment_id)
            if env is None:
                raise NotFound(f"no environment with id {environment_id!r}")
            if env.desired != str(Desired.RUNNING):
                raise Conflict(f"environment {env.name!r} is being destroyed")
            if db.rowcount(claimed) != 1:
                raise Conflict(
                    f"environment {env.name!r} moved on to v{env.release} meanwhile; "
                    "look at `laneway releases` and try again"
                )
            newest = s.scalar(
                select(func.max(ReleaseRow.number)).where(
                    ReleaseRow.environment_id == environment_id
                )
            )
            number = int(newest or 0) + 1  # failed releases keep their numbers
            current = s.get(ReleaseRow, (environment_id, env.release))
            if replicas is None:
                replicas = replica_counts(current.replicas_json if current else None)
            row = ReleaseRow(
                environment_id=environment_id,
                number=number,
                build_id=build_id,
                commit=commit,
                config_version=config_version,
                state=ReleaseState.PENDING,
                message="",
                created_by=created_by,
                created_at=now,
                updated_at=now,
                description=description,
                generation=generation or number,
                hotfix_reason=hotfix_reason,
                config_sealed=config_sealed,
                replicas_json=json.dumps(replicas, sort_keys=True),
                restarts_json=json.dumps(restarts or {}, sort_keys=True),
            )
            if env.live == 0 and current is not None and current.state == ReleaseState.PENDING:
                # a first release that never went live (it crashed, say) gives way
                current.state = str(ReleaseState.FAILED)
                current.message = f"replaced by v{number} before it went live"
                current.updated_at = now
            s.add(row)
            env.release = number
            env.target = generation or number
            env.build_id = build_id
            env.commit = commit
            env.ref = ref
            env.failure = None
            env.updated_at = now
            if skip_hook:
                env.hook_release = number
            s.flush()
            return environment_record(env), release_record(row)

    def switch_release(self, environment_id: str, generation: int, warm_until: float) -> None:
        """Traffic goes to `generation`; the one that served is kept warm until `warm_until`.
        The release is called live by `mark_live`, once the router serves it."""
        with self._session() as s:
            env = s.get(EnvironmentRow, environment_id, with_for_update=True)
            if env is None:
                return
            if env.live != generation:
                env.warm = env.live
                env.warm_until = warm_until
                env.live = generation
            env.updated_at = utcnow()

    def mark_live(self, environment_id: str) -> None:
        """The environment's release is live, the one live before it superseded. Idempotent."""
        with self._session() as s:
            env = s.get(EnvironmentRow, environment_id)
            if env is None or env.live != (env.target or env.release):
                return
            now = utcnow()
            for row in s.scalars(
                select(ReleaseRow).where(
                    ReleaseRow.environment_id == environment_id,
                    ReleaseRow.state == str(ReleaseState.LIVE),
                )
            ):
                if row.number != env.release:
                    row.state = str(ReleaseState.SUPERSEDED)
                    row.updated_at = now
            current = s.get(ReleaseRow, (environment_id, env.release))
            if current is not None and current.state != str(ReleaseState.LIVE):
                current.state = str(ReleaseState.LIVE)
                current.updated_at = now

    def abort_deploy(self, environment_id: str, reason: str) -> Release | None:
        """The target release failed before traffic moved: it is marked failed and the
        environment goes back to the live release. Returns the live release (None if none)."""
        with self._session() as s:
            env = s.get(EnvironmentRow, environment_id, with_for_update=True)
            if env is None:
                return None
            now = utcnow()
            failed = s.get(ReleaseRow, (environment_id, env.release))
            if failed is not None:
                failed.state = str(ReleaseState.FAILED)
                failed.message = reason
                failed.updated_at = now
            live = s.scalar(
                select(ReleaseRow)
                .where(
                    ReleaseRow.environment_id == environment_id,
                    ReleaseRow.state == str(ReleaseState.LIVE),
                )
                .order_by(ReleaseRow.number.desc())
            )
            if live is None:
                return None
            env.release = live.number
            env.target = live.generation or live.number
            env.build_id = live.build_id
            env.commit = live.commit
            env.hook_release = max(env.hook_release, live.number)
            env.updated_at = now
            return release_record(live)

    def generation_replicas(
        self, environment_id: str, generation: int
    ) -> tuple[dict[str, int], dict[str, float]]:
        """The scale counts and service restarts of the newest release (not failed) that
        `generation`'s processes serve: a scale, a restart of one service or a rollback to
        warm processes changes them without a new generation."""
        with self._session() as s:
            row = s.execute(
                select(ReleaseRow.replicas_json, ReleaseRow.restarts_json)
                .where(
                    ReleaseRow.environment_id == environment_id,
                    ReleaseRow.generation == generation,
                    ReleaseRow.state != str(ReleaseState.FAILED),
                )
                .order_by(ReleaseRow.number.desc())
                .limit(1)
            ).first()
            if row is None:
                return {}, {}
            return replica_counts(row[0]), restart_times(row[1])

    def retire_generation(self, environment_id: str, generation: int) -> None:
        with self._session() as s:
            s.execute(
                delete(PortLeaseRow).where(
                    PortLeaseRow.environment_id == environment_id,
                    PortLeaseRow.generation == generation,
                )
            )
            env = s.get(EnvironmentRow, environment_id)
            if env is not None and env.warm == generation:
                env.warm = 0
                env.warm_until = 0.0

    def releases(self, environment_id: str) -> list[Release]:
        with self._session() as s:
            rows = s.scalars(
                select(ReleaseRow)
                .where(ReleaseRow.environment_id == environment_id)
                .order_by(ReleaseRow.number.desc())
            )
            return [release_record(r) for r in rows]

    def update_release(self, environment_id: str, number: int, **changes: object) -> None:
        with self._session() as s:
            row = s.get(ReleaseRow, (environment_id, number))
            if row is None:
                return
            for key, value in changes.items():
                setattr(row, key, str(value) if key == "state" else value)
            row.updated_at = utcnow()
