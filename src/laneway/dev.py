"""`laneway up`: the app from its work tree, in the foreground, for development.

Every service replica runs as a child process with its resources (the development database is
kept between runs, like a compose volume), output multiplexed and labelled per replica, the
services restarted when files change, and everything stopped on Ctrl-C. No server needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import watchfiles
from rich.console import Console

from laneway.core import environments as plans
from laneway.core.types import Desired, Environment, Kind, Phase
from laneway.errors import LanewayError
from laneway.resources.registry import providers
from laneway.settings import Settings
from laneway.spec.model import Spec
from laneway.workspace import load_spec

COLORS = ("cyan", "magenta", "green", "yellow", "blue", "red")
IGNORED_DIRS = {
    ".git",
    "__pycache__",
    ".deps",
    "node_modules",
    ".venv",
    ".laneway",
    ".pytest_cache",
}
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "LOGNAME", "TERM")


def _watch_filter(_change: watchfiles.Change, path: str) -> bool:
    parts = Path(path).parts
    name = parts[-1] if parts else ""
    editor_scratch = (
        name.startswith((".", "#"))
        or name.endswith((".pyc", ".log", "~", ".swp", ".swx", ".tmp"))
        or re.fullmatch(r"sed[A-Za-z0-9]{6}", name) is not None  # sed -i's temporary file
    )
    return not any(p in IGNORED_DIRS for p in parts) and not editor_scratch


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else ""


@dataclass
class Replica:
    service: str
    index: int
    port: int | None
    color: str
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    reader: asyncio.Task[None] | None = None

    @property
    def label(self) -> str:
        return f"{self.service}.{self.index}"


@dataclass
class DevSession:
    repo: Path
    settings: Settings
    secret: bytes
    console: Console = field(default_factory=Console)
    replicas: list[Replica] = field(default_factory=list)
    stopping: bool = False

    @property
    def environment_id(self) -> str:
        return "d" + hashlib.sha256(str(self.repo.resolve()).encode()).hexdigest()[:7]

    def environment(self, spec: Spec) -> Environment:
        now = datetime.now(UTC)
        return Environment(
            id=self.environment_id,
            app=spec.app,
            name="dev",
            kind=Kind.DEVELOPMENT,
            branch=_git(self.repo, "rev-parse", "--abbrev-ref", "HEAD") or None,
            ref=None,
            build_id="worktree",
            commit=_git(self.repo, "rev-parse", "HEAD") or None,
            desired=Desired.RUNNING,
            phase=Phase.RUNNING,
            message="",
            release=1,
            hook_release=1,
            failure=None,
            created_at=now,
            updated_at=now,
        )

    def say(self, text: str) -> None:
        self.console.print(f"[bold]laneway |[/] {text}", highlight=False)

    def provision(self, spec: Spec) -> dict[str, str]:
        # under a home of its own: the server's garbage collector must not see these as orphans
        dev_settings = self.settings.model_copy(update={"home": self.settings.home / "dev"})
        available = providers(dev_settings, secret=self.secret)
        values = {}
        for name, resource in spec.resources.items():
            values[name] = available[resource.type].ensure(self.environment_id, name)
            self.say(f"{resource.type} resource {name!r} ready")
        return values

    def process_env(
        self, spec: Spec, resources: dict[str, str], replica: Replica | None
    ) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if k in PASSED_THROUGH}
        base["PYTHONUNBUFFERED"] = "1"
        return plans.compose_env(
            self.environment(spec),
            spec,
            service=replica.service if replica else None,
            port=replica.port if replica else None,
            resources=resources,
            base=base,
            app_dir=str(self.repo),
        )

    async def run_hook(self, spec: Spec, resources: dict[str, str]) -> None:
        if not spec.hooks.release:
            return
        self.say(f"release hook: {spec.hooks.release}")
        process = await asyncio.create_subprocess_shell(
            spec.hooks.release,
            cwd=self.repo,
            env=self.process_env(spec, resources, None),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        assert process.stdout is not None
        async for line in process.stdout:
            self.console.print(
                f"[dim]release |[/] {line.decode(errors='replace').rstrip()}", highlight=False
            )
        if await process.wait() != 0:
            raise LanewayError(
                f"release hook `{spec.hooks.release}` exited with code {process.returncode}"
            )

    async def start(self, spec: Spec, resources: dict[str, str], replica: Replica) -> None:
        replica.process = await asyncio.create_subprocess_shell(
            spec.services[replica.service].command,
            cwd=self.repo,
            env=self.process_env(spec, resources, replica),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        replica.reader = asyncio.create_task(self._pump(spec, resources, replica, replica.process))

    async def _pump(
        self,
        spec: Spec,
        resources: dict[str, str],
        replica: Replica,
        process: asyncio.subprocess.Process,
    ) -> None:
        assert process.stdout is not None
        async for line in process.stdout:
            text = line.decode(errors="replace").rstrip()
            self.console.print(
                f"[{replica.color}]{replica.label:>10} |[/] {text}", highlight=False, markup=True
            )
        code = await process.wait()
        if self.stopping or replica.process is not process:
            return
        replica.restarts += 1
        delay = plans.backoff(replica.restarts)
        self.say(f"{replica.label} exited with code {code}; restarting in {delay:g}s")
        await asyncio.sleep(delay)
        if not self.stopping and replica.process is process:
            await self.start(spec, resources, replica)

    async def stop(self, replica: Replica, timeout: float = 10.0) -> None:
        process, replica.process = replica.process, None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
        if replica.reader is not None:
            await replica.reader

    async def stop_all(self) -> None:
        await asyncio.gather(*(self.stop(r) for r in self.replicas))

    async def run_until_signalled(self) -> None:
        """Run until SIGINT or SIGTERM, then stop every replica before returning."""
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await self.run()

    def _replicas(self, spec: Spec) -> list[Replica]:
        ports = {(r.service, r.index): r.port for r in self.replicas}
        return [
            Replica(
                service,
                index,
                ports.get((service, index)) or _free_port()
                if spec.services[service].has_port(service)
                else None,
                COLORS[n % len(COLORS)],
            )
            for n, (service, index) in enumerate(plans.desired_replicas(spec, "development"))
        ]

    async def run(self) -> None:
        spec = load_spec(self.repo / "laneway.yaml")
        resources = await asyncio.to_thread(self.provision, spec)
        try:
            await self.run_hook(spec, resources)
            self.replicas = self._replicas(spec)
            for replica in self.replicas:
                await self.start(spec, resources, replica)
                if replica.port:
                    self.say(f"{replica.label} at http://127.0.0.1:{replica.port}/")
            self.say("watching for changes; Ctrl-C stops everything")
            async for changes in watchfiles.awatch(
                self.repo, watch_filter=_watch_filter, debounce=300, step=50
            ):
                names = sorted({Path(p).name for _, p in changes})
                self.say(
                    f"changed: {', '.join(names[:5])}{' …' if len(names) > 5 else ''}; restarting"
                )
                await self.stop_all()
                if any(Path(p).name == "laneway.yaml" for _, p in changes):
                    try:
                        spec = load_spec(self.repo / "laneway.yaml")
                    except LanewayError as exc:
                        self.say(
                            f"[red]laneway.yaml is invalid, keeping the last good one:[/]\n{exc}"
                        )
                    self.replicas = self._replicas(spec)
                for replica in self.replicas:
                    replica.restarts = 0
                    await self.start(spec, resources, replica)
        finally:
            self.stopping = True
            self.say("stopping")
            await self.stop_all()
