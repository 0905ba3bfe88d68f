"""Run a whole laneway instance for tests and benchmarks: a server process with its own
LANEWAY_HOME and ports chosen at run time, its CLI, and a teardown that leaves nothing behind.

Waiting: what an environment does is announced on its event stream, so a test waits there
(`Server.wait_for`) and wakes when the event arrives; what a process prints is read as it comes
(`Output`). Only what sends no notice (a process appearing in /proc, a port starting to answer)
is polled, with `poll_until`. Every bound on a wait is a guard against a hung test, not a
measure of speed.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import psycopg
from httpx_sse import connect_sse

from laneway import server as control_plane
from laneway.core import rollouts
from laneway.core.types import ProcessInfo
from laneway.resources.postgres import PostgresProvider
from laneway.runtime.local import scan
from laneway.settings import load_settings
from laneway.store.repository import Store

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    """A port nothing listens on, for a process a test starts to bind.

    Drawn from 10000-19999, below the kernel's ephemeral range and laneway's default
    LANEWAY_PORTS: a port the kernel handed out for a bind to port 0 is also what it hands
    to any process's next outgoing connection, which could take it before the test's
    process binds it (HAProxy then fails with "Address already in use"). Here only
    another explicit bind can take it.
    """
    high = min(_ephemeral_low(), 20_000)
    for _ in range(200):
        port = _ports.randrange(10_000, high)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_ports = random.Random()


def _ephemeral_low() -> int:
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        return max(int(text.split()[0]), 10_001)
    except (OSError, ValueError, IndexError):
        return 32_768


POLL_INTERVAL = 0.05
EVENT_GUARD = 120.0
"""Seconds a wait on an environment's events may take before the test fails: a guard against
a hang, well above the slowest step here (a build of the example app)."""


def poll_until(
    predicate: Callable[[], Any],
    *,
    what: str,
    timeout: float = 30,
    interval: float = POLL_INTERVAL,
) -> Any:
    """Call `predicate` every `interval` seconds until it returns something truthy; return it.

    This polls, so use it only for what sends no notice when it happens: a process appearing
    in /proc, a port starting to answer, a file written by a process we do not read. Anything
    an environment does is on its event stream: wait with `Server.wait_for`. `timeout` only
    keeps a broken test from hanging."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"no {what} within {timeout:g}s")


wait_until = poll_until
"""The former name, still used by tests/integration and bench/."""


@dataclass(frozen=True)
class StreamEvent:
    """One server-sent event of an environment's stream: a step as recorded (`type` build,
    hook, started, switched, deploy.failed, ...; `data` its id, time, type and message), its
    `status` (`data` the environment as `laneway env show --json` prints it, sent every 100 ms),
    or `end` once the environment is gone (also when it did not exist)."""

    type: str
    data: dict[str, Any]

    @property
    def message(self) -> str:
        return str(self.data.get("message", ""))


Match = Callable[[StreamEvent], object]


def step(type_: str, text: str = "") -> Match:
    """Matches the step `type_` whose message contains `text`."""
    return lambda e: e.type == type_ and text in e.message


def status(predicate: Callable[[dict[str, Any]], object]) -> Match:
    """Matches a status whose environment satisfies `predicate`."""
    return lambda e: e.type == "status" and predicate(e.data)


def live(release: str, *, serving: str | None = None) -> Match:
    """Matches the environment running `release` (on generation `serving`, by default the
    release's own) with traffic on it: the release has been marked live by then."""
    generation = serving or release
    return status(
        lambda e: (e["release"], e["serving"], e["phase"]) == (release, generation, "running")
    )


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
        # polled: nothing announces that the API has started answering
        poll_until(self._ready, timeout=30, what=f"laneway server on {self.api}")

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(
                f"server exited {self.process.returncode}:\n{self.log.read_text()}"
            )
        if not (self.home / "client.json").exists():
            return False
        try:
            with self.http() as http:
                return http.get("/api/v1/status").status_code == 200
        except httpx.HTTPError:
            return False

    def token(self) -> str:
        return str(json.loads((self.home / "client.json").read_text())["token"])

    def http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token()}"}, timeout=30
        )

    def events(
        self, environment: str, *, app: str = "shop", after: int = 0
    ) -> Generator[StreamEvent, None, None]:
        """The environment's event stream from event id `after` on (`GET …/events?follow=true`),
        read with a standard server-sent-events parser."""
        url = f"/api/v1/apps/{app}/environments/{environment}/events"
        params = {"follow": "true", "after": str(after)}
        with (
            self.http() as http,
            connect_sse(http, "GET", url, params=params, timeout=EVENT_GUARD) as source,
        ):
            response = source.response
            if response.status_code == 404:
                yield StreamEvent("end", {"status": 404})
                return
            if response.status_code != 200:
                response.read()
                raise AssertionError(f"GET {url} answered {response.status_code}: {response.text}")
            for sse in source.iter_sse():
                if not sse.data:  # an event without data is not dispatched (the standard)
                    continue
                yield StreamEvent(sse.event, sse.json())

    def wait_for(
        self,
        environment: str,
        match: Match,
        *,
        what: str,
        after: int = 0,
        app: str = "shop",
        timeout: float = EVENT_GUARD,
    ) -> StreamEvent:
        """The first event of `environment` from id `after` on that `match`es. Fails when the
        environment goes away first or nothing matches within `timeout` (a guard)."""
        deadline = time.monotonic() + timeout
        with contextlib.closing(self.events(environment, app=app, after=after)) as events:
            for event in events:
                if match(event):
                    return event
                if event.type == "end":
                    raise AssertionError(f"{environment} is gone; it never showed {what}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"{environment} showed no {what} within {timeout:g}s")
        raise AssertionError(f"the event stream of {environment} ended before {what}")

    def wait_gone(self, environment: str, *, app: str = "shop") -> None:
        self.wait_for(environment, lambda e: e.type == "end", what="its end", app=app)

    def last_event(self, environment: str, *, app: str = "shop") -> int:
        """The id of the environment's newest event: pass it as `after` to see only what
        happens from now on."""
        with self.http() as http:
            response = http.get(f"/api/v1/apps/{app}/environments/{environment}/events")
        response.raise_for_status()
        return max((int(e["id"]) for e in response.json()), default=0)

    def show(self, environment: str, *, app: str = "shop") -> dict[str, Any] | None:
        with self.http() as http:
            response = http.get(f"/api/v1/apps/{app}/environments/{environment}")
        return response.json() if response.status_code == 200 else None

    def processes(self) -> list[ProcessInfo]:
        """The live app processes of this instance (its router left out), read from /proc."""
        return [p for p in scan(self.owner()) if not p.key.startswith("_router")]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, sig)
            self.process.wait(timeout=30)

    def cli(
        self, *args: str, cwd: Path | None = None, check: bool = True, timeout: float = 120
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


class RouterLoad:
    """Requests through the router from a thread of its own, each answer kept: the data path
    must answer while the control plane is killed and restarted (the router is a process of
    its own). The pause between requests keeps the load small on a shared machine."""

    def __init__(self, server: Server, host: str, *, path: str = "/api/info", pause: float = 0.02):
        self.url = f"{server.router_url}{path}"
        self.host = host
        self.pause = pause
        self.answers: list[str] = []
        """The `release` of each answer, in order."""
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"load {host}", daemon=True)

    @property
    def requests(self) -> int:
        return len(self.answers) + len(self.failures)

    def __enter__(self) -> RouterLoad:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def since(self, mark: int) -> set[str]:
        """The releases that answered after `mark` (a length of `answers` taken earlier)."""
        return set(self.answers[mark:])

    def _run(self) -> None:
        with httpx.Client(headers={"Host": self.host}, timeout=10) as http:
            while not self._stop.is_set():
                try:
                    response = http.get(self.url)
                    if response.status_code == 200:
                        self.answers.append(str(response.json()["release"]))
                    else:
                        self.failures.append(f"{response.status_code}: {response.text[:200]}")
                except (httpx.HTTPError, ValueError, KeyError) as exc:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                self._stop.wait(self.pause)


class Output:
    """The lines a process prints, read by a thread as they come (and copied to `log`), so a
    test wakes when a line arrives instead of polling a file."""

    def __init__(self, stream: IO[str], *, log: Path | None = None) -> None:
        self.lines: list[str] = []
        self.closed = False
        self._log = log
        self._changed = threading.Condition()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    @property
    def text(self) -> str:
        with self._changed:
            return "".join(self.lines)

    def wait_for(self, pattern: str, *, what: str, timeout: float = EVENT_GUARD) -> re.Match[str]:
        """The first match of the regular expression `pattern` in a line printed so far or
        later; fails if the process closes its output first or after `timeout` (a guard)."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    if found := regex.search(line):
                        return found
                seen = len(self.lines)
                if self.closed:
                    raise AssertionError(f"the output ended without {what}:\n{self.text}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {what} within {timeout:g}s:\n{self.text}")
                self._changed.wait(left)

    def _read(self, stream: IO[str]) -> None:
        with stream, open(self._log or os.devnull, "a") as log:
            for line in stream:
                log.write(line)
                log.flush()
                with self._changed:
                    self.lines.append(line)
                    self._changed.notify_all()
        with self._changed:
            self.closed = True
            self._changed.notify_all()


def spec_repo(path: Path, spec: str) -> Path:
    """A git repository at `path` with one commit on `main`: `spec` as its laneway.yaml."""
    path.mkdir(parents=True)
    (path / "laneway.yaml").write_text(spec)
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "laneway.yaml")
    return path


def started_with_app(root: Path, spec: str, *, app: str = "bench") -> tuple[Path, Server]:
    """A repository of `spec` under `root` and a started server with it registered as `app`;
    the caller tears the server down."""
    repo = spec_repo(root / "repo", spec)
    server = make_server(root / "lw")
    try:
        server.start()
        with server.http() as http:
            http.put(f"/api/v1/apps/{app}", json={"repo": str(repo)}).raise_for_status()
    except BaseException:
        server.teardown()
        raise
    return repo, server


def promote_now(store: Store, environment_id: str, *, now: float = 0.0) -> None:
    """Walk the environment's rollout to its end as the reconciler would once every replica
    is ready and the router serves each weight: for tests that need a live release without
    running processes. The same machine (`rollouts.advance`) and store write are used."""
    for _ in range(10):
        environment = store.get_environment_by_id(environment_id)
        if environment is None or environment.rollout.canary is None:
            return
        seen = rollouts.Seen(ready=True, served=True)
        status, effects = rollouts.advance(environment.rollout, seen, now)
        store.save_rollout(
            environment_id,
            expected_version=environment.rollout_version,
            status=status,
            effects=effects,
        )
    raise AssertionError("the rollout did not end")


class Upstream:
    """A small HTTP server on 127.0.0.1 (a thread of the test's process) standing in for a
    replica: it answers its `name`; `/status/N` answers status N; `/hold` answers once
    `held` is set (`holding` is set when one waits). Stop it with `close`."""

    def __init__(self, name: str) -> None:
        import http.server

        label = name.encode()
        self.holding = holding = threading.Event()
        self.held = held = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # head and body are two writes

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                status = 200
                if self.path.startswith("/status/"):
                    status = int(self.path.rsplit("/", 1)[1])
                elif self.path == "/hold":
                    holding.set()
                    held.wait(60)
                self.send_response(status)
                self.send_header("content-length", str(len(label)))
                self.end_headers()
                self.wfile.write(label)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that went away (a router closing a pooled connection)

        self.name = name
        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.held.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()
