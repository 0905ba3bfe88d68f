"""The worker: every second, a heartbeat and the queued jobs.

    DATABASE_URL=postgresql://... python -m shop.worker

Jobs are claimed with SELECT ... FOR UPDATE SKIP LOCKED, so any number of workers can run
side by side. If the database goes away the worker logs it and reconnects with a backoff.
SIGTERM (or SIGINT) ends it after the job in hand, with exit code 0.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading

import psycopg

from shop import connect, log, one_line, require_env

INTERVAL = 1.0  # seconds between heartbeats
BATCH = 100  # jobs at most per tick, so that heartbeats stay regular under load
BACKOFF_MIN, BACKOFF_MAX = 0.5, 5.0


def process(payload: object) -> str:
    """The work itself: here, a summary of what was asked."""
    task = payload.get("task", "noop") if isinstance(payload, dict) else "noop"
    return f"task {task!r} handled ({len(json.dumps(payload))} bytes of payload)"


class Worker:
    def __init__(self, url: str) -> None:
        self.url = url
        self.stopping = threading.Event()
        self.conn: psycopg.Connection | None = None

    def stop(self, *_: object) -> None:
        self.stopping.set()

    def run(self) -> None:
        backoff = BACKOFF_MIN
        while not self.stopping.is_set():
            try:
                if self.conn is None or self.conn.closed:
                    self.conn = connect(self.url, "worker")
                    log("worker", "connected to the database")
                self.tick(self.conn)
                backoff = BACKOFF_MIN
                wait = INTERVAL
            except psycopg.Error as exc:
                self.disconnect()
                log("worker", f"database error: {one_line(exc)}; retrying in {backoff:g}s")
                wait, backoff = backoff, min(backoff * 2, BACKOFF_MAX)
            self.stopping.wait(wait)
        self.disconnect()

    def disconnect(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(psycopg.Error):
                self.conn.close()
            self.conn = None

    def tick(self, conn: psycopg.Connection) -> None:
        conn.execute(
            "INSERT INTO heartbeat (name, pid, beat_at) VALUES ('worker', %s, now()) "
            "ON CONFLICT (name) DO UPDATE SET pid = EXCLUDED.pid, beat_at = EXCLUDED.beat_at",
            (os.getpid(),),
        )
        for _ in range(BATCH):
            if self.stopping.is_set():
                return
            with conn.transaction():
                row = conn.execute(
                    "SELECT id, payload FROM jobs WHERE status = 'queued' "
                    "ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
                ).fetchone()
                if row is None:
                    return
                job_id, payload = row
                result = process(payload)
                conn.execute(
                    "UPDATE jobs SET status = 'done', result = %s, done_at = now() WHERE id = %s",
                    (result, job_id),
                )
            log("worker", f"job {job_id} done: {result}")


def main() -> int:
    worker = Worker(require_env("worker", "DATABASE_URL"))
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    log("worker", f"started (pid {os.getpid()}), heartbeat every {INTERVAL:g}s")
    worker.run()
    log("worker", "stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
