"""The shapes the built-in router's modules speak: its options and the numbers it keeps.

`ProxyOptions` (timeouts and limits) is read by `router.state` and `router.proxy`;
`PoolCounters` per (hostname, release) are kept by `router.state`, bumped by the relay and
served on the counters socket (`router.server`) for canary analysis and `/metrics`. Plain
records, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from laneway.core.measurements import LATENCY_BOUNDS, Measurement, latency_bucket


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


class PoolCounters:
    """The mutable twin of `core.measurements.Measurement`, per (hostname, release), since the
    router started: bumped in place on the hot path, copied out by `snapshot`."""

    __slots__ = ("requests", "statuses", "errors", "latency", "latency_sum")

    def __init__(self) -> None:
        self.requests = 0
        self.statuses = [0, 0, 0, 0, 0]  # 1xx .. 5xx from the replicas (and the router's own 4xx)
        self.errors = 0  # the router's own 5xx: no replica reachable, too slow, cut short
        self.latency = [0] * (len(LATENCY_BOUNDS) + 1)
        self.latency_sum = 0.0

    def status(self, status: int) -> None:
        index = status // 100 - 1
        self.statuses[index if 0 <= index < 5 else 4] += 1

    def took(self, seconds: float) -> None:
        self.latency[latency_bucket(seconds)] += 1
        self.latency_sum += seconds

    def snapshot(self) -> Measurement:
        s = self.statuses
        return Measurement(
            requests=self.requests,
            statuses=(s[0], s[1], s[2], s[3], s[4]),
            errors=self.errors,
            latency=tuple(self.latency),
            latency_sum=self.latency_sum,
        )


CounterKey = tuple[str, str]  # (hostname, release)
