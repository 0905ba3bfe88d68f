"""One-off processes (`laneway run`): started as labelled jobs of the runtime, followed by the
API request that started them, stopped when it ends.

A run is `<environment id>/_run/<n>/v<generation>` in the runtime: the reconciler leaves it
alone (`core.environments.RUN_SERVICE`), garbage collection and `laneway halt` see it as any
process of its environment, and destroying the environment stops it. It gets the process
environment a replica of its service in the live generation gets, without a port, and runs
in that generation's directory. Its output goes to `environments/<id>/runs/<n>.log`, which
the request follows and removes. A control plane that starts stops the runs a previous one
left (no client can be following them any more).
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from laneway.controllers import hidden
from laneway.controllers.context import Context
from laneway.controllers.launching import Launcher
from laneway.core import redaction
from laneway.core.environments import RUN_SERVICE
from laneway.core.types import Environment, ProcessInfo
from laneway.errors import Conflict, InvalidInput
from laneway.runtime import redacting
from laneway.runtime.base import ProcessSpec

DEFAULT_TIMEOUT = 3600
MAX_TIMEOUT = 86400
STOP_TIMEOUT = 5.0
POLL = 0.1
MAX_LINE = 64 * 1024
"""Output without a newline is passed on in pieces this long."""


@dataclass(frozen=True)
class Job:
    environment_id: str
    key: str
    pid: int
    generation: int
    log_path: Path
    redactor: redaction.Redactor
    """The environment's secrets, hidden again in what is served (the filter the process
    writes through hid them in its file already)."""
    timeout: float
    started: float


def runs_dir(ctx: Context, environment_id: str) -> Path:
    return ctx.settings.environments_dir / environment_id / "runs"


@dataclass(frozen=True)
class Prepared:
    """A run checked and ready to start: what `launch` hands the runtime."""

    environment: Environment
    generation: int
    process: ProcessSpec
    timeout: float


def prepare(
    ctx: Context, environment: Environment, service: str, command: str, *, timeout: float
) -> Prepared:
    """Check that `command` can run as a one-off process of `service` in the live generation
    (refusing with the reason if not) and make its process, without starting anything."""
    generation = ctx.specs.generations(environment).get(environment.live)
    if not environment.live or generation is None:
        raise Conflict(
            f"{environment.name} has no live release to run in",
            hint=f"wait for it to be running (`laneway env show {environment.name}`)",
        )
    spec = generation.spec
    if service not in spec.services:
        known = ", ".join(sorted(spec.services)) or "none"
        raise InvalidInput(
            f"service {service!r}: not in the spec of v{environment.live} (services: {known})"
        )
    launcher = Launcher(ctx)
    config = launcher.config_of(environment, generation.number)
    env = launcher.process_env(
        environment,
        spec,
        release=generation.number,
        service=service,
        build=generation,
        config=config,
    )
    env.setdefault("PYTHONUNBUFFERED", "1")  # output as it comes, not when a buffer fills
    secret_keys = hidden.keys(spec, config)
    env[redacting.KEYS] = ",".join(sorted(secret_keys))
    index = secrets.randbelow(2**31)
    process = ProcessSpec(
        environment_id=environment.id,
        service=RUN_SERVICE,
        index=index,
        release=f"v{generation.number}",
        # its output reaches its file through the filter that hides secrets, as a replica's
        command="exec " + redacting.command(command),
        cwd=ctx.release_dir(environment.id, generation.number),
        env=env,
        log_path=runs_dir(ctx, environment.id) / f"{index}.log",
        per_release=True,
    )
    return Prepared(environment, generation.number, process, timeout)


def launch(ctx: Context, prepared: Prepared) -> Job:
    """Start a prepared run. The API does this from inside the stream that follows it, so
    a run whose client is gone before its stream begins never starts."""
    log_path = prepared.process.log_path
    assert log_path is not None
    log_path.parent.mkdir(parents=True, exist_ok=True)
    info = ctx.runtime.start_process(prepared.process)
    return Job(
        environment_id=prepared.environment.id,
        key=info.key,
        pid=info.pid,
        generation=prepared.generation,
        log_path=log_path,
        redactor=hidden.redactor(ctx, prepared.environment),
        timeout=prepared.timeout,
        started=time.monotonic(),
    )


def redacted(job: Job, text: str) -> str:
    return job.redactor.text(text)


async def launched(ctx: Context, prepared: Prepared) -> Job:
    """`launch` in a thread; cancelled meanwhile (its client went away), the process it
    starts is stopped as soon as it has started, rather than left without a follower."""
    task = asyncio.ensure_future(asyncio.to_thread(launch, ctx, prepared))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:

        def orphaned(done: asyncio.Future[Job]) -> None:
            if not done.cancelled() and done.exception() is None:
                finish(ctx, done.result())

        task.add_done_callback(orphaned)
        raise


async def follow(ctx: Context, job: Job) -> AsyncIterator[tuple[str, str | int | None]]:
    """("output", line) for each line the job writes, then ("exit", code) once it has ended
    (a shell's 128+N for a signal; None if the runtime lost it), or ("timeout", None) once
    it has run longer than its timeout (it is stopped by `finish`)."""
    reader = _Reader(job.log_path)
    while True:
        info = await asyncio.to_thread(_find, ctx, job)
        ended = info is None or not info.alive
        for line in await asyncio.to_thread(reader.read, final=ended):
            yield "output", redacted(job, line)
        if ended:
            yield "exit", _exit_code(info)
            return
        if time.monotonic() - job.started > job.timeout:
            yield "timeout", None
            return
        await asyncio.sleep(POLL)


def finish(ctx: Context, job: Job) -> None:
    """Stop the job if it still runs, forget it and remove its output. In a thread of its
    own: this runs as a request ends, also when its client went away (and the request's
    task is being cancelled)."""

    def cleanup() -> None:
        ctx.runtime.stop_process(job.key, timeout=STOP_TIMEOUT)
        ctx.runtime.forget(job.key)
        job.log_path.unlink(missing_ok=True)

    threading.Thread(target=cleanup, name=f"run {job.key}", daemon=True).start()


def stop_leftover_runs(ctx: Context) -> list[str]:
    """Stop the runs a previous control plane left: their clients are gone."""
    stopped = []
    for process in ctx.runtime.list_processes():
        if process.service != RUN_SERVICE:
            continue
        if process.alive:
            ctx.runtime.stop_process(process.key, timeout=STOP_TIMEOUT)
            stopped.append(f"{process.key} (pid {process.pid})")
        ctx.runtime.forget(process.key)
    root = ctx.settings.environments_dir
    for directory in root.glob("*/runs") if root.is_dir() else ():
        shutil.rmtree(directory, ignore_errors=True)
    return stopped


def _find(ctx: Context, job: Job) -> ProcessInfo | None:
    return next(
        (p for p in ctx.runtime.list_processes(job.environment_id) if p.key == job.key), None
    )


def _exit_code(info: ProcessInfo | None) -> int | None:
    if info is None or info.exit_code is None:
        return None
    code = info.exit_code
    return 128 + abs(code) if code < 0 else code


class _Reader:
    """The lines of a file that is being written, as they are completed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.pending = b""

    def read(self, *, final: bool) -> list[str]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            data = b""
        self.offset += len(data)
        self.pending += data
        lines = self.pending.split(b"\n")
        self.pending = lines.pop()
        while len(self.pending) > MAX_LINE:
            lines.append(self.pending[:MAX_LINE])
            self.pending = self.pending[MAX_LINE:]
        if final and self.pending:
            lines.append(self.pending)
            self.pending = b""
        return [line.decode(errors="replace") for line in lines]
