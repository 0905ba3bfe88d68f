"""The built-in router's own answers: short HTML pages saying what went wrong.

`router.relay` sends one instead of a backend's response when it cannot forward a request
(404 no such host, 503 no healthy replica, 502 no replica reachable, 504 too slow, 400/431
a malformed request). Pure: builds bytes, writes nothing.
"""

from __future__ import annotations

import html
from http import HTTPStatus


def error_page(
    status: int, message: str, *, keep_alive: bool, http10: bool = False, head_only: bool = False
) -> bytes:
    """A complete response: a short HTML page saying what went wrong, in the router's words."""
    phrase = HTTPStatus(status).phrase
    body = (
        f"<!doctype html>\n<title>{status} {phrase}</title>\n<h1>{status} {phrase}</h1>\n"
        f"<p>{html.escape(message, quote=False)}</p>\n<p><small>laneway router</small></p>\n"
    ).encode()
    lines = [
        f"HTTP/1.1 {status} {phrase}",
        "content-type: text/html; charset=utf-8",
        f"content-length: {len(body)}",
        "cache-control: no-store",
    ]
    if not keep_alive:
        lines.append("connection: close")
    elif http10:
        lines.append("connection: keep-alive")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    return head if head_only else head + body
