"""The store's releases: numbered pairings of a build with the config in force, per
environment, and the environment's rollout status (core/rollouts.py) that moves them. Every
write is one transaction: an intent (`create_release`, `change_rollout`) is applied to the
status as it is under the row's lock; the reconciler's step (`save_rollout`) is a
compare-and-set on the status's version.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import replace

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from laneway.core import rollouts
from laneway.core.types import Desired, Environment, Release, ReleaseState
from laneway.errors import Conflict, NotFound
from laneway.store import db
from laneway.store.models import EnvironmentRow, FlagSetRow, PortLeaseRow, ReleaseRow
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
        strategy: rollouts.Strategy | None = None,
    ) -> tuple[Environment, Release]:
        """The next release, and its rollout started (`rollouts.start`), in one transaction.

        If the environment's release is no longer `expect_release` (another deploy got
        there first), nothing is written and Conflict is raised; so is a rollout under way.
        `generation` names warm processes to reuse (a rollback) or the live ones (a scale);
        by default the release starts its own. `replicas` are its scale counts (by default
        the current release's); `skip_hook` records its release hook as done (a restart:
        same build and config as the live release, whose hook ran); `restarts`: services
        whose replicas started before the given time are to be replaced. `strategy`: how it
        rolls out (by default one step of 100%: a deploy).
        """
        now = utcnow()
        with self._session() as s:
            env = self._claim(s, environment_id)
            status = rollouts.from_json(json.loads(env.rollout_json or "{}"))
            wanted = status.wanted
            if (wanted.release if wanted else 0) != expect_release:
                raise Conflict(
                    f"environment {env.name!r} moved on to v{wanted.release if wanted else 0} "
                    "meanwhile; look at `laneway releases` and try again"
                )
            newest = s.scalar(
                select(func.max(ReleaseRow.number)).where(
                    ReleaseRow.environment_id == environment_id
                )
            )
            number = int(newest or 0) + 1  # failed releases keep their numbers
            current = s.get(ReleaseRow, (environment_id, expect_release))
            if replicas is None:
                replicas = replica_counts(current.replicas_json if current else None)
            if status.stable is None and status.canary is not None:
                # a first release that never went live (it crashed, say) gives way
                if current is not None and current.state == ReleaseState.PENDING:
                    current.state = str(ReleaseState.FAILED)
                    current.message = f"replaced by v{number} before it went live"
                    current.updated_at = now
                status = replace(status, canary=None)
            if rollouts.same_processes(status):
                # a scale or restart not yet seen through: its processes are the stable ones
                assert status.canary is not None
                settled = s.get(ReleaseRow, (environment_id, status.canary.release))
                if settled is not None and settled.state == ReleaseState.PENDING:
                    settled.state = str(ReleaseState.SUPERSEDED)
                    settled.updated_at = now
                status = replace(status, stable=status.canary, canary=None)
            side = rollouts.Side(number, generation or number)
            status = rollouts.start(status, side, strategy or rollouts.Strategy())
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
            s.add(row)
            _write_status(env, status)
            env.build_id = build_id
            env.commit = commit
            env.ref = ref
            env.failure = None
            env.updated_at = now
            if skip_hook:
                env.hook_release = number
            s.flush()
            return environment_record(env), release_record(row)

    def _claim(self, s: Session, environment_id: str) -> EnvironmentRow:
        """The environment's row, locked for this transaction: one conditional UPDATE
        first takes SQLite's write lock or PostgreSQL's row lock before anything is read,
        so of two concurrent writers one reads what the other wrote."""
        claimed = s.execute(
            update(EnvironmentRow)
            .where(
                EnvironmentRow.id == environment_id,
                EnvironmentRow.desired == str(Desired.RUNNING),
            )
            .values(updated_at=utcnow())
        )
        env = s.get(EnvironmentRow, environment_id)
        if env is None:
            raise NotFound(f"no environment with id {environment_id!r}")
        if db.rowcount(claimed) != 1:
            raise Conflict(f"environment {env.name!r} is being destroyed")
        return env

    def change_rollout(
        self,
        environment_id: str,
        change: Callable[[rollouts.RolloutStatus], rollouts.RolloutStatus],
    ) -> Environment:
        """Record an intent (pause, resume, promote, abort): `change` applied to the status
        as it is now, in one transaction; what it raises (Conflict) leaves it as it was."""
        with self._session() as s:
            env = self._claim(s, environment_id)
            status = rollouts.from_json(json.loads(env.rollout_json or "{}"))
            changed = change(status)
            if changed != status:
                _write_status(env, changed)
            return environment_record(env)

    def save_rollout(
        self,
        environment_id: str,
        *,
        expected_version: int,
        status: rollouts.RolloutStatus,
        effects: tuple[rollouts.Effect, ...] = (),
    ) -> Environment | None:
        """The reconciler's step: `status` written, and the releases' states that its
        effects change (promoted: live, the one before superseded; aborted: failed), in
        one transaction. Compare-and-set: if the status moved since the reconciler read
        version `expected_version` (an intent was recorded meanwhile), nothing is written
        and None is returned; the next pass plans from what is."""
        now = utcnow()
        with self._session() as s:
            env = self._claim(s, environment_id)
            if env.rollout_version != expected_version:
                return None
            _write_status(env, status)
            for effect in effects:
                match effect:
                    case rollouts.Promoted(release=number):
                        for row in s.scalars(
                            select(ReleaseRow).where(
                                ReleaseRow.environment_id == environment_id,
                                ReleaseRow.state == str(ReleaseState.LIVE),
                            )
                        ):
                            if row.number != number:
                                row.state = str(ReleaseState.SUPERSEDED)
                                row.updated_at = now
                        promoted = s.get(ReleaseRow, (environment_id, number))
                        if promoted is not None:
                            promoted.state = str(ReleaseState.LIVE)
                            promoted.updated_at = now
                            flags = s.get(FlagSetRow, environment_id)
                            promoted.flags_version = flags.version if flags else None
                    case rollouts.Aborted(release=number, reason=reason):
                        failed = s.get(ReleaseRow, (environment_id, number))
                        if failed is not None:
                            failed.state = str(ReleaseState.FAILED)
                            failed.message = reason
                            failed.updated_at = now
                        stable = status.stable
                        back = (
                            s.get(ReleaseRow, (environment_id, stable.release)) if stable else None
                        )
                        if back is not None:
                            env.build_id = back.build_id
                            env.commit = back.commit
                            env.hook_release = max(env.hook_release, back.number)
            return environment_record(env)

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
            # the row is locked before it is read (one UPDATE first), so an intent recorded
            # at the same moment is not overwritten with the status read before it
            s.execute(
                update(EnvironmentRow)
                .where(EnvironmentRow.id == environment_id)
                .values(updated_at=utcnow())
            )
            env = s.get(EnvironmentRow, environment_id)
            if env is None:
                return
            status = rollouts.from_json(json.loads(env.rollout_json or "{}"))
            if status.warm is not None and status.warm.generation == generation:
                _write_status(env, replace(status, warm=None, warm_until=0.0))

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


def _write_status(env: EnvironmentRow, status: rollouts.RolloutStatus) -> None:
    env.rollout_json = json.dumps(rollouts.to_json(status), sort_keys=True)
    env.rollout_version = (env.rollout_version or 0) + 1
