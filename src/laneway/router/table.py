"""The routing table as the built-in router serves it: host matching and pool/backend choice.

`router.state` compiles each `RoutingTable` the control plane hands over into a `RouteMap`
(built once per table swap, never changed after); `router.proxy` matches a request's Host
header in it once, in `on_headers_complete`, to get a `Target`: the route, its pools with
weight above zero and at least one backend, and the counters that canary analysis will read.
A route of one pool takes it (`Target.pick`); only a route of several has a `Split`, which
reads the request's headers for the client's bucket (`Split.choose`). A backend is chosen
round robin (`PoolTarget.take`, then `failover_order`), which mutates small counters only;
the event loop is single-threaded, so none of this takes a lock. Deciding only: no I/O, no
forwarding.
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

    __slots__ = ("route", "pools", "split")

    def __init__(self, route: routing.Route, counters: dict[CounterKey, PoolCounters]) -> None:
        self.route = route
        weighted = tuple(
            PoolTarget(pool, counters.setdefault((route.hostname, pool.release), PoolCounters()))
            for pool in route.pools
            if pool.weight > 0
        )
        self.pools = tuple(pool for pool in weighted if pool.backends)
        """The pools that can take a request; `split` lays out all weighted ones."""
        self.split = Split(route, weighted, self.pools) if len(weighted) > 1 else None
        """None for a route of one pool: nothing to choose, nothing read per request."""

    @property
    def unavailable_message(self) -> str:
        return (
            f'environment "{self.route.environment}" of app "{self.route.app}" '
            "has no healthy replica"
        )

    def pick(self) -> PoolTarget | None:
        """The pool of a route of one pool (None: it has no backend)."""
        pools = self.pools
        return pools[0] if pools else None


class Split:
    """The sticky split of a route of several pools (`core.routing`'s docstring): a client's
    bucket from the force header or cookie, the hash header or cookie, laneway's bucket
    cookie or a fresh draw, then the pool laid over it. Read only for such routes."""

    __slots__ = (
        "pools",
        "weighted",
        "serving",
        "offset",
        "force_header",
        "hash_header",
        "cookie_names",
        "cookie",
        "hash_cookie",
        "force_cookie",
        "canary",
        "stable",
    )

    def __init__(
        self,
        route: routing.Route,
        weighted: tuple[PoolTarget, ...],
        serving: tuple[PoolTarget, ...],
    ) -> None:
        split = route.split
        self.pools = tuple(pool for pool in route.pools if pool.weight > 0)
        self.weighted = weighted
        self.serving = serving
        self.offset = split.offset
        self.force_header = split.force_header.lower().encode("latin-1")
        self.hash_header = (
            split.hash_header.lower().encode("latin-1") if split.hash_header else None
        )
        self.cookie = split.cookie.encode("latin-1")
        self.hash_cookie = split.hash_cookie.encode("latin-1") if split.hash_cookie else None
        self.force_cookie = split.force_cookie.encode("latin-1")
        self.cookie_names = tuple(
            name for name in (self.force_cookie, self.hash_cookie, self.cookie) if name
        )
        self.canary = self._role(routing.CANARY)
        self.stable = self._role(routing.STABLE)

    def _role(self, role: str) -> PoolTarget | None:
        for pool, target in zip(self.pools, self.weighted, strict=True):
            if pool.role == role:
                return target
        return None

    def choose(
        self, headers: list[tuple[bytes, bytes]], draw: Callable[[], int]
    ) -> tuple[PoolTarget | None, int | None]:
        """The pool for a request with these headers, and the bucket to set in laneway's
        cookie (None: the client brought its bucket, or a hash or force decides)."""
        force = hashed = None
        cookie_headers: list[bytes] = []
        for name, value in headers:
            lname = name.lower()
            if lname == b"cookie":
                cookie_headers.append(value)
            elif lname == self.force_header:
                force = value
            elif lname == self.hash_header:
                hashed = value
        cookies = cookie_values(cookie_headers, self.cookie_names) if cookie_headers else {}
        if force is None:
            force = cookies.get(self.force_cookie)
        if force is not None:
            forced = force.strip().lower()
            pool = (
                self.canary if forced == b"always" else self.stable if forced == b"never" else None
            )
            if pool is not None:
                return self._serving(pool), None
        if not hashed and self.hash_cookie is not None:
            hashed = cookies.get(self.hash_cookie)
        fresh = None
        if hashed:
            bucket = routing.bucket_of(hashed)
        else:
            held = cookies.get(self.cookie)
            if held is not None and 0 < len(held) <= 4 and held.isdigit():
                bucket = int(held)
            else:
                bucket = fresh = draw()
        index = routing.pool_for_bucket(self.pools, bucket, self.offset)
        return self._serving(self.weighted[index]), fresh

    def _serving(self, pool: PoolTarget) -> PoolTarget | None:
        """`pool`, or when it has no backend another pool that has."""
        if pool.backends:
            return pool
        return self.serving[0] if self.serving else None


_SPACE = b" \t"
_SEMICOLON, _EQUALS, _QUOTE = ord(";"), ord("="), ord('"')


def cookie_values(headers: list[bytes], names: tuple[bytes, ...]) -> dict[bytes, bytes]:
    """The values of the cookies `names` in Cookie header values (the first of each name),
    found by searching for each name rather than parsing every cookie: linear in the
    headers' length for each name, so bounded by the request head's limit."""
    found: dict[bytes, bytes] = {}
    for header in headers:
        for name in names:
            if name in found:
                continue
            size = len(header)
            at = header.find(name)
            while at >= 0:
                end = at + len(name)
                i = at - 1
                while i >= 0 and header[i] in _SPACE:
                    i -= 1
                j = end
                while j < size and header[j] in _SPACE:
                    j += 1
                if (i < 0 or header[i] == _SEMICOLON) and j < size and header[j] == _EQUALS:
                    stop = header.find(b";", j + 1)
                    value = header[j + 1 : stop if stop >= 0 else size].strip()
                    if len(value) > 1 and value[0] == _QUOTE and value[-1] == _QUOTE:
                        value = value[1:-1]
                    found[name] = value
                    break
                at = header.find(name, end)  # inside another cookie's name or value
    return found


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
