"""`laneway up`: the app from its work tree, in the foreground, for development.

No server: the control plane of this one environment runs here, in-process. The environment
is of kind `development` (controllers/development.py says how the work tree is its build);
the same EnvironmentReconciler and LocalRuntime as for any environment run it, one pass at a
time, driven by a loop like a worker of controllers/manager.py. Between passes the session
acts on what the developer does: a changed file restarts the replicas, a changed laneway.yaml
makes a new release, Ctrl-C or SIGTERM stops every process.

It prints the reconciler's events, every replica's output (followed from the log files the
runtime writes, labelled `web.0 |` in a colour of its own) and the URLs of the live replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
from pathlib import Path

import httpx
import watchfiles
from rich.console import Console
from rich.text import Text

from laneway import composition, workspace
from laneway.controllers import development, manager
from laneway.controllers.context import Context
from laneway.controllers.environments import EnvironmentReconciler
from laneway.controllers.outcomes import Outcome
from laneway.core.types import Desired, Environment, EventType, Kind
from laneway.errors import LanewayError
from laneway.runtime import logfiles
from laneway.settings import Settings
from laneway.spec.loader import load_spec_text
from laneway.spec.model import Spec

COLORS = ("cyan", "magenta", "green", "yellow", "blue", "red")
FOLLOW_INTERVAL = 0.1
IGNORED_DIRS = {
    ".git",
    "__pycache__",
    ".deps",
    "node_modules",
    ".venv",
    ".laneway",
    ".pytest_cache",
}
SPEC_FILE = "laneway.yaml"
FAILURES = (EventType.ERROR, EventType.FAILED, EventType.DEPLOY_FAILED)
REMOVE_TIMEOUT = 120.0


def watch_filter(_change: watchfiles.Change, path: str) -> bool:
    """Whether a changed path restarts the app: not editors' scratch files, not caches."""
    parts = Path(path).parts
    name = parts[-1] if parts else ""
    editor_scratch = (
        name.startswith((".", "#"))
        or name.endswith((".pyc", ".log", "~", ".swp", ".swx", ".tmp"))
        or re.fullmatch(r"sed[A-Za-z0-9]{6}", name) is not None  # sed -i's temporary file
    )
    return not any(p in IGNORED_DIRS for p in parts) and not editor_scratch


async def run(repo: Path, settings: Settings, *, console: Console | None = None) -> None:
    """Run the work tree `repo` until SIGINT or SIGTERM; every process of it is stopped
    before this returns."""
    console = console or Console(highlight=False, soft_wrap=True)
    spec_text = await asyncio.to_thread(workspace.read_spec_text, repo / SPEC_FILE)
    spec = await asyncio.to_thread(load_spec_text, spec_text, filename=SPEC_FILE)
    ctx = await asyncio.to_thread(composition.development_context, settings)
    try:
        with development.one_session(ctx, spec.app):
            await Session(ctx, repo, spec, spec_text, console).run()
    finally:
        ctx.store.close()


async def remove(app: str, settings: Settings) -> bool:
    """Remove what `laneway up` keeps of `app` between runs: its development database and
    other resources, its files and its record, through the reconciler's teardown as a
    server destroys an environment. False where there was nothing; refused while a
    `laneway up` of the app runs."""
    ctx = await asyncio.to_thread(composition.development_context, settings)
    try:
        with development.one_session(ctx, app):
            environment = development.find(ctx, app)
            if environment is None:
                return False
            await development.stop(ctx, environment.id, drain=0)
            ctx.store.update_environment(environment.id, desired=Desired.DELETED)
            async with httpx.AsyncClient() as http:
                await _passes_until_gone(EnvironmentReconciler(ctx, http=http), environment.id)
            return True
    finally:
        ctx.store.close()


async def _passes_until_gone(reconciler: EnvironmentReconciler, environment_id: str) -> None:
    pacing = manager.Pacing()
    deadline = asyncio.get_running_loop().time() + REMOVE_TIMEOUT
    while True:
        result = await reconciler.reconcile(environment_id)
        if result.environment is None:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise LanewayError(
                f"the development environment is not removed after {REMOVE_TIMEOUT:g}s: "
                f"{result.environment.message}"
            )
        await asyncio.sleep(pacing.after(result.outcome, result.environment.phase))


class Session:
    """One `laneway up`: the environment's passes, the watch of the work tree and the
    printing, as tasks of one event loop; `_passing` keeps them from overlapping."""

    def __init__(
        self, ctx: Context, repo: Path, spec: Spec, spec_text: str, console: Console
    ) -> None:
        self.ctx = ctx
        self.repo = repo.resolve()
        self.spec = spec
        self.spec_text = spec_text
        self.console = console
        self.http = httpx.AsyncClient()
        self.reconciler = EnvironmentReconciler(ctx, http=self.http)
        self.environment_id = ""
        self._passing = asyncio.Lock()
        """Held by a pass, and by whatever the session does between passes."""
        self._wakeup = asyncio.Event()
        self._stop = asyncio.Event()
        self._follower: logfiles.Follower | None = None
        self._last_event = 0
        self._urls: dict[str, int] = {}
        self._colors: dict[str, str] = {}

    @property
    def drain(self) -> float:
        return self.spec.drain_for(Kind.DEVELOPMENT)

    def say(self, message: str, style: str = "") -> None:
        self.console.print(Text.assemble(("laneway | ", "bold"), (message, style)))

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._stop.set)
        tasks: list[asyncio.Task[None]] = []
        try:
            tree = await asyncio.to_thread(development.WorkTree.read, self.repo)
            async with self._passing:
                environment = await development.start(
                    self.ctx, tree, self.spec_text, app=self.spec.app, drain=self.drain
                )
                self.environment_id = environment.id
                self._last_event = self.ctx.store.latest_event_id(environment.id)
                self._follower = logfiles.Follower.from_end(self.ctx.log_dir(environment.id))
            self.say(f"{self.spec.app} from {self.repo} as v{environment.release} of `dev`")
            tasks = [
                asyncio.create_task(self._drive()),
                asyncio.create_task(self._watch()),
                asyncio.create_task(self._follow()),
            ]
            self.say("watching for changes; Ctrl-C stops everything")
            stopped = asyncio.create_task(self._stop.wait())
            done, _ = await asyncio.wait([*tasks, stopped], return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            for task in done - {stopped}:
                task.result()  # a session task that ended on its own failed: say why
        finally:
            await self._shutdown(tasks)
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)

    async def _shutdown(self, tasks: list[asyncio.Task[None]]) -> None:
        self.say("stopping")
        # the pass under way ends first, so that a process it starts is stopped too
        async with self._passing:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.environment_id:
                await development.stop(self.ctx, self.environment_id, drain=self.drain)
        self._print_output()
        await self.http.aclose()
        self.say("stopped; the development database and files are kept for the next run")

    async def _drive(self) -> None:
        """Passes of the reconciler: at once while one makes progress, on the manager's
        intervals otherwise, with backoff after a failed one; a change wakes it."""
        pacing = manager.Pacing()
        while True:
            self._wakeup.clear()
            async with self._passing:
                try:
                    result = await self.reconciler.reconcile(self.environment_id)
                    environment, outcome = result.environment, result.outcome
                except Exception as exc:  # a bug: said, and tried again after a pause
                    self.say(f"a pass failed: {type(exc).__name__}: {exc}", "red")
                    environment = self.ctx.store.get_environment_by_id(self.environment_id)
                    outcome = Outcome.RETRY
                self._report(environment)
            if environment is None:
                raise LanewayError("the development environment's record is gone")
            interval = pacing.after(outcome, environment.phase)
            if interval == 0:
                await asyncio.sleep(0)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), interval)

    def _report(self, environment: Environment | None) -> None:
        """What happened in the pass (its events), and the URLs of live replicas that are new
        or moved (a new generation leases ports of its own)."""
        for event in self.ctx.store.events(self.environment_id, after=self._last_event):
            self._last_event = event.id
            style = "red" if event.type in FAILURES else ""
            self.say(event.message, style)
        if environment is None or not environment.live:
            return
        for replica in environment.replicas:
            live = replica.release == f"v{environment.live}"
            if not live or not replica.port or not replica.state.up:
                continue
            label = f"{replica.service}.{replica.index}"
            if self._urls.get(label) != replica.port:
                self._urls[label] = replica.port
                self.say(f"{label} at http://127.0.0.1:{replica.port}/", "bold green")

    async def _watch(self) -> None:
        home = self.ctx.settings.home.resolve()

        def relevant(change: watchfiles.Change, path: str) -> bool:
            return watch_filter(change, path) and not Path(path).is_relative_to(home)

        async for changes in watchfiles.awatch(
            self.repo, watch_filter=relevant, debounce=300, step=50
        ):
            await self._changed({Path(p) for _, p in changes})
            self._wakeup.set()

    async def _changed(self, paths: set[Path]) -> None:
        names = sorted({p.name for p in paths})
        shown = ", ".join(names[:5]) + (" …" if len(names) > 5 else "")
        spec_text = self.spec_text
        if self.repo / SPEC_FILE in paths:
            changed: str | None = await asyncio.to_thread(self._read_spec)
            spec_text = changed or spec_text
        async with self._passing:
            environment = self.ctx.store.get_environment_by_id(self.environment_id)
            if environment is None:
                return
            if not development.needs_release(self.ctx, environment, spec_text):
                self.say(f"changed: {shown}; restarting")
                await development.restart(self.ctx, environment.id, drain=self.drain)
                return
            tree = await asyncio.to_thread(development.WorkTree.read, self.repo)
            released = development.release(
                self.ctx, environment, tree, spec_text, description=f"changed: {shown}"
            )
            self.spec_text = spec_text
            self.spec = await asyncio.to_thread(load_spec_text, spec_text, filename=SPEC_FILE)
            self.say(f"changed: {shown}; release v{released.release}")

    def _read_spec(self) -> str | None:
        """The work tree's laneway.yaml if it is valid for this session; else None, said."""
        try:
            text = workspace.read_spec_text(self.repo / SPEC_FILE)
            spec = load_spec_text(text, filename=SPEC_FILE)
        except LanewayError as exc:
            self.say(f"{SPEC_FILE} is invalid, keeping the last good one:\n{exc}", "red")
            return None
        if spec.app != self.spec.app:
            self.say(
                f"{SPEC_FILE} names app {spec.app!r} now; this session runs {self.spec.app!r} "
                "with the last good one until `laneway up` is started again",
                "red",
            )
            return None
        return text

    async def _follow(self) -> None:
        while True:
            self._print_output()
            await asyncio.sleep(FOLLOW_INTERVAL)

    def _print_output(self) -> None:
        if self._follower is None:
            return
        for path, line in self._follower.read():
            label = logfiles.label(path)
            color = "dim" if label == "release" else self._color(label)
            text = line.decode(errors="replace").rstrip("\n")
            self.console.print(Text.assemble((f"{label:>10} | ", color), text))

    def _color(self, label: str) -> str:
        if label not in self._colors:
            self._colors[label] = COLORS[len(self._colors) % len(COLORS)]
        return self._colors[label]
