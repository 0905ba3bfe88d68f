"""Run a whole laneway instance for tests and benchmarks: a server process with its own
LANEWAY_HOME and ports chosen at run time, its CLI, and a teardown that leaves nothing behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

from laneway import server as control_plane
from laneway.resources.postgres import PostgresProvider
from laneway.settings import load_settings

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    predicate: Callable[[], object],
    *,
    timeout: float = 30,
    what: str = "condition",
    interval: float = 0.05,
) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class Server:
    home: Path
    api: str
    router: str
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.home / "server.log"

    @property
    def url(self) -> str:
        return f"http://{self.api}"

    @property
    def router_url(self) -> str:
        return f"http://{self.router}"

    @property
    def flags_sync(self) -> tuple[str, int]:
        """host, port of flagd's sync service (LANEWAY_FLAGS_SYNC, chosen at run time)."""
        host, _, port = self.env["LANEWAY_FLAGS_SYNC"].rpartition(":")
        return host, int(port)

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "laneway.cli",
                    "server",
                    "--api",
                    self.api,
                    "--router",
                    self.router,
                ],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(self._ready, timeout=30, what=f"laneway server on {self.api}")

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(
                f"server exited {self.process.returncode}:\n{self.log.read_text()}"
            )
        if not (self.home / "client.json").exists():
            return False
        try:
            return self.http().get("/api/v1/status").status_code == 200
        except httpx.HTTPError:
            return False

    def token(self) -> str:
        return str(json.loads((self.home / "client.json").read_text())["token"])

    def http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token()}"}, timeout=30
        )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, sig)
            self.process.wait(timeout=30)

    def cli(
        self, *args: str, cwd: Path | None = None, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "laneway.cli", *args],
            cwd=cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"laneway {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def get(self, host: str, path: str = "/") -> httpx.Response:
        return httpx.get(f"{self.router_url}{path}", headers={"Host": host}, timeout=10)

    def owner(self) -> str:
        return load_settings(environ=self.env).owner

    def teardown(self) -> None:
        """Stop the server, every process it started, and drop every database it made."""
        self.kill(signal.SIGTERM)
        settings = load_settings(environ=self.env)
        control_plane.halt(settings)
        provider = PostgresProvider(settings.postgres_url, owner=settings.owner, secret=b"")
        for environment_id in provider.owned_environments():
            provider.destroy_all(environment_id)


def make_server(
    home: Path, *, artifacts: Path | None = None, postgres_url: str = PG_ADMIN
) -> Server:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANEWAY_")}
    env.update(
        LANEWAY_HOME=str(home),
        LANEWAY_POSTGRES_URL=postgres_url,
        LANEWAY_FLAGS_SYNC=f"127.0.0.1:{free_port()}",
    )
    if artifacts is not None:
        env["LANEWAY_ARTIFACTS"] = str(artifacts)
    return Server(
        home=home, api=f"127.0.0.1:{free_port()}", router=f"127.0.0.1:{free_port()}", env=env
    )


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def owned_databases(owner: str, postgres_url: str = PG_ADMIN) -> list[str]:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE starts_with(datname, %s) "
            "UNION SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)",
            (f"lw_{owner}_", f"lw_{owner}_"),
        ).fetchall()
    return sorted(r[0] for r in rows)
