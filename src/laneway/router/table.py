"""The routing table as the built-in router serves it: host matching and pool/backend choice.

`router.state` compiles each `RoutingTable` the control plane hands over into a `RouteMap`
(built once per table swap, never changed after); `router.proxy` matches a request's Host
header in it once, in `on_headers_complete`, to get a `Target`: the route, its pools with
weight above zero and at least one backend, and the counters that canary analysis will read.
Choosing a pool (smooth weighted round robin, `Target.pick`) and a backend (round robin,
`PoolTarget.take`, then `failover_order`) mutates small counters only; the event loop is
single-threaded, so none of this takes a lock. Deciding only: no I/O, no forwarding.
"""

from __future__ import annotations

from collections.abc import Callable

from laneway.core import routing
from laneway.router.types import CounterKey, PoolCounters


class PoolTarget:
    """One pool of a route: its backends in round-robin order and its counters."""

    __slots__ = ("release", "weight", "backends", "counters", "next")

    def __init__(self, pool: routing.Pool, counters: PoolCounters) -> None:
        self.release = pool.release
        self.weight = pool.weight
        self.backends = pool.backends
        self.counters = counters
        self.next = 0

    def take(self) -> int:
        """The index of the next backend in round-robin order."""
        index = self.next
        self.next = index + 1 if index + 1 < len(self.backends) else 0
        return index

    def failover_order(
        self, start: int, is_down: Callable[[routing.Backend], bool]
    ) -> list[routing.Backend]:
        """Backends from `start` on, wrapping; those marked down go last (tried only if all are)."""
        rotated = self.backends[start:] + self.backends[:start]
        up = [backend for backend in rotated if not is_down(backend)]
        return up + [backend for backend in rotated if backend not in up]


class Target:
    """One route, compiled: what a request for its hostname is sent to."""

    __slots__ = ("route", "pools", "_current", "_total")

    def __init__(self, route: routing.Route, counters: dict[CounterKey, PoolCounters]) -> None:
        self.route = route
        self.pools = tuple(
            PoolTarget(pool, counters.setdefault((route.hostname, pool.release), PoolCounters()))
            for pool in route.pools
            if pool.weight > 0 and pool.backends
        )
        self._current = [0] * len(self.pools)
        self._total = sum(pool.weight for pool in self.pools)

    @property
    def unavailable_message(self) -> str:
        return (
            f'environment "{self.route.environment}" of app "{self.route.app}" '
            "has no healthy replica"
        )

    def pick(self) -> PoolTarget | None:
        """The pool for the next request: smooth weighted round robin (exact over each cycle)."""
        pools = self.pools
        if len(pools) == 1:
            return pools[0]
        if not pools:
            return None
        current = self._current
        best = 0
        for index, pool in enumerate(pools):
            current[index] += pool.weight
            if current[index] > current[best]:
                best = index
        current[best] -= self._total
        return pools[best]


class RouteMap:
    """An immutable routing table and its compiled targets; the proxy swaps it whole."""

    # Distinct Host header spellings remembered per table; beyond this they are looked up.
    CACHE_LIMIT = 4096

    def __init__(
        self, table: routing.RoutingTable, counters: dict[CounterKey, PoolCounters]
    ) -> None:
        self.table = table
        self.targets = {
            hostname: Target(route, counters) for hostname, route in table.routes.items()
        }
        self._by_header: dict[bytes, Target | None] = {}

    def match(self, host_header: bytes) -> Target | None:
        """The target a Host header names; None for a host no route serves."""
        try:
            return self._by_header[host_header]
        except KeyError:
            pass
        route = self.table.match(host_header.decode("latin-1"))
        target = self.targets.get(route.hostname) if route is not None else None
        if len(self._by_header) < self.CACHE_LIMIT:
            self._by_header[host_header] = target
        return target
