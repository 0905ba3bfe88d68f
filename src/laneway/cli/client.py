"""The CLI's HTTP client: finds the server (LANEWAY_URL/LANEWAY_TOKEN or the client config),
turns problem+json answers into laneway errors and connection failures into a plain message.

httpx is imported when the first client is made, not with this module: importing it takes
longer than the rest of a command's start-up, and `laneway --help` makes no request.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from laneway.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    LanewayError,
    NotFound,
    Unauthorized,
    Unavailable,
)

if TYPE_CHECKING:
    import httpx

BY_STATUS: dict[int, type[LanewayError]] = {
    400: InvalidInput,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    503: Unavailable,
}


class ApiPath(str):
    """A path under /api/v1, as `path` makes it; the client takes no other kind of path."""


def path(*segments: str | int) -> ApiPath:
    """The API path of `segments`, each percent-encoded whole: a name with '/', '?', '#' or
    '%' in it stays one segment, and '.' or '..' is sent as %2E/%2E%2E, which no client or
    proxy on the way resolves as a step up. `path("apps", app, "environments", name)`."""
    parts = []
    for segment in segments:
        text = str(segment)
        if not text:
            raise ValueError(f"an empty segment in the API path {segments!r}")
        quoted = quote(text, safe="")
        parts.append("%2E" * len(quoted) if quoted in (".", "..") else quoted)
    return ApiPath("/" + "/".join(parts))


def _home() -> Path:
    return Path(os.environ.get("LANEWAY_HOME") or Path.home() / ".laneway").expanduser()


def find_server() -> tuple[str, str]:
    url = os.environ.get("LANEWAY_URL")
    token = os.environ.get("LANEWAY_TOKEN")
    config_path = _home() / "client.json"
    if (not url or not token) and config_path.exists():
        try:
            config = json.loads(config_path.read_text())
        except (OSError, ValueError):
            config = None
        if not isinstance(config, dict):
            raise InvalidInput(
                f"{config_path}: not a client config (expected a JSON object with url and token)"
            )
        url = url or config.get("url")
        token = token or config.get("token")
    if not url:
        raise Unavailable(
            "no laneway server configured",
            hint="start one with `laneway server`, or set LANEWAY_URL and LANEWAY_TOKEN",
        )
    if not token:
        raise Unauthorized(f"no token for {url}", hint="set LANEWAY_TOKEN")
    if not _plain_url(url):
        where = "LANEWAY_URL" if os.environ.get("LANEWAY_URL") else str(config_path)
        raise InvalidInput(
            f"{where}: expected the server's URL such as http://127.0.0.1:7070, got {url!r}"
        )
    return url.rstrip("/"), token


def _plain_url(url: str) -> bool:
    """Whether `url` is an http(s) URL with a host, a valid port if any, and no query,
    fragment or whitespace: what the API's address looks like."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is not one)
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and not parts.query
        and not parts.fragment
        and not any(c.isspace() for c in url)
    )


def raise_problem(response: httpx.Response) -> None:
    """A laneway error for an answer that is not a success. An answer that is not JSON comes
    from something other than laneway's API (the router, another server): said so in one
    line, never its body (a page of HTML)."""
    if response.status_code < 400:
        return
    body = _json_body(response)
    if not isinstance(body, dict):
        raise _not_the_api(response)
    detail, hint = body.get("detail") or response.reason_phrase, body.get("hint")
    error = BY_STATUS.get(response.status_code, LanewayError)
    raise error(str(detail), hint=hint)


def _json_body(response: httpx.Response) -> Any:
    """The answer's JSON, or None where it has none (or says it is something else)."""
    if "json" not in response.headers.get("content-type", "application/json"):
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _not_the_api(response: httpx.Response) -> LanewayError:
    what = response.headers.get("content-type", "no content type").split(";")[0]
    server = f"{response.url.scheme}://{response.url.netloc.decode()}"
    message = (
        f"{server} answered {response.status_code} {response.reason_phrase} with {what}, "
        "not laneway's API"
    )
    if response.status_code >= 500:
        return Unavailable(message, hint="a proxy in front of laneway may have failed")
    return InvalidInput(
        message,
        hint="LANEWAY_URL (or the client config) must be the API's address, which "
        "`laneway server` prints (not the router's)",
    )


class Client:
    def __init__(self, url: str | None = None, token: str | None = None) -> None:
        if url is None or token is None:
            url, token = find_server()
        import httpx

        self.url = url
        # every request goes to `url` (paths only, no redirects followed): over http:// there
        # is no TLS to verify, and loading the CA bundle would cost a tenth of the start-up
        tls = url.startswith("https://")
        self.http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30, verify=tls
        )

    @contextlib.contextmanager
    def _translated(self) -> Iterator[None]:
        """httpx's errors as laneway's: the server is down, or the connection broke."""
        import httpx

        try:
            yield
        except httpx.ConnectError:
            raise Unavailable(
                f"cannot reach the laneway server at {self.url}",
                hint="is `laneway server` running? (LANEWAY_URL / LANEWAY_HOME say which)",
            ) from None
        except (httpx.InvalidURL, httpx.UnsupportedProtocol):
            raise InvalidInput(
                f"{self.url}: expected the server's URL such as http://127.0.0.1:7070"
            ) from None
        except httpx.HTTPError as exc:
            raise Unavailable(f"talking to {self.url} failed: {exc.__class__.__name__}") from None

    def request(self, method: str, path: ApiPath, **kwargs: Any) -> Any:
        with self._translated():
            response = self.http.request(method, _url(path), **kwargs)
        raise_problem(response)
        body = _json_body(response)
        if body is None:
            raise _not_the_api(response)
        return body

    def stream(self, method: str, path: ApiPath, **kwargs: Any) -> Iterator[str]:
        """Lines of a streamed answer (server-sent events or plain text)."""
        with (
            self._translated(),
            self.http.stream(method, _url(path), timeout=None, **kwargs) as response,
        ):
            if response.status_code >= 400:
                response.read()
                raise_problem(response)
            yield from response.iter_lines()

    def close(self) -> None:
        self.http.close()

    def events(self, method: str, path: ApiPath, **kwargs: Any) -> Iterator[Event]:
        """The events of a server-sent event stream, each one's data parsed as JSON. httpx-sse
        reads the stream as the SSE standard says: ids, comments, `retry:`, data over several
        `data:` lines joined with newlines, and any line ending."""
        from httpx_sse import connect_sse

        with (
            self._translated(),
            connect_sse(self.http, method, _url(path), timeout=None, **kwargs) as source,
        ):
            if source.response.status_code >= 400:
                source.response.read()
                raise_problem(source.response)
            for sse in source.iter_sse():
                if not sse.data:  # an event without data is not dispatched (the standard)
                    continue
                yield Event(
                    type=sse.event, data=_json(sse.data, where=f"{path}: {sse.event}"), id=sse.id
                )


def _url(api_path: ApiPath) -> str:
    if not isinstance(api_path, ApiPath):  # mypy says so too; this is for untyped callers
        raise TypeError(f"{api_path!r}: API paths are made with laneway.cli.client.path()")
    return f"/api/v1{api_path}"


@dataclass(frozen=True)
class Event:
    """One server-sent event."""

    type: str
    """`event:`, or `message` where the server gave none."""
    data: Any
    """`data:` parsed as JSON."""
    id: str
    """`id:` (the server's event number), or the last one seen before, or ""."""


def _json(text: str, *, where: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise LanewayError(
            f"{where}: the server sent an event that is not JSON: {text[:80]!r}"
        ) from None
