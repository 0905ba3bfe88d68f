"""The example app `shop`, run for real against the PostgreSQL server on this machine.

Each test database is created under a unique name and dropped at the end; every process
started here is killed by a finalizer if a test leaves it running. No fixed sleeps: every
wait polls a condition against a deadline.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from psycopg import sql

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "src" / "laneway" / "examples" / "shop"
ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
DEADLINE = 20.0  # seconds any one wait may take before the test fails

LANEWAY_ENV = {
    "LANEWAY_APP": "shop",
    "LANEWAY_ENV": "feature-checkout",
    "LANEWAY_ENV_KIND": "preview",
    "LANEWAY_RELEASE": "v7",
    "LANEWAY_BUILD": "sha256:" + "b7f3" * 16,
    "LANEWAY_BRANCH": "feature/checkout",
    "LANEWAY_COMMIT": "0123456789abcdef0123456789abcdef01234567",
}


def url_of(name: str) -> str:
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def wait_for(condition: Callable[[], Any], what: str, deadline: float = DEADLINE) -> Any:
    """Polls condition() until it returns something truthy; fails after `deadline` seconds."""
    end = time.monotonic() + deadline
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > end:
            pytest.fail(f"timed out after {deadline:g}s waiting for {what}")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def app_env(database_url: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANEWAY_", "PYTHONPATH"))}
    env.pop("DATABASE_URL", None)
    env.update(PYTHONPATH=str(EXAMPLE), PYTHONDONTWRITEBYTECODE="1")
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    env.update(extra)
    return env


def run_module(module: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module], env=env, capture_output=True, text=True, timeout=60
    )


# Databases.


@dataclass
class Databases:
    names: list[str]

    def reserve(self) -> str:
        """A unique name, dropped (if it exists) when the module's tests are done."""
        name = f"lw_test_shop_{uuid.uuid4().hex[:12]}"
        self.names.append(name)
        return name

    def create(self, name: str | None = None) -> str:
        name = name or self.reserve()
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def drop_all(self) -> None:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            for name in self.names:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


@pytest.fixture(scope="module")
def databases(request: pytest.FixtureRequest) -> Databases:
    dbs = Databases([])
    request.addfinalizer(dbs.drop_all)
    return dbs


@pytest.fixture(scope="module")
def database(databases: Databases) -> str:
    """A migrated database shared by this module's tests; its URL."""
    url = url_of(databases.create())
    result = run_module("shop.migrate", app_env(url))
    assert result.returncode == 0, result.stderr
    return url


def query(url: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
        return conn.execute(statement, params).fetchall()


# Processes.


@dataclass
class App:
    proc: subprocess.Popen[bytes]
    log: Path
    port: int | None = None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)


class Apps:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[App] = []

    def start(self, module: str, env: dict[str, str], *, port: int | None = None) -> App:
        if port is not None:
            env = {**env, "PORT": str(port)}
        log = self.directory / f"{module}-{len(self.started)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", module],
                env=env,
                cwd=self.directory,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        app = App(proc, log, port)
        self.started.append(app)
        return app

    def web(self, database_url: str | None, **extra: str) -> App:
        app = self.start("shop.web", app_env(database_url, **extra), port=free_port())
        return app

    def kill_all(self) -> None:
        for app in self.started:
            if app.proc.poll() is None:
                app.proc.kill()
            app.proc.wait(timeout=10)


@pytest.fixture
def apps(tmp_path: Path) -> Iterator[Apps]:
    started = Apps(tmp_path)
    try:
        yield started
    finally:
        started.kill_all()


# HTTP.


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    conn: http.client.HTTPConnection | None = None,
) -> Response:
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body)
        response = conn.getresponse()
        return Response(response.status, response.headers, response.read())
    finally:
        if own:
            conn.close()


def wait_healthy(app: App) -> None:
    assert app.port is not None

    def healthy() -> bool:
        if app.proc.poll() is not None:
            pytest.fail(f"web exited with {app.proc.returncode}:\n{app.output()}")
        try:
            return call(app.port, "GET", "/healthz").status == 200
        except OSError:
            return False

    wait_for(healthy, "GET /healthz to answer 200")


# The tests.


def test_spec_and_procfile_describe_the_same_app() -> None:
    check = (
        "from pathlib import Path; from laneway.workspace import load_spec; "
        f"s = load_spec(Path({str(EXAMPLE / 'laneway.yaml')!r})); "
        "print(s.app, *sorted(s.services), *s.resources, s.hooks.release)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", check], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["shop", "web", "worker", "db", "python", "-m", "shop.migrate"]

    spec = yaml.safe_load((EXAMPLE / "laneway.yaml").read_text())
    procfile = dict(
        line.split(":", 1) for line in (EXAMPLE / "Procfile").read_text().splitlines() if line
    )
    assert {k: v.strip() for k, v in procfile.items()} == {
        "web": spec["services"]["web"]["command"],
        "worker": spec["services"]["worker"]["command"],
        "release": spec["hooks"]["release"],
    }
    assert (EXAMPLE / "requirements.txt").read_text().split() == [
        "psycopg[binary]==3.3.9",
        "openfeature-sdk==0.10.0",
        "openfeature-provider-ofrep==0.3.0",
    ]


def test_migrate_is_idempotent(databases: Databases) -> None:
    url = url_of(databases.create())
    for _ in range(2):
        result = run_module("shop.migrate", app_env(url))
        assert result.returncode == 0, result.stderr
        assert "schema ready" in result.stdout
    tables = query(
        url,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
        "ORDER BY table_name",
    )
    assert [t for (t,) in tables] == ["counters", "heartbeat", "jobs"]
    assert query(url, "SELECT name, value FROM counters") == [("visits", 0)]


def test_migrate_failure_is_one_line(databases: Databases) -> None:
    missing = url_of(databases.reserve())  # never created
    result = run_module("shop.migrate", app_env(missing))
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("migrate: failed: ") and "does not exist" in result.stderr

    result = run_module("shop.migrate", app_env(None))
    assert result.returncode == 2
    assert result.stderr == "migrate: environment variable DATABASE_URL is not set\n"


def test_web_page_counter_jobs_and_restart(database: str, apps: Apps) -> None:
    web = apps.web(database, **LANEWAY_ENV)
    wait_healthy(web)
    assert web.port is not None

    # Keep-alive: several requests on one connection, each with a Content-Length.
    conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=10)
    try:
        responses = [call(web.port, "GET", path, conn=conn) for path in ("/healthz", "/nope", "/")]
        sock = conn.sock
        info = call(web.port, "GET", "/api/info", conn=conn)
        assert conn.sock is sock and sock is not None, "the connection was not kept alive"
    finally:
        conn.close()
    responses.append(info)
    assert [r.status for r in responses] == [200, 404, 200, 200]
    assert responses[0].body == b"ok\n"
    for response in responses:
        assert response.headers["Content-Length"] == str(len(response.body))

    page = responses[2].body.decode()
    for shown in ("shop", "feature-checkout", "preview", "v7", "b7f3b7f3b7f3", "feature/checkout"):
        assert shown in page
    assert "0123456" in page and "01234567" not in page  # the commit, shortened

    data = info.json()
    assert set(data) == {
        "app", "environment", "kind", "release", "build", "branch", "commit",
        "visits", "worker_heartbeat", "jobs_done", "pid",
    }  # fmt: skip
    assert data["app"] == "shop"
    assert data["environment"] == "feature-checkout"
    assert data["kind"] == "preview"
    assert data["release"] == "v7"
    assert data["build"] == "b7f3b7f3b7f3"
    assert data["branch"] == "feature/checkout"
    assert data["commit"] == "0123456"
    assert data["pid"] == web.proc.pid
    assert isinstance(data["jobs_done"], int)

    # Each GET / counts one visit; /api/info only reads the counter.
    first = data["visits"]
    assert call(web.port, "GET", "/").status == 200
    assert call(web.port, "GET", "/api/info").json()["visits"] == first + 1
    assert f'id="visits">{first + 2}<' in call(web.port, "GET", "/").body.decode()

    # Jobs.
    posted = call(web.port, "POST", "/api/jobs", body=b'{"task": "email"}')
    assert posted.status == 202, posted.body
    job = posted.json()
    assert job["status"] == "queued" and isinstance(job["id"], int)
    assert call(web.port, "POST", "/api/jobs").status == 202  # an empty body is {}
    assert call(web.port, "POST", "/api/jobs", body=b"{nope").status == 400
    assert call(web.port, "POST", "/api/jobs", body=b"[1]").status == 400
    assert call(web.port, "POST", "/healthz").status == 405
    assert query(database, "SELECT payload, status FROM jobs WHERE id = %s", (job["id"],)) == [
        ({"task": "email"}, "queued")
    ]

    # SIGTERM: exit 0; the counter lives in the database, so a new process continues it.
    assert web.stop() == 0, web.output()
    out = web.output()
    assert "listening on" in out and '"GET /api/info HTTP/1.1" 200' in out and "stopped" in out
    assert "Traceback" not in out

    again = apps.web(database, **LANEWAY_ENV)
    wait_healthy(again)
    assert again.port is not None
    assert f'id="visits">{first + 3}<' in call(again.port, "GET", "/").body.decode()
    assert again.stop() == 0, again.output()


def test_worker_processes_jobs_and_stops_on_sigterm(database: str, apps: Apps) -> None:
    web = apps.web(database)
    worker = apps.start("shop.worker", app_env(database))
    wait_healthy(web)
    assert web.port is not None
    job_id = call(web.port, "POST", "/api/jobs", body=b'{"task": "resize"}').json()["id"]

    def done() -> bool:
        if worker.proc.poll() is not None:
            pytest.fail(f"worker exited with {worker.proc.returncode}:\n{worker.output()}")
        rows = query(database, "SELECT status, result FROM jobs WHERE id = %s", (job_id,))
        return rows[0][0] == "done"

    wait_for(done, f"job {job_id} to be done")
    info = call(web.port, "GET", "/api/info").json()
    assert info["jobs_done"] >= 1
    assert info["worker_heartbeat"] is not None
    assert query(database, "SELECT pid FROM heartbeat") == [(worker.proc.pid,)]
    wait_for(lambda: f"job {job_id} done" in worker.output(), "the worker to log the job")

    started = time.monotonic()
    assert worker.stop() == 0, worker.output()
    assert time.monotonic() - started < 5
    assert "Traceback" not in worker.output()
    assert web.stop() == 0, web.output()


def test_worker_waits_for_and_reconnects_to_the_database(databases: Databases, apps: Apps) -> None:
    name = databases.reserve()
    url = url_of(name)
    worker = apps.start("shop.worker", app_env(url))  # the database does not exist yet
    wait_for(lambda: "retrying in" in worker.output(), "the worker to report the missing database")
    assert worker.proc.poll() is None

    databases.create(name)
    assert run_module("shop.migrate", app_env(url)).returncode == 0
    wait_for(lambda: query(url, "SELECT pid FROM heartbeat"), "a first heartbeat")

    # The database drops every connection (a restart, a failover): the worker comes back.
    (cut,) = query(url, "SELECT now()")[0]
    query(
        url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name = 'shop-worker'",
    )
    wait_for(
        lambda: query(url, "SELECT 1 FROM heartbeat WHERE beat_at > %s", (cut,)),
        "a heartbeat after the connection was cut",
    )
    assert worker.output().count("connected to the database") >= 2
    assert worker.stop() == 0, worker.output()
    assert "Traceback" not in worker.output()


def test_healthz_is_503_while_the_database_is_unreachable(apps: Apps) -> None:
    nothing = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"  # no server listens
    web = apps.web(nothing)

    def answered() -> Response | None:
        if web.proc.poll() is not None:
            pytest.fail(f"web exited with {web.proc.returncode}:\n{web.output()}")
        try:
            assert web.port is not None
            return call(web.port, "GET", "/healthz")
        except OSError:
            return None

    health = wait_for(answered, "GET /healthz to answer")
    assert health.status == 503
    assert health.headers["Content-Length"] == str(len(health.body))
    assert call(web.port, "GET", "/").status == 503  # type: ignore[arg-type]
    assert web.stop() == 0, web.output()
    assert "Traceback" not in web.output()


def test_web_sigterm_finishes_requests_in_flight(database: str, apps: Apps) -> None:
    web = apps.web(database)
    wait_healthy(web)
    assert web.port is not None

    idle = http.client.HTTPConnection("127.0.0.1", web.port, timeout=10)
    assert call(web.port, "GET", "/healthz", conn=idle).status == 200  # now idle, kept alive

    # Hold the counter row, so that a GET / waits in the database: a request in flight.
    with psycopg.connect(database, autocommit=True, connect_timeout=3) as blocker:
        blocker.execute("BEGIN")
        blocker.execute("SELECT value FROM counters WHERE name = 'visits' FOR UPDATE")
        busy = http.client.HTTPConnection("127.0.0.1", web.port, timeout=10)
        busy.request("GET", "/")
        wait_for(
            lambda: query(
                database,
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name = 'shop-web' AND wait_event_type = 'Lock'",
            ),
            "GET / to wait on the locked counter",
        )
        web.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: "finishing requests in flight" in web.output(), "the SIGTERM")

        # The idle connection is closed by the server, without waiting for the client.
        assert idle.sock is not None
        assert idle.sock.recv(1) == b""
        idle.close()
        assert web.proc.poll() is None  # still answering the request in flight
        blocker.execute("COMMIT")

    response = busy.getresponse()
    body = response.read()
    busy.close()
    assert response.status == 200
    assert response.headers["Connection"] == "close"
    assert response.headers["Content-Length"] == str(len(body))
    assert web.proc.wait(timeout=10) == 0, web.output()
    assert "stopped" in web.output()
