"""A small HTTP server answering Prometheus's instant query API (`GET /api/v1/query`) with a
value per release: the `release="vN"` label in the query picks it. A real socket on a port
chosen at run time, served by a thread; what it answers can be changed while it runs."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

RELEASE = re.compile(r'release="(v\d+)"')


@dataclass
class FakePrometheus:
    values: dict[str, float | str | None] = field(default_factory=dict)
    """Per release label: a number, a string as Prometheus writes it (`NaN`), or None for no
    data (an empty vector)."""
    error: tuple[int, str, str] | None = None
    """Answer every query with this HTTP status, errorType and error."""
    body: bytes | None = None
    """Answer every query with these bytes as they are."""
    series: int = 1
    """How many series a vector answer holds (more than one: the query was not aggregated)."""
    hold: threading.Event | None = None
    """While set and not yet triggered, a query waits for it before answering."""
    prefix: str = ""
    """The path the API sits under (`/prom`)."""
    queries: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, bytes]:
        if path != f"{self.prefix}/api/v1/query":
            return 404, b"404 page not found\n"
        if self.body is not None:
            return 200, self.body
        if self.error is not None:
            status, kind, message = self.error
            return status, json.dumps(
                {"status": "error", "errorType": kind, "error": message}
            ).encode()
        expression = query.get("query", [""])[0]
        found = RELEASE.search(expression)
        value = self.values.get(found.group(1)) if found else None
        at = float(query.get("time", ["0"])[0])
        result = (
            []
            if value is None
            else [
                {
                    "metric": {"release": found.group(1) if found else "", "n": str(n)},
                    "value": [at, str(value)],
                }
                for n in range(self.series)
            ]
        )
        return 200, json.dumps(
            {"status": "success", "data": {"resultType": "vector", "result": result}}
        ).encode()


@contextmanager
def serving(prometheus: FakePrometheus) -> Iterator[FakePrometheus]:
    """`prometheus` answering on 127.0.0.1 at a free port (its `url`) until the block ends."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            prometheus.queries.append(
                {
                    "path": parts.path,
                    "query": query.get("query", [""])[0],
                    "time": query.get("time", [""])[0],
                    "authorization": self.headers.get("Authorization"),
                }
            )
            if prometheus.hold is not None:
                prometheus.hold.wait()
            status, body = prometheus.answer(parts.path, query)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client stopped reading (an answer too large)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    prometheus.url = f"http://{host!s}:{port}{prometheus.prefix}"
    try:
        yield prometheus
    finally:
        if prometheus.hold is not None:
            prometheus.hold.set()
        server.shutdown()
        server.server_close()
        thread.join()
