"""The web service: a page that shows where it runs, a visit counter, and a job queue.

    PORT=8000 DATABASE_URL=postgresql://... python -m shop.web

Routes:
  GET  /healthz    200 "ok" while the database answers SELECT 1, else 503
  GET  /           HTML page; counts a visit; shows the `new-checkout` flag for ?user=NAME
  GET  /api/info   the same as JSON (does not count a visit)
  POST /api/jobs   enqueues a job (optional JSON object body); 202 {"id": ..., "status": "queued"}

HTTP/1.1 with keep-alive, a Content-Length on every response, one log line per request.
SIGTERM (or SIGINT) stops accepting, lets requests in flight finish, closes idle
connections and exits 0.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import random
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import psycopg

from shop import connect, fail, flags, log, one_line, require_env

HOST = "127.0.0.1"
MAX_BODY = 64 * 1024
IDLE_TIMEOUT = 60  # seconds a connection may sit idle (or a client may dawdle mid-request)
POOL_SIZE = 8  # idle database connections kept for reuse

T = TypeVar("T")


class Pool:
    """A small lock-protected pool of autocommit connections."""

    def __init__(self, url: str, size: int = POOL_SIZE) -> None:
        self.url = url
        self.size = size
        self._idle: list[psycopg.Connection] = []
        self._lock = threading.Lock()

    @contextmanager
    def _connection(self) -> Iterator[tuple[psycopg.Connection, bool]]:
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        reused = conn is not None
        if conn is None:
            conn = connect(self.url, "web")
        try:
            yield conn, reused
        except BaseException:
            conn.close()  # its state is unknown: never hand it out again
            raise
        with self._lock:
            if len(self._idle) < self.size and not conn.closed:
                self._idle.append(conn)
                conn = None
        if conn is not None:
            conn.close()

    def run(self, work: Callable[[psycopg.Connection], T]) -> T:
        """work(conn). A pooled connection found dead (the server restarted) is dropped and the
        work retried, on a fresh connection at the latest once the stale ones are gone."""
        while True:
            reused = False
            try:
                with self._connection() as (conn, reused):
                    return work(conn)
            except psycopg.OperationalError:
                if not reused:
                    raise

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


# One round trip each. Visits are counted with UPDATE ... RETURNING: atomic under any load.
COUNT_VISIT = """
WITH counted AS (UPDATE counters SET value = value + 1 WHERE name = 'visits' RETURNING value)
SELECT (SELECT value FROM counted),
       (SELECT max(beat_at) FROM heartbeat),
       (SELECT count(*) FROM jobs WHERE status = 'done')
"""
READ_INFO = """
SELECT (SELECT value FROM counters WHERE name = 'visits'),
       (SELECT max(beat_at) FROM heartbeat),
       (SELECT count(*) FROM jobs WHERE status = 'done')
"""


def short(value: str, length: int) -> str:
    """A digest or commit id, shortened (`sha256:` and the like dropped)."""
    return value.rpartition(":")[2][:length]


def info(count_visit: bool, pool: Pool) -> dict[str, Any]:
    def query(conn: psycopg.Connection) -> tuple[Any, ...]:
        row = conn.execute(COUNT_VISIT if count_visit else READ_INFO).fetchone()
        assert row is not None
        return row

    visits, heartbeat, jobs_done = pool.run(query)
    if visits is None:
        raise NotMigrated
    env = os.environ.get
    return {
        "app": env("LANEWAY_APP", ""),
        "environment": env("LANEWAY_ENV", ""),
        "kind": env("LANEWAY_ENV_KIND", ""),
        "release": env("LANEWAY_RELEASE", ""),
        "build": short(env("LANEWAY_BUILD", ""), 12),
        "branch": env("LANEWAY_BRANCH", ""),
        "commit": short(env("LANEWAY_COMMIT", ""), 7),
        "visits": visits,
        "worker_heartbeat": heartbeat.isoformat() if heartbeat else None,
        "jobs_done": jobs_done,
        "pid": os.getpid(),
    }


def misbehave() -> bool:
    """What a bad release does, to try canaries with: `SHOP_DELAY_MS` slows every answer but
    the health check, `SHOP_ERROR_RATE` (percent) answers that share of them with a 500."""
    delay = float(os.environ.get("SHOP_DELAY_MS") or 0)
    if delay > 0:
        time.sleep(delay / 1000)
    rate = float(os.environ.get("SHOP_ERROR_RATE") or 0)
    return rate > 0 and random.random() * 100 < rate


class NotMigrated(Exception):
    """The schema is missing: the release hook (python -m shop.migrate) has not run."""


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{app} · {environment}</title>
<style>
body {{ font: 16px/1.5 system-ui, sans-serif; margin: 3rem auto; max-width: 40rem; }}
th {{ text-align: left; padding-right: 2rem; font-weight: 500; color: #555; }}
code {{ font-size: 0.95em; }}
</style>
</head>
<body>
<h1>{app}</h1>
<table>
<tr><th>environment</th><td>{environment} <small>({kind})</small></td></tr>
<tr><th>release</th><td>{release}</td></tr>
<tr><th>build</th><td><code>{build}</code></td></tr>
<tr><th>branch</th><td>{branch}</td></tr>
<tr><th>commit</th><td><code>{commit}</code></td></tr>
<tr><th>visits</th><td id="visits">{visits}</td></tr>
<tr><th>worker heartbeat</th><td id="heartbeat">{worker_heartbeat}</td></tr>
<tr><th>jobs done</th><td id="jobs">{jobs_done}</td></tr>
<tr><th>served by</th><td>pid {pid}</td></tr>
<tr><th>checkout</th><td id="checkout">{checkout}</td></tr>
</table>
<p><button id="enqueue">Enqueue a job</button> <span id="queued"></span></p>
<script>
document.getElementById("enqueue").onclick = async () => {{
  const r = await fetch("/api/jobs", {{method: "POST", body: JSON.stringify({{task: "demo"}})}});
  const job = await r.json();
  document.getElementById("queued").textContent = "job " + job.id + " queued";
}};
</script>
</body>
</html>
"""


def render(data: dict[str, Any]) -> str:
    shown = dict(data)
    beat = data["worker_heartbeat"]
    if beat is None:
        shown["worker_heartbeat"] = "never (is the worker running?)"
    else:
        age = dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(beat)
        shown["worker_heartbeat"] = f"{beat} ({max(age.total_seconds(), 0):.0f} s ago)"
    return PAGE.format(**{k: html.escape(str(v) if v != "" else "-") for k, v in shown.items()})


class Server(ThreadingHTTPServer):
    """Tracks its connections so that a stop can close the idle ones and wait for the rest."""

    request_queue_size = 128  # a router opening many connections at once to a new replica
    daemon_threads = False
    block_on_close = True  # server_close() joins the handler threads

    def __init__(self, address: tuple[str, int], pool: Pool) -> None:
        self.pool = pool
        self.stopping = False
        self._lock = threading.Lock()
        self._connections: dict[Handler, bool] = {}  # handler -> idle
        self._closed: set[Handler] = set()
        super().__init__(address, Handler)

    def track(self, handler: Handler, *, idle: bool) -> bool:
        """Records a connection as idle or busy; False when it must close instead."""
        with self._lock:
            if handler in self._closed or (idle and self.stopping):
                return False
            self._connections[handler] = idle
            return True

    def forget(self, handler: Handler) -> None:
        with self._lock:
            self._connections.pop(handler, None)
            self._closed.discard(handler)

    def close_idle(self) -> None:
        """After serve_forever() returned: no more requests on idle keep-alive connections."""
        with self._lock:
            self.stopping = True
            for handler, idle in self._connections.items():
                if idle:
                    self._closed.add(handler)
                    with suppress(OSError):
                        handler.connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):  # the client went away: not worth a traceback
            log("web", f"connection from {client_address[0]}: {one_line(exc)}")
        else:
            super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body go out in two writes: without this, Nagle's algorithm and the peer's
    # delayed ACK hold the body back ~40 ms on every keep-alive response
    disable_nagle_algorithm = True
    server_version = "shop/1.0"
    timeout = IDLE_TIMEOUT
    server: Server

    # Connection bookkeeping: idle while waiting for a request line, busy from there on.

    def handle_one_request(self) -> None:
        if not self.server.track(self, idle=True):
            self.close_connection = True
            return
        super().handle_one_request()

    def parse_request(self) -> bool:
        self.started = time.perf_counter()
        self.status, self.size = 0, 0
        if not self.server.track(self, idle=False):
            self.close_connection = True
            return False
        return super().parse_request()

    def finish(self) -> None:
        self.server.forget(self)
        super().finish()

    # Routing.

    def do_GET(self) -> None:
        self.dispatch({"/healthz": self.healthz, "/": self.page, "/api/info": self.api_info})

    def do_POST(self) -> None:
        self.dispatch({"/api/jobs": self.enqueue})

    def dispatch(self, routes: dict[str, Callable[[], None]]) -> None:
        path = urlsplit(self.path).path
        try:
            if path != "/healthz" and misbehave():
                self.reply(500, "internal error (SHOP_ERROR_RATE)\n")
            elif path in routes:
                routes[path]()
            elif path in ("/healthz", "/", "/api/info", "/api/jobs"):
                allow = "POST" if path == "/api/jobs" else "GET"
                self.reply(405, f"method not allowed; use {allow}\n", headers={"Allow": allow})
            else:
                self.reply(404, "not found\n")
        except NotMigrated:
            log("web", "database has no schema: has the release hook (shop.migrate) run?")
            self.reply(503, "database not migrated\n")
        except psycopg.Error as exc:
            log("web", f"database error: {one_line(exc)}")
            self.reply(503, "database unavailable\n")
        except OSError:
            raise  # the client went away; Server.handle_error logs it
        except Exception:
            traceback.print_exc()
            self.reply(500, "internal error\n")
        elapsed = (time.perf_counter() - self.started) * 1000
        log(
            "web",
            f'{self.client_address[0]} "{self.requestline}" {self.status} {self.size} '
            f"{elapsed:.1f}ms",
        )

    def healthz(self) -> None:
        def ping(conn: psycopg.Connection) -> None:
            conn.execute("SELECT 1").fetchone()

        try:
            self.server.pool.run(ping)
        except psycopg.Error as exc:
            self.reply(503, f"database unavailable: {one_line(exc)}\n")
            return
        self.reply(200, "ok\n")

    def page(self) -> None:
        data = info(True, self.server.pool)
        user = parse_qs(urlsplit(self.path).query).get("user", ["anonymous"])[0]
        data["checkout"] = "new" if flags.enabled("new-checkout", user) else "classic"
        self.reply(200, render(data), "text/html; charset=utf-8")

    def api_info(self) -> None:
        self.reply_json(200, info(False, self.server.pool))

    def enqueue(self) -> None:
        payload = self.read_json()
        if payload is None:
            return

        def insert(conn: psycopg.Connection) -> int:
            row = conn.execute(
                "INSERT INTO jobs (payload) VALUES (%s) RETURNING id", (json.dumps(payload),)
            ).fetchone()
            assert row is not None
            return int(row[0])

        job_id = self.server.pool.run(insert)
        log("web", f"job {job_id} queued")
        self.reply_json(202, {"id": job_id, "status": "queued"})

    def read_json(self) -> dict[str, Any] | None:
        """The request body as a JSON object ({} when empty); None after replying with an error."""
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            self.reply(411, "send a Content-Length, not a chunked body\n")
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.close_connection = True  # the body is left unread
            self.reply(413 if length > MAX_BODY else 400, "bad Content-Length\n")
            return None
        body = self.rfile.read(length) if length else b""
        if not body.strip():
            return {}
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self.reply(400, f"body is not JSON: {exc}\n")
            return None
        if not isinstance(payload, dict):
            self.reply(400, "body must be a JSON object\n")
            return None
        return payload

    # Responses.

    def reply_json(self, code: int, data: object) -> None:
        self.reply(code, json.dumps(data) + "\n", "application/json")

    def reply(
        self,
        code: int,
        body: str,
        content_type: str = "text/plain; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        data = body.encode()
        if self.server.stopping:
            self.close_connection = True
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.status, self.size = code, len(data)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # dispatch() logs each request once it is answered, with its duration

    def log_message(self, format: str, *args: Any) -> None:
        log("web", f"{self.address_string()} {format % args}")


def main() -> int:
    port_text = require_env("web", "PORT")
    try:
        port = int(port_text)
        if not 0 < port < 65536:
            raise ValueError
    except ValueError:
        raise fail("web", f"PORT must be a port number, not {port_text!r}", code=2) from None
    pool = Pool(require_env("web", "DATABASE_URL"))
    try:
        server = Server((HOST, port), pool)
    except OSError as exc:
        raise fail("web", f"cannot listen on {HOST}:{port}: {exc.strerror}") from None

    def stop(signum: int, _frame: object) -> None:
        log("web", f"{signal.Signals(signum).name}: finishing requests in flight")
        # shutdown() waits for serve_forever(), which runs in this very thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log("web", f"listening on http://{HOST}:{port} (pid {os.getpid()})")
    flags.client()
    server.serve_forever(poll_interval=0.2)
    server.close_idle()
    server.server_close()  # joins the handler threads: requests in flight are answered
    pool.close()
    log("web", "stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
