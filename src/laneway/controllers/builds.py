"""Build a ref of an app and record the build: one path for the API's `build` and for the
environment reconciler. `build_and_record` blocks (callers run it in a thread);
`BuildTasks` runs it as a task per environment, so the passes that wait for a build go on
supervising the live release."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from laneway.builds import builder, git
from laneway.controllers import hidden
from laneway.controllers.context import Context
from laneway.controllers.outcomes import PermanentFailure
from laneway.core.environments import described_ref
from laneway.core.types import BuildRecord, Environment, EventType
from laneway.errors import BuildFailed, InvalidInput, NotFound, SpecError, UnsafeArtifact
from laneway.runtime import local
from laneway.runtime.base import process_key
from laneway.spec.loader import load_spec_text

BUILD_ENVIRONMENT = "_build"
"""Build commands are labelled as processes of this pseudo-environment: a control plane
killed while one ran finds it when it comes back and stops it (`stop_leftover_builds`); its
scratch directory is gone by then, so it cannot be adopted."""


def stop_leftover_builds(ctx: Context) -> list[str]:
    """Stop build commands a previous control plane of this instance left running; called
    before this one starts any build of its own."""
    stopped = []
    for process in ctx.runtime.list_processes(BUILD_ENVIRONMENT):
        if process.alive:
            ctx.runtime.stop_process(process.key, timeout=5)
            stopped.append(f"build {process.service} (pid {process.pid})")
        ctx.runtime.forget(process.key)
    return stopped


def build_and_record(
    ctx: Context, app: str, ref: str, *, on_output: Callable[[str], None] | None = None
) -> tuple[BuildRecord, bool]:
    """The build of `ref` (made now, or found in the cache) and whether it was cached."""
    repo = Path(ctx.store.get_app(app).repo)
    workdir = ctx.settings.home / "tmp"
    workdir.mkdir(parents=True, exist_ok=True)
    key = process_key(BUILD_ENVIRONMENT, app, secrets.randbelow(1 << 31))
    result = builder.build(
        repo,
        ref,
        store=ctx.artifacts,
        workdir=workdir,
        on_output=on_output,
        env=local.labels(ctx.settings.owner, key),
    )
    if result.spec.app != app:
        raise InvalidInput(
            f"laneway.yaml at {result.commit[:12]} describes app {result.spec.app!r}, not {app!r}"
        )
    record = ctx.store.record_build(
        BuildRecord(
            id=result.id,
            app=app,
            commit=result.commit,
            ref=ref,
            spec_text=git.show_file(repo, result.commit, "laneway.yaml") or "",
            spec_digest=result.spec_digest,
            created_at=datetime.now(UTC),
        )
    )
    return record, result.cached


def check_spec_at(repo: Path, ref: str, *, app: str) -> str:
    """The commit `ref` names; refused if its laneway.yaml is missing or invalid."""
    commit = git.resolve(repo, ref)
    text = git.show_file(repo, commit, "laneway.yaml")
    if text is None:
        raise InvalidInput(
            f"{ref} ({commit[:12]}) has no laneway.yaml", hint="`laneway init` writes one"
        )
    try:
        spec = load_spec_text(text, filename="laneway.yaml")
    except SpecError as exc:
        raise SpecError(
            exc.problems, hint=f"in the laneway.yaml of {ref} at commit {commit[:12]}"
        ) from None
    if spec.app != app:
        raise InvalidInput(
            f"laneway.yaml at {ref} ({commit[:12]}) describes app {spec.app!r}, not {app!r}"
        )
    return commit


class BuildTasks:
    """Builds under way, one per environment: environment id -> (release, task)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._building: dict[str, tuple[int, asyncio.Task[None]]] = {}

    @property
    def under_way(self) -> list[asyncio.Task[None]]:
        return [task for _, task in self._building.values()]

    def forget(self, environment_id: str) -> None:
        self._building.pop(environment_id, None)

    def step(self, environment: Environment, ref: str) -> None:
        """Builds run as tasks of their own, so the passes that wait for one go on
        supervising the live release; a finished build's failure is raised here."""
        running = self._building.get(environment.id)
        if running is not None and running[0] != environment.release:
            running = None  # a build for a release replaced meanwhile: its result is dropped
        if running is None:
            task = asyncio.create_task(self._build(environment, ref))
            self._building[environment.id] = (environment.release, task)
            return
        _, task = running
        if task.done():
            del self._building[environment.id]
            task.result()

    async def _build(self, environment: Environment, ref: str) -> None:
        store = self.ctx.store
        source = described_ref(ref)
        store.add_event(environment.id, EventType.BUILD, f"building {source}")
        # a build gets no config, but its output may still print what it found on the machine
        redactor = hidden.redactor(self.ctx, environment)

        def on_output(line: str) -> None:
            store.add_event(
                environment.id, EventType.BUILD_OUTPUT, redactor.text(line.rstrip("\n"))
            )

        try:
            build, cached = await asyncio.to_thread(
                build_and_record, self.ctx, environment.app, ref, on_output=on_output
            )
        except (BuildFailed, InvalidInput, NotFound, UnsafeArtifact) as exc:
            # a failed build's message names its commit already; its hint (the output's
            # tail) follows on lines of its own, after the one-line summary
            detail = f"\n{exc.hint}" if exc.hint else ""
            summary = (
                exc.message
                if isinstance(exc, BuildFailed)
                else f"build of {source} failed: {exc.message}"
            )
            raise PermanentFailure(redactor.text(f"{summary}{detail}")) from None
        store.update_release(
            environment.id, environment.release, build_id=build.id, commit=build.commit
        )
        current = store.get_environment_by_id(environment.id)
        if current is None or current.release != environment.release:
            return  # replaced by a newer release while it built
        store.update_environment(environment.id, build_id=build.id, commit=build.commit)
        note = " (cached)" if cached else ""
        store.add_event(
            environment.id,
            EventType.BUILT,
            f"build {build.id[7:19]} of commit {build.commit[:12]}{note}",
        )
