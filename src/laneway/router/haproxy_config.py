"""A routing table as HAProxy configuration: the config file and the split map. Pure text.

`router.haproxy` writes what this renders and drives HAProxy through its runtime API. The
table splits in two parts:

- **the config** (`render_config`): the frontend, one backend per (route, pool) named
  `<hostname>:<release>` with the pool's servers, and the rules that compute each
  request's pool. It changes only when the set of routes, pools, servers or the names of
  the split's headers and cookies changes; HAProxy then reloads (master-worker, seamless).
- **the split map** (`render_map`): one entry per hostname whose value holds everything
  that a weight step changes, so that a step is one `set map` command without a reload.
  Its fields, separated by `:`: whether the route splits (two or more pools of weight
  above zero), the offset, the pool a forced client goes to (`always`, then `never`; -1:
  none), the pools' edges in turned buckets, and the release each pool's requests are
  sent to (`-` for none: a 503).

The rules realize `core.routing`'s split the way the built-in router does (`router.table`):
the force header, else the force cookie (`always`/`never`, any case); else the bucket from
the hash header, else the hash cookie (`crc32,mod(10000)`: zlib's CRC-32, the value
`routing.bucket_of` gives), else laneway's bucket cookie (1 to 4 digits), else
`rand(10000)` and a Set-Cookie; the bucket turned by the offset; the pool the number of
edges at or below it. Weights are basis points, so the split's granularity is 0.01%
(HAProxy's server weights, which stop at 256, are not used for it).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from laneway.core import routing

SPLIT_MAP = "splits.map"
COOKIE_MAX_AGE = 30 * 24 * 3600
"""What the built-in router gives its bucket cookie too (`router.relay`)."""

_NAME = re.compile(r"[A-Za-z0-9._-]+\Z")
_RELEASE = re.compile(r"[A-Za-z0-9._-]+\Z")


class ConfigError(ValueError):
    """A table HAProxy cannot be given as it is (a name with characters its config refuses)."""


@dataclass(frozen=True)
class Paths:
    """Where the config points HAProxy at: its runtime socket, the split map, the log socket."""

    stats_socket: str
    split_map: str
    log_socket: str | None = None


def backend_name(hostname: str, release: str) -> str:
    return f"{hostname}:{release}"


def parse_backend_name(name: str) -> tuple[str, str] | None:
    """(hostname, release) of a backend `backend_name` made; None for HAProxy's own."""
    hostname, sep, release = name.rpartition(":")
    return (hostname, release) if sep and hostname and release else None


def max_pools(table: routing.RoutingTable) -> int:
    return max((len(route.pools) for route in table.routes.values()), default=1) or 1


def render_map(table: routing.RoutingTable) -> dict[str, str]:
    """The split map: hostname -> fields (module docstring), padded to the table's most pools."""
    width = max_pools(table)
    return {hostname: _map_value(route, width) for hostname, route in sorted(table.routes.items())}


def map_text(entries: dict[str, str]) -> str:
    return "".join(f"{key} {value}\n" for key, value in entries.items())


def _map_value(route: routing.Route, width: int) -> str:
    pools = route.pools
    weighted = [index for index, pool in enumerate(pools) if pool.weight > 0]
    serving = [index for index in weighted if pools[index].backends]

    def served(index: int) -> str:
        """The release that takes pool `index`'s requests: its own, or one with backends."""
        if index not in weighted:
            return "-"
        if pools[index].backends:
            return pools[index].release
        return pools[serving[0]].release if serving else "-"

    def forced(role: str) -> int:
        return next((index for index in weighted if pools[index].role == role), -1)

    splits = len(weighted) > 1
    edges, edge = [], 0
    for index in range(width - 1):
        edge += pools[index].weight if index < len(pools) else 0
        later = any(other > index for other in weighted)
        edges.append(min(edge, routing.WEIGHT_SCALE) if later else routing.WEIGHT_SCALE)
    fields = [
        "1" if splits else "0",
        str(route.split.offset % routing.WEIGHT_SCALE),
        str(forced(routing.CANARY) if splits else -1),
        str(forced(routing.STABLE) if splits else -1),
        *(str(e) for e in edges),
        *(served(index) for index in range(width)),
    ]
    return ":".join(fields)


def _check_names(table: routing.RoutingTable) -> None:
    for hostname, route in table.routes.items():
        if not _NAME.match(hostname):
            raise ConfigError(f"hostname {hostname!r}: HAProxy takes letters, digits, '.-_'")
        releases = [pool.release for pool in route.pools]
        if len(set(releases)) != len(releases):
            raise ConfigError(f"route {hostname}: two pools of one release {releases}")
        for release in releases:
            if not _RELEASE.match(release):
                raise ConfigError(f"route {hostname}: release {release!r} is not a plain name")
        split = route.split
        for what, name in (
            ("cookie", split.cookie),
            ("hash_header", split.hash_header),
            ("hash_cookie", split.hash_cookie),
            ("force_header", split.force_header),
            ("force_cookie", split.force_cookie),
        ):
            if name is not None and not _NAME.match(name):
                raise ConfigError(f"route {hostname}: split.{what} {name!r} is not a plain name")


def _quoted(pattern: str) -> str:
    """A converter argument: single quotes for the config line (no `$` expansion), double
    quotes for the argument parser (parentheses and commas kept)."""
    return "'\"" + pattern + "\"'"


_UNQUOTE = "regsub(" + _quoted(r"^\\x22(.*)\\x22$") + "," + _quoted(r"\\1") + ")"
"""A cookie's value without the double quotes around it, as the built-in router reads it."""


def _shape(route: routing.Route) -> routing.Stickiness:
    """The split's names, without the offset (which is in the map)."""
    return routing.Stickiness(
        offset=0,
        cookie=route.split.cookie,
        hash_header=route.split.hash_header,
        hash_cookie=route.split.hash_cookie,
        force_header=route.split.force_header,
        force_cookie=route.split.force_cookie,
    )


def _shape_rules(shape: routing.Stickiness, guard: str) -> list[str]:
    """The rules that find a client's forced side or bucket, for the routes of one shape."""
    on = f"{{ var(txn.split),field(1,:) -m str 1 }}{guard}"
    free = "!{ var(txn.pool) -m found }"
    rules = [
        f"http-request set-var(txn.force) req.fhdr({shape.force_header}),lower"
        f" if {on} {{ req.fhdr({shape.force_header}) -m found }}",
        f"http-request set-var(txn.force) req.cook({shape.force_cookie}),{_UNQUOTE},lower"
        f" if {on} !{{ var(txn.force) -m found }} {{ req.cook({shape.force_cookie}) -m found }}",
    ]
    for value, field in (("always", 3), ("never", 4)):
        rules.append(
            f"http-request set-var(txn.pool) var(txn.split),field({field},:)"
            f" if {on} {{ var(txn.force) -m str {value} }}"
            f" {{ var(txn.split),field({field},:) -m int ge 0 }}"
        )
    if shape.hash_header:
        name = shape.hash_header
        rules.append(
            f"http-request set-var(txn.bucket) req.fhdr({name}),crc32,mod(10000)"
            f" if {on} {free} {{ req.fhdr({name}) -m len gt 0 }}"
        )
    if shape.hash_cookie:
        name = shape.hash_cookie
        rules.append(
            f"http-request set-var(txn.bucket) req.cook({name}),{_UNQUOTE},crc32,mod(10000)"
            f" if {on} {free} !{{ var(txn.bucket) -m found }}"
            f" {{ req.cook({name}),{_UNQUOTE} -m len gt 0 }}"
        )
    cookie = shape.cookie
    rules += [
        f"http-request set-var(txn.bucket) req.cook({cookie}),{_UNQUOTE},add(0)"
        f" if {on} {free} !{{ var(txn.bucket) -m found }}"
        f" {{ req.cook({cookie}),{_UNQUOTE} -m reg ^[0-9][0-9]?[0-9]?[0-9]?$ }}",
        f"http-request set-var(txn.fresh) rand(10000) if {on} {free} !{{ var(txn.bucket) -m found }}",
        "http-request set-var(txn.bucket) var(txn.fresh) if { var(txn.fresh) -m found }",
    ]
    return rules


def _head(
    paths: Paths, listen: tuple[str, int], description: str, server_timeout: float
) -> list[str]:
    host, port = listen
    lines = [
        "global",
        f"  stats socket {paths.stats_socket} mode 600 level admin expose-fd listeners",
        "  stats timeout 10s",
        "  hard-stop-after 60s",
    ]
    if description:
        lines.append(f"  description {description}")
    if paths.log_socket:
        lines.append(f"  log {paths.log_socket} len 1024 format raw local0 info")
    lines += [
        "",
        "defaults",
        "  mode http",
        "  option forwardfor",
        "  option redispatch",
        "  retries 2",
        "  timeout connect 3s",
        "  timeout http-request 10s",
        "  timeout http-keep-alive 75s",
        "  timeout client 60s",
        f"  timeout server {round(server_timeout * 1000)}ms",
        "  timeout tunnel 3600s",
        "",
        "frontend laneway",
        f"  bind {host}:{port}",
    ]
    if paths.log_socket:
        lines += ["  log global", '  log-format "%b %ST %[var(txn.took)]"']
    return lines


def _frontend_rules(table: routing.RoutingTable, paths: Paths) -> list[str]:
    """The rules that pick each request's backend (module docstring), in order."""
    width = max_pools(table)
    rules = [
        "http-request set-var(txn.t0) date(0,us)",
        "http-request set-var(txn.host) req.hdr(host),lower,"
        "regsub(':[0-9]+$',''),regsub('\\.+$','')",
        f"http-request set-var(txn.split) var(txn.host),map({paths.split_map})",
        "http-request return status 404 content-type text/plain"
        ' lf-string "No environment is served at %[var(txn.host)].\\n"'
        " unless { var(txn.split) -m found }",
        "http-request set-var(txn.offset) var(txn.split),field(2,:)",
    ]
    shapes: dict[routing.Stickiness, list[str]] = {}
    for hostname, route in sorted(table.routes.items()):
        if len(route.pools) > 1:
            shapes.setdefault(_shape(route), []).append(hostname)
    cookies = []
    for shape, names in shapes.items():
        guard = "" if len(shapes) == 1 else " { var(txn.host) -m str " + " ".join(names) + " }"
        rules += _shape_rules(shape, guard)
        cookies.append(
            f'http-response add-header set-cookie "{shape.cookie}=%[var(txn.fresh)]; Path=/;'
            f' Max-Age={COOKIE_MAX_AGE}; HttpOnly; SameSite=Lax" if {{ var(txn.fresh) -m found }}{guard}'
        )
    rules += [
        "http-request set-var(txn.turned) var(txn.bucket),add(txn.offset),mod(10000)"
        " if { var(txn.bucket) -m found }",
        "http-request set-var(txn.turned) int(0) unless { var(txn.turned) -m found }",
        "http-request set-var(txn.pick) int(0)",
    ]
    for index in range(width - 1):
        rules += [
            f"http-request set-var(txn.edge) var(txn.split),field({5 + index},:)",
            f"http-request set-var(txn.pick) int({index + 1})"
            " if { var(txn.turned),sub(txn.edge) -m int ge 0 }",
        ]
    rules.append("http-request set-var(txn.pool) var(txn.pick) unless { var(txn.pool) -m found }")
    for index in range(width):
        rules.append(
            f"http-request set-var(txn.release) var(txn.split),field({4 + width + index},:)"
            f" if {{ var(txn.pool) -m int {index} }}"
        )
    rules += cookies
    rules += [
        "http-response set-var(txn.took) date(0,us),sub(txn.t0)",
        "use_backend %[var(txn.host)]:%[var(txn.release)]",
        "default_backend unavailable",
    ]
    return rules


def _backends(table: routing.RoutingTable) -> list[str]:
    lines = [
        "",
        "backend unavailable",
        "  http-request return status 503 content-type text/plain"
        ' lf-string "The environment at %[var(txn.host)] has no healthy replica.\\n"',
    ]
    for hostname, route in sorted(table.routes.items()):
        for pool in route.pools:
            lines += ["", f"backend {backend_name(hostname, pool.release)}", "  balance roundrobin"]
            for number, backend in enumerate(pool.backends):
                address = f"[{backend.host}]" if ":" in backend.host else backend.host
                lines.append(f"  server s{number} {address}:{backend.port}")
    return lines


def render_config(
    table: routing.RoutingTable,
    *,
    listen: tuple[str, int],
    paths: Paths,
    description: str = "",
    server_timeout: float = 60.0,
) -> str:
    """haproxy.cfg for `table`; its weights are read from the split map at `paths`.
    `server_timeout`: seconds a replica may take to answer before the client gets a 504."""
    _check_names(table)
    lines = _head(paths, listen, description, server_timeout)
    lines += ["  " + rule for rule in _frontend_rules(table, paths)]
    lines += _backends(table)
    return "\n".join(lines) + "\n"


def render(
    table: routing.RoutingTable,
    *,
    listen: tuple[str, int],
    paths: Paths,
    server_timeout: float = 60.0,
) -> tuple[str, str]:
    """(config, digest): the config names its own digest (`description`), which `show info`
    answers, so that the driver can tell which config the running HAProxy loaded."""
    digest = config_digest(
        render_config(table, listen=listen, paths=paths, server_timeout=server_timeout)
    )
    config = render_config(
        table, listen=listen, paths=paths, description=digest, server_timeout=server_timeout
    )
    return config, digest


def config_digest(config_text: str) -> str:
    return hashlib.sha256(config_text.encode()).hexdigest()[:16]


def servers_of(table: routing.RoutingTable) -> set[tuple[str, str, int]]:
    """(backend, host, port) of every server the config for `table` has."""
    return {
        (backend_name(hostname, pool.release), backend.host, backend.port)
        for hostname, route in table.routes.items()
        for pool in route.pools
        for backend in pool.backends
    }
