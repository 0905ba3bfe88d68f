"""The routing table: hostname -> environment -> weighted pools of backends. Pure: no I/O.

The control plane computes one table (`compute_routing_table`); each router driver realizes
it. The built-in router keeps the table immutable and swaps it whole, so the hot path takes
no lock. A route has one pool normally and two while a rollout splits traffic.

**The split.** Weights are basis points (`WEIGHT_SCALE`, 0.01% steps) of *clients*, not of
requests. Every client has a bucket in [0, 10000): from the header or cookie the spec names
(a user id, hashed by `bucket_of`), else from laneway's own cookie (`Stickiness.cookie`,
which holds the bucket the router drew for the client's first request). Pools are laid over
the buckets in table order from bucket 0, after turning by the route's `offset` (so each
rollout starts with other clients): the first pool takes buckets [0, w1), the next [w1,
w1 + w2), and so on. With the canary listed first, raising its weight only moves clients
from stable to canary, never back; an abort moves everyone back at once. A tester forces a
side with `force_header` or `force_cookie` set to `always` (canary) or `never` (stable).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

WEIGHT_SCALE = 10_000
"""Weights are basis points: 10000 is all clients, 1 is 0.01% of them."""

STABLE = "stable"
CANARY = "canary"


@dataclass(frozen=True)
class Backend:
    host: str
    port: int


@dataclass(frozen=True)
class Pool:
    """The healthy replicas of one release, and the share of clients (basis points) it gets."""

    release: str
    weight: int
    backends: tuple[Backend, ...]
    role: str = STABLE
    """`stable` or `canary`: what a forced client (`always`/`never`) is sent to."""


@dataclass(frozen=True)
class Stickiness:
    """How a route with more than one pool keeps each client on its side (module docstring)."""

    offset: int = 0
    """Turns the buckets before the pools are laid over them; changes per rollout."""
    cookie: str = "laneway_bucket"
    """laneway's own cookie: the bucket drawn for a client that brought none."""
    hash_header: str | None = None
    """A request header whose value (a user id) gives the bucket, hashed; lower case."""
    hash_cookie: str | None = None
    """A cookie whose value gives the bucket, hashed."""
    force_header: str = "x-laneway-canary"
    force_cookie: str = "laneway_canary"


@dataclass(frozen=True)
class Route:
    hostname: str
    app: str
    environment: str
    pools: tuple[Pool, ...]
    split: Stickiness = Stickiness()

    @property
    def has_backends(self) -> bool:
        return any(pool.weight > 0 and pool.backends for pool in self.pools)


@dataclass(frozen=True)
class RoutingTable:
    version: int = 0
    routes: dict[str, Route] = field(default_factory=dict)

    def match(self, host_header: str | None) -> Route | None:
        if not host_header:
            return None
        return self.routes.get(normalize_host(host_header))

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": self.version,
                "routes": [
                    {
                        "hostname": r.hostname,
                        "app": r.app,
                        "environment": r.environment,
                        "pools": [
                            {
                                "release": p.release,
                                "weight": p.weight,
                                "role": p.role,
                                "backends": [[b.host, b.port] for b in p.backends],
                            }
                            for p in r.pools
                        ],
                        "split": {
                            "offset": r.split.offset,
                            "cookie": r.split.cookie,
                            "hash_header": r.split.hash_header,
                            "hash_cookie": r.split.hash_cookie,
                            "force_header": r.split.force_header,
                            "force_cookie": r.split.force_cookie,
                        },
                    }
                    for r in sorted(self.routes.values(), key=lambda r: r.hostname)
                ],
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> RoutingTable:
        data = json.loads(text)
        routes = {}
        for r in data["routes"]:
            pools = tuple(
                Pool(
                    release=p["release"],
                    weight=int(p["weight"]),
                    backends=tuple(Backend(str(h), int(port)) for h, port in p["backends"]),
                    role=str(p.get("role", STABLE)),
                )
                for p in r["pools"]
            )
            split = r.get("split") or {}
            routes[r["hostname"]] = Route(
                r["hostname"],
                r["app"],
                r["environment"],
                pools,
                Stickiness(
                    offset=int(split.get("offset", 0)),
                    cookie=str(split.get("cookie", "laneway_bucket")),
                    hash_header=split.get("hash_header"),
                    hash_cookie=split.get("hash_cookie"),
                    force_header=str(split.get("force_header", "x-laneway-canary")),
                    force_cookie=str(split.get("force_cookie", "laneway_canary")),
                ),
            )
        return cls(version=int(data["version"]), routes=routes)

    def same_routes(self, other: RoutingTable) -> bool:
        return self.routes == other.routes


def normalize_host(host_header: str) -> str:
    """`Feature-X.Shop.localhost:8080` -> `feature-x.shop.localhost` (IPv6 literals kept whole)."""
    host = host_header.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1] if end != -1 else host
    colon = host.rfind(":")
    if colon != -1 and host[colon + 1 :].isdigit():
        host = host[:colon]
    return host.rstrip(".")


def bucket_of(value: bytes) -> int:
    """The bucket of a client named by `value` (a user id): CRC-32 modulo 10000, which
    HAProxy computes the same way (`crc32,mod(10000)`), so both data planes agree."""
    return zlib.crc32(value) % WEIGHT_SCALE


def pool_for_bucket(pools: tuple[Pool, ...], bucket: int, offset: int) -> int:
    """The index of the pool that serves `bucket`: pools laid over the turned buckets in
    order, each over as many as its weight. Buckets past the weights' sum go to the last."""
    turned = (bucket + offset) % WEIGHT_SCALE
    edge = 0
    for index, pool in enumerate(pools):
        edge += pool.weight
        if turned < edge:
            return index
    return len(pools) - 1


def hostname_for(app: str, environment: str, *, domain: str = "localhost") -> str:
    return f"{environment}.{app}.{domain}"


@dataclass(frozen=True)
class RouteInput:
    """What the table needs of one environment: its name and the healthy backends per release."""

    app: str
    environment: str
    pools: tuple[Pool, ...]
    split: Stickiness = Stickiness()


def compute_routing_table(
    environments: Iterable[RouteInput], *, version: int, domain: str = "localhost"
) -> RoutingTable:
    routes = {}
    for env in environments:
        hostname = hostname_for(env.app, env.environment, domain=domain)
        routes[hostname] = Route(hostname, env.app, env.environment, env.pools, env.split)
    return RoutingTable(version=version, routes=routes)
