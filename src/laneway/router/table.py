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

from bisect import bisect_right
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
    cookie or a fresh draw, then the pool laid over it. Read only for such routes, and
    only the headers and cookies it names; the request's other cookies are not parsed."""

    __slots__ = (
        "weighted",
        "edges",
        "offset",
        "canary",
        "stable",
        "header_names",
        "header_lengths",
        "force_header",
        "hash_header",
        "cookie",
        "bucket_pattern",
        "hash_pattern",
        "force_pattern",
    )

    def __init__(
        self,
        route: routing.Route,
        weighted: tuple[PoolTarget, ...],
        serving: tuple[PoolTarget, ...],
    ) -> None:
        split = route.split
        pools = tuple(pool for pool in route.pools if pool.weight > 0)
        self.weighted = tuple(
            pool if pool.backends else (serving[0] if serving else None) for pool in weighted
        )
        """Each weighted pool, or when it has no backend another that has (None: none has)."""
        edges, edge = [], 0
        for pool in pools[:-1]:
            edge += pool.weight
            edges.append(edge)
        self.edges = tuple(edges)
        """Where each pool's buckets end; `routing.pool_for_bucket` by bisection."""
        self.offset = split.offset
        self.canary = self._role(pools, routing.CANARY)
        self.stable = self._role(pools, routing.STABLE)
        self.force_header = split.force_header.lower().encode("latin-1")
        self.hash_header = (
            split.hash_header.lower().encode("latin-1") if split.hash_header else None
        )
        self.header_names = frozenset(
            name for name in (b"cookie", self.force_header, self.hash_header) if name
        )
        self.header_lengths = frozenset(len(name) for name in self.header_names)
        self.cookie = split.cookie.encode("latin-1")
        self.bucket_pattern = self.cookie + b"="
        self.hash_pattern = (
            split.hash_cookie.encode("latin-1") + b"=" if split.hash_cookie else None
        )
        self.force_pattern = split.force_cookie.encode("latin-1") + b"="

    def _role(self, pools: tuple[routing.Pool, ...], role: str) -> PoolTarget | None:
        for pool, target in zip(pools, self.weighted, strict=True):
            if pool.role == role:
                return target
        return None

    def choose(
        self, headers: list[tuple[bytes, bytes]], draw: Callable[[], int]
    ) -> tuple[PoolTarget | None, int | None]:
        """The pool for a request with these headers, and the bucket to set in laneway's
        cookie (None: the client brought its bucket, or a hash or force decides)."""
        force = hashed = cookie = None
        lengths, names = self.header_lengths, self.header_names
        for name, value in headers:
            if len(name) in lengths and (lname := name.lower()) in names:
                if lname == b"cookie":
                    cookie = value if cookie is None else cookie + b"; " + value
                elif lname == self.force_header:
                    force = value
                else:
                    hashed = value
        if force is None and cookie is not None:
            force = cookie_value(cookie, self.force_pattern)
        if force is not None:
            forced = force.strip().lower()
            if forced == b"always" and self.canary is not None:
                return self.canary, None
            if forced == b"never" and self.stable is not None:
                return self.stable, None
        if not hashed and cookie is not None and self.hash_pattern is not None:
            hashed = cookie_value(cookie, self.hash_pattern)
        fresh = None
        if hashed:
            bucket = routing.bucket_of(hashed)
        else:
            held = cookie_value(cookie, self.bucket_pattern) if cookie is not None else None
            if held is not None and 0 < len(held) <= 4 and held.isdigit():
                bucket = int(held)
            else:
                bucket = fresh = draw()
        return self.pool_for(bucket), fresh

    def pool_for(self, bucket: int) -> PoolTarget | None:
        """The pool laid over a client's bucket."""
        turned = bucket + self.offset
        if turned >= routing.WEIGHT_SCALE:
            turned %= routing.WEIGHT_SCALE
        return self.weighted[bisect_right(self.edges, turned)]


def cookie_value(header: bytes, pattern: bytes) -> bytes | None:
    """The value of the first cookie `pattern` (its name and `=`) names in a Cookie header,
    found by searching for it rather than parsing every cookie: linear in the header's
    length, which the request head's limit bounds."""
    at = header.find(pattern)
    while at >= 0:
        if at == 0 or header.endswith(_SEPARATORS, 0, at) or _after_blanks(header, at):
            start = at + len(pattern)
            stop = header.find(b";", start)
            value = (header[start:stop] if stop >= 0 else header[start:]).strip()
            if len(value) > 1 and value.startswith(b'"') and value.endswith(b'"'):
                value = value[1:-1]
            return value
        at = header.find(pattern, at + 1)  # inside another cookie's name or value
    return None


def _after_blanks(header: bytes, at: int) -> bool:
    """Whether only blanks stand between `at` and the header's start or a `;` (rare). Each
    run of blanks precedes one match, so the runs scanned add up to the header at most."""
    i = at - 1
    while i >= 0 and header[i] in _BLANKS:
        i -= 1
    return i < 0 or header[i] == _SEMICOLON


_SEPARATORS = (b"; ", b";")
_BLANKS = b" \t"
_SEMICOLON = ord(";")


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
