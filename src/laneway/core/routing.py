"""The routing table: hostname -> environment -> weighted pools of backends. Pure: no I/O.

The control plane computes one table (`compute_routing_table`); each router driver realizes
it. The built-in router keeps the table immutable and swaps it whole, so the hot path takes
no lock. A route has one pool normally and two while a rollout splits traffic.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Backend:
    host: str
    port: int


@dataclass(frozen=True)
class Pool:
    """The healthy replicas of one release, and the share of traffic (0-100) it gets."""

    release: str
    weight: int
    backends: tuple[Backend, ...]


@dataclass(frozen=True)
class Route:
    hostname: str
    app: str
    environment: str
    pools: tuple[Pool, ...]

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
                                "backends": [[b.host, b.port] for b in p.backends],
                            }
                            for p in r.pools
                        ],
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
                )
                for p in r["pools"]
            )
            routes[r["hostname"]] = Route(r["hostname"], r["app"], r["environment"], pools)
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


def hostname_for(app: str, environment: str, *, domain: str = "localhost") -> str:
    return f"{environment}.{app}.{domain}"


@dataclass(frozen=True)
class RouteInput:
    """What the table needs of one environment: its name and the healthy backends per release."""

    app: str
    environment: str
    pools: tuple[Pool, ...]


def compute_routing_table(
    environments: Iterable[RouteInput], *, version: int, domain: str = "localhost"
) -> RoutingTable:
    routes = {}
    for env in environments:
        hostname = hostname_for(env.app, env.environment, domain=domain)
        routes[hostname] = Route(hostname, env.app, env.environment, env.pools)
    return RoutingTable(version=version, routes=routes)
