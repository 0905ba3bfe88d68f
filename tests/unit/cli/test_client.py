"""The CLI's client against a real HTTP server on loopback: server-sent events read as the
standard says (ids, multi-line data, comments, any line ending), and problem answers and
broken streams as laneway errors."""

from __future__ import annotations

import datetime
import json
import re
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from laneway.cli.client import Client, Event, path
from laneway.errors import LanewayError, NotFound, Unavailable

# written in pieces that split lines and events, as a server flushing as it goes would
STREAM = [
    b": a comment, then the first event over two data lines\r\n",
    b'id: 7\r\nevent: status\r\ndata: {"phase": "pending",\r\n',
    b'data:  "message": "line one\\nline two"}\r\n\r',
    b"\nretry: 3000\n\n",  # no data: not an event
    b'event: build.output\ndata: {"message": "pip | ok"}\n\n',
    b'id: 8\ndata: {"n": 8}\n',
    b"\n",
    b': ping\n\nevent: end\ndata: {"deleted": true}\n\n',
]


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        assert self.headers["Authorization"] == "Bearer t0ken"
        if self.path == "/api/v1/events":
            self._answer(200, "text/event-stream", STREAM)
        elif self.path == "/api/v1/not-json":
            self._answer(200, "text/event-stream", [b"event: status\ndata: hello\n\n"])
        elif self.path == "/api/v1/plain":
            self._answer(200, "text/plain", [b"not events\n"])
        elif self.path == "/api/v1/page":  # what the router answers for a host it has not
            self._answer(404, "text/html", [b"<!doctype html><html><body>no app</body></html>"])
        elif self.path == "/api/v1/ok-page":
            self._answer(200, "text/html; charset=utf-8", [b"<html>welcome</html>"])
        elif self.path == "/api/v1/proxy-down":
            self._answer(502, "text/html", [b"<html>bad gateway</html>"])
        else:
            problem = {"title": "not found", "detail": "no environment 'x'", "hint": "see env list"}
            self._answer(404, "application/problem+json", [json.dumps(problem).encode()])

    def _answer(self, status: int, content_type: str, chunks: list[bytes]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.end_headers()
        for chunk in chunks:
            self.wfile.write(chunk)
            self.wfile.flush()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def client() -> Iterator[Client]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client = Client(f"http://127.0.0.1:{server.server_address[1]}", "t0ken")
    try:
        yield client
    finally:
        client.close()
        server.shutdown()
        server.server_close()
        thread.join()


def test_events_as_the_standard_reads_them(client: Client) -> None:
    assert list(client.events("GET", path("events"))) == [
        Event(
            type="status",
            data={"phase": "pending", "message": "line one\nline two"},
            id="7",
        ),
        Event(type="build.output", data={"message": "pip | ok"}, id="7"),
        Event(type="message", data={"n": 8}, id="8"),
        Event(type="end", data={"deleted": True}, id="8"),
    ]


def test_a_problem_answer_is_a_laneway_error(client: Client) -> None:
    with pytest.raises(NotFound) as raised:
        list(client.events("GET", path("missing")))
    assert raised.value.message == "no environment 'x'"
    assert raised.value.hint == "see env list"


def test_an_event_that_is_not_json_says_where(client: Client) -> None:
    with pytest.raises(LanewayError, match="/not-json: status: .* not JSON: 'hello'"):
        list(client.events("GET", path("not-json")))


def test_an_answer_that_is_not_an_event_stream_is_refused(client: Client) -> None:
    with pytest.raises(Unavailable, match="failed: SSEError"):
        list(client.events("GET", path("plain")))


def test_no_server_is_unavailable() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    server.server_close()  # the port is free now: nothing listens
    client = Client(f"http://127.0.0.1:{port}", "t0ken")
    with pytest.raises(Unavailable, match="cannot reach the laneway server"):
        list(client.events("GET", path("events")))
    client.close()


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_an_https_server_is_verified(tmp_path: Path) -> None:
    """Over http:// the client loads no CA bundle; over https:// it verifies as usual."""
    cert_file, key_file = self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client = Client(f"https://127.0.0.1:{server.server_address[1]}", "t0ken")
    try:
        with pytest.raises(Unavailable, match="cannot reach"):  # an untrusted certificate
            list(client.events("GET", path("events")))
    finally:
        client.close()
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize(
    "url",
    [
        "nonsense",
        "not-a-url",
        "ftp://host",
        "http://",
        "localhost:7070",
        "http://not a url",
        "http://127.0.0.1:99999",
        "http://[::1",
        "http:///api",
        "http://host:7070/?x=1",
    ],
)
def test_a_malformed_server_url_names_where_it_came_from(
    url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from laneway.cli.client import find_server
    from laneway.errors import InvalidInput

    monkeypatch.setenv("LANEWAY_HOME", str(tmp_path))
    monkeypatch.setenv("LANEWAY_URL", url)
    monkeypatch.setenv("LANEWAY_TOKEN", "t")
    with pytest.raises(InvalidInput, match=r"^LANEWAY_URL: expected the server's URL"):
        find_server()


@pytest.mark.parametrize("where", ["page", "ok-page"])
def test_an_answer_that_is_not_the_api_is_said_in_one_line(client: Client, where: str) -> None:
    """LANEWAY_URL pointing at the router (or any other server): no page of HTML printed."""
    from laneway.errors import InvalidInput

    with pytest.raises(InvalidInput) as raised:
        client.request("GET", path(where))
    assert re.fullmatch(
        r"http://127\.0\.0\.1:\d+ answered (404 Not Found|200 OK) with text/html, "
        "not laneway's API",
        raised.value.message,
    )
    assert raised.value.hint is not None and "not the router's" in raised.value.hint


def test_a_failing_proxy_is_unavailable(client: Client) -> None:
    with pytest.raises(Unavailable, match="answered 502 Bad Gateway with text/html"):
        client.request("GET", path("proxy-down"))
