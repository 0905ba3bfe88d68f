"""A development environment: the app's work tree, run by the environment reconciler.

Called by `laneway.dev` (`laneway up`), which drives the reconciler in-process on the context
`laneway.composition.development_context` builds. The work tree is the build: each release
records a build whose spec is the tree's laneway.yaml as it was then, and the release's
directory `releases/vN` is a symlink to the tree, which the reconciler's observe counts as
unpacked; nothing is built or unpacked, the processes run the files as they are. Everything else is the reconciler's, as for any environment: resources,
the release hook as a job, replicas, crash restarts with backoff, ports leased per
generation.

It lives in a home of its own, `<LANEWAY_HOME>/dev`: its own SQLite store, and its own owner
in process labels and database names, so a server's garbage collector on the same home never
sees it. It gets no flag service (no server to answer): the app's flags answer their
defaults.

What a session does besides the reconciler's passes (each between two passes):

- **start**: stop what a killed session left behind, then make a new release of the work tree,
  so the release hook runs once per start; the previous generation is retired by the planner.
- **a changed file**: stop the replicas and forget their pids (`restart`), so that the next
  pass starts them again at once from the changed files, without counting a crash. Chosen over
  a release per change: the generation stays, so its ports (the URLs in the developer's
  browser) stay, the hook does not run at every save, and old and new code never run side by
  side (a worker would take jobs twice).
- **a changed laneway.yaml**, or any change while the environment has failed (its release hook
  failed, say): a new release (`release`). The spec is part of the build, so only a release
  changes it; the reconciler brings the new generation up beside the live one and switches, as
  a deploy does (with ports of its own: the session prints the new URLs).
- **stop** (Ctrl-C): every process stopped through the runtime (SIGTERM, SIGKILL after the
  spec's drain); the record, its resources (the development database) and files are kept.
  Nothing is live any more, so the next start's release starts as a first one.

Must not: build, unpack, or remove anything through the symlink (the work tree is the
developer's).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from laneway.builds import git
from laneway.controllers import ports
from laneway.controllers.context import Context
from laneway.core import rollouts
from laneway.core.environments import HOOK_SERVICE
from laneway.core.types import BuildRecord, Environment, Kind, Phase, ReplicaState
from laneway.errors import Conflict, LanewayError, NotFound
from laneway.settings import Settings

NAME = "dev"
CREATED_BY = "laneway up"
PORT_POLL = 0.02


def settings_for(settings: Settings) -> Settings:
    """The settings of `<home>/dev`: its own SQLite store (never the server's
    LANEWAY_STORE_URL), hence its own owner; no flags sync to announce."""
    home = settings.home / "dev"
    return settings.model_copy(
        update={
            "home": home,
            "store_url": None,
            "artifacts_dir": home / "artifacts",
            "flags_sync": None,
        }
    )


@dataclass(frozen=True)
class WorkTree:
    """The app's work tree, and what git says of it (nothing when it is not a repository)."""

    path: Path
    commit: str = ""
    branch: str | None = None

    @classmethod
    def read(cls, path: Path) -> WorkTree:
        """Blocking (git)."""
        path = path.resolve()
        if not git.is_repo(path):
            return cls(path)
        try:
            commit = git.resolve(path, "HEAD")
        except LanewayError:  # a repository without a commit yet
            commit = ""
        try:
            branch = git.current_branch(path)
        except LanewayError:
            branch = None
        return cls(path, commit, branch)


def record_build(ctx: Context, app: str, tree: WorkTree, spec_text: str) -> BuildRecord:
    """The work tree as a build: its spec as it is now. Its id covers the tree's path, commit
    and spec, so a changed laneway.yaml is a new build, as it would be in a server."""
    ctx.store.ensure_app(app, str(tree.path))
    digest = hashlib.sha256(f"{tree.path}\0{tree.commit}\0{spec_text}".encode()).hexdigest()
    return ctx.store.record_build(
        BuildRecord(
            id=f"sha256:{digest}",
            app=app,
            commit=tree.commit,
            ref="work tree",
            spec_text=spec_text,
            spec_digest="sha256:" + hashlib.sha256(spec_text.encode()).hexdigest(),
            created_at=datetime.now(UTC),
        )
    )


def link_release(ctx: Context, environment_id: str, release: int, tree: WorkTree) -> None:
    """`releases/v<release>` -> the work tree: the generation's code, "unpacked"."""
    target = ctx.release_dir(environment_id, release)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink():
        target.unlink()
    target.symlink_to(tree.path, target_is_directory=True)


@contextlib.contextmanager
def one_session(ctx: Context, app: str) -> Iterator[None]:
    """Held while a session runs the app: two would stop each other's processes at start."""
    path = ctx.settings.state_dir / f"up-{app}.lock"
    with open(path, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict(
                f"`laneway up` runs app {app!r} already (home {ctx.settings.home})",
                hint="stop it first (Ctrl-C in its terminal)",
            ) from None
        yield


def find(ctx: Context, app: str) -> Environment | None:
    try:
        return ctx.store.get_environment(app, NAME)
    except NotFound:
        return None


async def start(
    ctx: Context, tree: WorkTree, spec_text: str, *, app: str, drain: float
) -> Environment:
    """The session's environment: created with v1 the first time; otherwise whatever a
    killed session left is stopped and a new release of the work tree is made."""
    existing = find(ctx, app)
    if existing is not None:
        await stop(ctx, existing.id, drain=drain)
        stopped = ctx.store.get_environment_by_id(existing.id) or existing
        return release(ctx, stopped, tree, spec_text, description="laneway up")
    build = record_build(ctx, app, tree, spec_text)
    environment = ctx.store.create_environment(
        app=app,
        name=NAME,
        kind=Kind.DEVELOPMENT,
        branch=tree.branch,
        ref=None,
        build_id=build.id,
        commit=build.commit,
        created_by=CREATED_BY,
    )
    link_release(ctx, environment.id, environment.release, tree)
    return environment


def release(
    ctx: Context, environment: Environment, tree: WorkTree, spec_text: str, *, description: str
) -> Environment:
    """A new release of the work tree as it is now, made the environment's target (the
    reconciler runs its hook, starts its generation and switches to it)."""
    build = record_build(ctx, environment.app, tree, spec_text)
    updated, new = ctx.store.create_release(
        environment.id,
        expect_release=environment.release,
        build_id=build.id,
        commit=build.commit,
        ref=None,
        config_version=0,
        config_sealed="",
        description=description,
        created_by=CREATED_BY,
    )
    link_release(ctx, environment.id, new.number, tree)
    if updated.branch != tree.branch:
        updated = ctx.store.update_environment(environment.id, branch=tree.branch)
    return updated


def needs_release(ctx: Context, environment: Environment, spec_text: str) -> bool:
    """Whether a change in the work tree needs a new release, not a restart of the replicas:
    `spec_text` is not the current build's spec, or the environment has failed (a new
    release runs its hook again)."""
    if environment.failure or environment.build_id is None:
        return True
    return ctx.store.get_build(environment.build_id).spec_text != spec_text


async def restart(ctx: Context, environment_id: str, *, drain: float) -> None:
    """Stop every replica (not a running hook) and forget their pids and restart counts, so
    the next pass starts them again at once: a restart asked for, not a crash."""
    processes = await asyncio.to_thread(ctx.runtime.list_processes, environment_id)
    replicas = [p for p in processes if p.service != HOOK_SERVICE]
    await asyncio.gather(
        *(asyncio.to_thread(ctx.runtime.stop_process, p.key, timeout=drain) for p in replicas)
    )
    await _ports_closed(ctx, environment_id, timeout=drain)
    environment = ctx.store.get_environment_by_id(environment_id)
    if environment is not None:
        fresh = tuple(
            dataclasses.replace(
                status,
                pid=None,
                state=ReplicaState.PENDING,
                restarts=0,
                retry_at=None,
                last_exit=None,
                message="restarting",
            )
            for status in environment.replicas
        )
        ctx.store.update_environment(environment_id, replicas=fresh)


async def _ports_closed(ctx: Context, environment_id: str, *, timeout: float) -> None:
    """Wait (bounded) until nothing listens on the environment's leased ports: a stopped
    process may still be closing its socket, and a port found taken is leased anew, which
    would move the URL the developer has open."""
    leased = [lease.port for lease in ctx.store.leases(environment_id)]
    for _ in range(int(timeout / PORT_POLL)):
        if all(await asyncio.to_thread(lambda: [ports.is_free(p) for p in leased])):
            return
        await asyncio.sleep(PORT_POLL)


async def stop(ctx: Context, environment_id: str, *, drain: float) -> None:
    """Stop every process of the environment, replicas and hook, and record that nothing is
    live; the record, resources and files stay for the next start."""
    processes = await asyncio.to_thread(ctx.runtime.list_processes, environment_id)
    await asyncio.gather(
        *(
            asyncio.to_thread(ctx.runtime.stop_process, p.key, timeout=drain)
            for p in processes
            if p.alive
        )
    )
    for process in processes:
        ctx.runtime.forget(process.key)
    if ctx.store.get_environment_by_id(environment_id) is not None:
        ctx.store.change_rollout(environment_id, rollouts.stopped)
        ctx.store.update_environment(
            environment_id,
            replicas=(),
            phase=Phase.PENDING,
            message="stopped: laneway up is not running",
        )
