"""Request and response heads as the built-in router passes them on.

`router.proxy` calls `rewrite_request` once per request (from `on_headers_complete`) and
`router.relay` calls `rewrite_response` once per response head a backend sends. Both copy
headers through except the hop-by-hop ones (`Connection`, `Keep-Alive`, `TE`, `Upgrade`, ...
and whatever a `Connection` header nominates) and the framing ones, which the proxy decides
itself; the request also gets X-Forwarded-For/-Proto/-Host. Hot path: the name sets below
are built once, at import, status lines are cached, and each head is one pass over its
headers (two when a `Connection` header nominates more). Pure: no I/O, no clock, no logging.
"""

from __future__ import annotations

from laneway.router.exchange import Exchange

# Request headers the proxy reads or replaces rather than copies as they are.
_REQUEST_SPECIAL = frozenset(
    {
        b"host",
        b"content-length",
        b"transfer-encoding",
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"upgrade",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
    }
)
_RESPONSE_SPECIAL = frozenset(
    {
        b"content-length",
        b"transfer-encoding",
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"upgrade",
    }
)
_CONNECTION_OPTIONS = frozenset({b"close", b"keep-alive", b"upgrade"})
_NO_DROP: frozenset[bytes] = frozenset()

_status_lines: dict[tuple[int, bytes], bytes] = {}


def absolute_form(url: bytes) -> tuple[bytes, bytes]:
    """The origin form and the authority of an absolute-form request target.

    `http://other.host:8080/p?q` is `(b"/p?q", b"other.host:8080")`: RFC 9112 §3.2.2 has the
    server take the host from the target, not from the Host header. Raises ValueError
    naming the problem for a target that is neither.
    """
    scheme, sep, rest = url.partition(b"://")
    if not sep or scheme.lower() not in (b"http", b"https"):
        raise ValueError("the request target is neither a path nor an http:// URL")
    end = len(rest)
    for mark in (b"/", b"?", b"#"):
        found = rest.find(mark, 0, end)
        if found >= 0:
            end = found
    authority, target = rest[:end], rest[end:]
    if not authority or b"@" in authority:
        raise ValueError("the request target's URL has no host, or has user information")
    if not target.startswith(b"/"):
        target = b"/" + target
    return target, authority


def rewrite_request(
    ex: Exchange,
    url: bytes,
    client_ip: bytes,
    headers: list[tuple[bytes, bytes]],
    drop: frozenset[bytes] = _NO_DROP,
    authority: bytes | None = None,
) -> tuple[list[bytes], bytes | None]:
    """Build the head the backend gets into `ex.head`; returns its parts and the host to
    route by.

    The host is the Host header, or `authority` when given (the request target's, which
    the backend then gets as its Host). Also sets `ex.has_body` and `ex.chunked` from the
    framing headers, and `ex.error` when the request has more than one Host. The parts
    from `LINE_PARTS` on are the header block, which depends only on the headers, the
    client's address, `authority` and `ex.upgrade`: a connection may reuse it for a
    request that repeats all four (`router.repeat`).
    """
    out = [ex.method, b" ", url, b" HTTP/1.1\r\n"]
    if authority is not None:
        out += (b"host: ", authority, b"\r\n")
    host = forwarded_for = upgrade = None
    nominated = None
    for name, value in headers:
        lname = name.lower()
        if lname in _REQUEST_SPECIAL:
            if lname == b"host":
                if host is not None:  # which one would the app believe? neither
                    ex.error = (400, "The request has more than one Host header.")
                host = value
                if authority is not None:
                    continue
            elif lname == b"content-length":
                ex.has_body = value.strip() != b"0"
            elif lname == b"transfer-encoding":
                ex.chunked = ex.has_body = True  # llhttp accepts only a chunked request body
            elif lname == b"x-forwarded-for":
                forwarded_for = value if forwarded_for is None else forwarded_for + b", " + value
                continue
            elif lname == b"connection":
                nominated = _nominated(value, nominated)
                continue
            elif lname == b"upgrade":
                upgrade = value
                continue
            else:
                continue
        elif drop and lname in drop:
            continue
        out += (name, b": ", value, b"\r\n")
    if nominated and not drop:
        return rewrite_request(ex, url, client_ip, headers, frozenset(nominated), authority)
    if authority is not None:
        host = authority
    if ex.upgrade and upgrade is not None:
        out += (b"connection: upgrade\r\nupgrade: ", upgrade, b"\r\n")
    out += (
        b"x-forwarded-for: ",
        forwarded_for + b", " + client_ip if forwarded_for else client_ip,
        b"\r\nx-forwarded-proto: http\r\n",
    )
    if host is not None:
        out += (b"x-forwarded-host: ", host, b"\r\n")
    out.append(b"\r\n")
    ex.head = b"".join(out)
    return out, host


LINE_PARTS = 4
"""How many of `rewrite_request`'s parts make the request line."""


def request_line(method: bytes, url: bytes) -> bytes:
    return b"%b %b HTTP/1.1\r\n" % (method, url)


def rewrite_response(
    status: int, reason: bytes, headers: list[tuple[bytes, bytes]]
) -> tuple[list[bytes], bool, bool, bytes | None]:
    """The start of the head the client gets: status line and the headers copied through.

    Returns those parts (unterminated: the proxy appends its own framing and the blank
    line), whether the backend sent Content-Length, whether it sent Transfer-Encoding, and
    its Upgrade header. Content-Length is copied; the other framing headers are not.
    """
    key = (status, reason)
    line = _status_lines.get(key)
    if line is None:
        line = b"HTTP/1.1 %d %s\r\n" % (status, reason)
        if len(_status_lines) < 512:
            _status_lines[key] = line
    out = [line]
    length = chunked = False
    upgrade = None
    nominated = None
    for name, value in headers:
        lname = name.lower()
        if lname in _RESPONSE_SPECIAL:
            if lname == b"content-length":
                length = True
            elif lname == b"transfer-encoding":
                chunked = True
                continue
            elif lname == b"connection":
                nominated = _nominated(value, nominated)
                continue
            elif lname == b"upgrade":
                upgrade = value
                continue
            else:
                continue
        out += (name, b": ", value, b"\r\n")
    if nominated:
        drop = frozenset(nominated)
        out = [line] + [
            part
            for name, value in headers
            if (lname := name.lower()) not in drop
            and (lname not in _RESPONSE_SPECIAL or lname == b"content-length")
            for part in (name, b": ", value, b"\r\n")
        ]
    return out, length, chunked, upgrade


def _nominated(value: bytes, found: set[bytes] | None) -> set[bytes] | None:
    """Header names a Connection header lists beyond its usual options: hop-by-hop too."""
    for token in value.split(b","):
        token = token.strip().lower()
        if token and token not in _CONNECTION_OPTIONS:
            found = found or set()
            found.add(token)
    return found
