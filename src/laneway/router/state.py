"""What every client connection of the built-in router shares, and the table swap.

`router.server` makes one `RouterState`, hands it to each `ProxyProtocol` it creates, swaps
the table in it on reload (`set_table`) and calls `tick` twice a second. It holds the
compiled table (`router.table.RouteMap`), replaced whole so the hot path takes no lock; the
counters per (hostname, release), which outlive table swaps while the pair stays in the
table; the backend connection pools (`router.upstream`); the open client connections; and a
coarse clock that the proxy reads instead of calling `time.monotonic()` per request.
No I/O of its own beyond a log line when connections were refused.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from laneway.core.routing import RoutingTable
from laneway.router.table import RouteMap
from laneway.router.types import CounterKey, PoolCounters, ProxyOptions
from laneway.router.upstream import UpstreamPools

if TYPE_CHECKING:
    from laneway.router.proxy import ProxyProtocol

log = logging.getLogger("laneway.router")


class RouterState:
    """What every connection shares: the current table, backend pools, counters, the clock."""

    def __init__(
        self, table: RoutingTable | None = None, *, options: ProxyOptions | None = None
    ) -> None:
        self.options = options or ProxyOptions()
        self.counters: dict[CounterKey, PoolCounters] = {}
        self.routes = RouteMap(table or RoutingTable(), self.counters)
        self.upstreams = UpstreamPools(
            max_idle=self.options.max_idle_per_backend,
            idle_ttl=self.options.idle_ttl,
            connect_timeout=self.options.connect_timeout,
            down_for=self.options.down_for,
        )
        self.connections: set[ProxyProtocol] = set()
        self.refused = 0  # connections turned away at max_connections, since the router started
        self._refused_logged = 0
        self.draining = False
        self.now = time.monotonic()  # coarse: advanced by `tick`

    @property
    def table(self) -> RoutingTable:
        return self.routes.table

    def set_table(self, table: RoutingTable) -> None:
        """Swap the table whole; counters of (hostname, release) pairs it no longer has go."""
        routes = RouteMap(table, self.counters)
        live = {
            (hostname, pool.release)
            for hostname, route in table.routes.items()
            for pool in route.pools
            if pool.weight > 0
        }
        for key in [key for key in self.counters if key not in live]:
            del self.counters[key]
        self.routes = routes

    def tick(self, now: float | None = None) -> None:
        """Advance the clock, expire idle backend connections, enforce the timeouts."""
        now = time.monotonic() if now is None else now
        self.now = now
        self.upstreams.sweep(now)
        for connection in list(self.connections):
            connection.tick(now)
        if self.refused != self._refused_logged:
            log.warning(
                "refused %d connections: %d open, the limit (max_connections)",
                self.refused - self._refused_logged,
                self.options.max_connections,
            )
            self._refused_logged = self.refused
