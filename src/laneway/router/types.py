"""The shapes the built-in router's modules speak: its options and the numbers it keeps.

`ProxyOptions` (timeouts and limits) is read by `router.state` and `router.proxy`;
`PoolCounters` per (hostname, release) are kept by `router.state`, bumped by the proxy and
read by canary analysis. Plain records, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProxyOptions:
    """Timeouts and limits of the built-in router; seconds unless named otherwise.

    Each is also a flag of `python -m laneway.router` (`--head-timeout 5`); docs/router.md
    says what each bounds and what the client gets when it runs out.
    """

    connect_timeout: float = 3.0
    read_timeout: float = 60.0  # from the request's end, or the last byte read, to the next byte
    keep_alive_timeout: float = 75.0  # an idle client connection is closed after this
    down_for: float = 2.0  # a backend that refused a connection is tried last for this long
    max_idle_per_backend: int = 128
    idle_ttl: float = 4.0  # pooled upstream connections older than this are not reused
    max_head_bytes: int = 64 * 1024  # request line and headers: 431 beyond
    head_timeout: float = 10.0  # a whole request head, from the connection or its first byte: 408
    body_timeout: float = 60.0  # between two reads of a request body: 408
    send_timeout: float = 60.0  # a full send buffer, either side, that does not shrink
    tunnel_timeout: float = 3600.0  # a spliced (upgraded) connection with no byte either way
    max_connections: int = 10_000  # client connections; beyond, a new one gets 503 and is closed


@dataclass(slots=True)
class PoolCounters:
    """Per route and release, since the router started; canary analysis reads differences."""

    requests: int = 0
    responses_5xx: int = 0
    upstream_errors: int = 0


CounterKey = tuple[str, str]  # (hostname, release)
