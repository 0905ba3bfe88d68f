"""The API's edge, at the byte level on a real server: the caller (an API token, or an OFREP
client key) is checked before a byte of the body is read; bodies are capped per route, with a
Content-Length or chunked; a 405 says `Allow`; followed streams end."""

from __future__ import annotations

import json
import select
import socket
from urllib.parse import urlsplit

import psutil
import pytest
from httpx_sse import connect_sse

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
CHUNK = 64 * 1024


def connect(world) -> socket.socket:
    address = urlsplit(world.server.url)
    sock = socket.create_connection((address.hostname, address.port))
    # a guard against a server that never answers: the test fails instead of hanging
    sock.settimeout(60)
    return sock


def head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: laneway",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str], dict]:
    data = b""
    while b"\r\n\r\n" not in data:
        got = sock.recv(65536)
        assert got, f"the server closed the connection without an answer: {data!r}"
        data += got
    top, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = top.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        got = sock.recv(65536)
        assert got, "the server closed the connection in the middle of its answer"
        body += got
    return int(status_line.split()[1]), headers, json.loads(body[:length]) if length else {}


def send_until_answered(sock: socket.socket, total: int) -> int:
    """Send up to `total` body bytes, stopping as soon as an answer can be read (or the
    server stopped reading); the bytes sent."""
    sock.setblocking(False)
    sent = 0
    chunk = b"x" * CHUNK
    try:
        while sent < total:
            readable, writable, _ = select.select([sock], [sock], [], 60)
            assert readable or writable, "the server neither read nor answered"
            if readable:
                break
            try:
                sent += sock.send(chunk[: total - sent])
            except BlockingIOError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
    finally:
        sock.setblocking(True)
        sock.settimeout(60)
    return sent


def test_an_unauthenticated_100_mb_body_is_answered_401_unread(flag_world):
    server = psutil.Process(flag_world.server.process.pid)
    before = server.memory_info().rss
    total = 100 * MiB
    with connect(flag_world) as sock:
        sock.sendall(
            head(
                "POST",
                "/api/v1/apps/shop/environments",
                {"Content-Type": "application/json", "Content-Length": str(total)},
            )
        )
        sent = send_until_answered(sock, total)
        status, headers, body = read_answer(sock)
    assert status == 401, body
    assert headers["content-type"] == "application/problem+json"
    assert headers["www-authenticate"] == "Bearer"
    assert body["detail"].startswith("missing token")
    # the answer came while the body was still being sent: the server did not wait for it
    assert sent < total
    # a sanity bound only: before the fix the server grew by about three times the body
    assert server.memory_info().rss - before < 50 * MiB


def test_an_ofrep_body_is_read_only_after_the_client_key_is_checked(flag_world):
    total = 100 * MiB
    for headers, status in (({}, 401), ({"Authorization": "Bearer lwf_nope"}, 401)):
        with connect(flag_world) as sock:
            sock.sendall(
                head("POST", "/ofrep/v1/evaluate/flags", {**headers, "Content-Length": str(total)})
            )
            sent = send_until_answered(sock, total)
            answer, _, body = read_answer(sock)
        assert answer == status, body
        assert sent < total


def test_an_authenticated_body_over_the_limit_is_413_with_or_without_a_length(flag_world):
    token = flag_world.server.token()
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with connect(flag_world) as sock:
        sock.sendall(
            head("POST", "/api/v1/apps/shop/environments", {**auth, "Content-Length": str(2 * MiB)})
        )
        status, headers, body = read_answer(sock)  # not a byte of the body sent
    assert status == 413, body
    assert headers["content-type"] == "application/problem+json"
    assert "limit of 1048576 bytes (1 MiB)" in body["detail"]

    # chunked, with no end: the server stops after the limit and answers
    with connect(flag_world) as sock:
        sock.sendall(
            head(
                "POST",
                "/api/v1/apps/shop/environments",
                {**auth, "Transfer-Encoding": "chunked"},
            )
        )
        sock.setblocking(False)
        sent = 0
        chunk = f"{CHUNK:x}\r\n".encode() + b"x" * CHUNK + b"\r\n"
        while True:
            readable, writable, _ = select.select([sock], [sock], [], 60)
            assert readable or writable
            if readable:
                break
            try:
                sock.sendall(chunk)
                sent += CHUNK
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                break
            assert sent <= 100 * MiB, "the server kept reading a chunked body past its limit"
        sock.setblocking(True)
        sock.settimeout(60)
        status, _, body = read_answer(sock)
    assert status == 413, body
    assert "1 MiB" in body["detail"]


def test_the_flag_import_takes_a_larger_body(flag_world):
    """An indented flagd document may be larger than 1 MiB (its compact JSON may not)."""
    document = {
        "$schema": "https://flagd.dev/schema/v0/flags.json",
        "flags": {"big": {"state": "ENABLED", "variants": {"on": True}, "defaultVariant": "on"}},
    }
    indented = json.dumps(document, indent=2).encode()
    url = "/api/v1/apps/shop/environments/staging/flagset"
    headers = {"Content-Type": "application/json"}
    with flag_world.http() as http:
        body = indented + b" " * (2 * MiB)
        response = http.put(url, content=body, headers=headers)
        assert response.status_code == 200, response.text[:500]
        # over its own limit, it too is refused
        body = indented + b" " * (5 * MiB)
        response = http.put(url, content=body, headers=headers)
        assert response.status_code == 413, response.text[:500]
        assert "4 MiB" in response.json()["detail"]
        # and any other body over 1 MiB
        response = http.patch(
            "/api/v1/apps/shop/environments/staging/flags/big",
            content=b'{"state": "ENABLED"}' + b" " * (2 * MiB),
            headers=headers,
        )
        assert response.status_code == 413, response.text[:500]


def test_a_method_the_path_does_not_take_is_405_with_allow(flag_world):
    with flag_world.http() as http:
        response = http.delete("/api/v1/apps/shop")
        assert response.status_code == 405, response.text
        assert response.headers["allow"] == "PUT"
        assert response.headers["content-type"] == "application/problem+json"
        response = http.patch("/api/v1/apps/shop/environments/staging/flagset")
        assert response.status_code == 405
        assert set(response.headers["allow"].split(", ")) == {"GET", "PUT"}


def test_a_followed_stream_ends_after_its_timeout(flag_world):
    url = "/api/v1/apps/shop/environments/staging/events"
    params = {"follow": "true", "after": "-1", "timeout": "0.5"}
    with flag_world.http() as http, connect_sse(http, "GET", url, params=params) as source:
        kinds = [event.event for event in source.iter_sse()]
    assert kinds[-1] == "timeout"
    assert set(kinds[:-1]) <= {"status"}

    url = "/api/v1/apps/shop/environments/staging/logs"
    with flag_world.http() as http:
        response = http.get(url, params={"follow": "true", "timeout": "0.5"})
    assert response.status_code == 200
