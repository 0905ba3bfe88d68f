"""`GET /metrics`: the router's counts per environment and release, in Prometheus's text format.

The routing controller's driver reads them from the data plane (`RouterDriver.read_snapshot`,
blocking: in a thread) and its current table names each (hostname, release) pair: app,
environment and role (stable or canary). A pair the table no longer holds is left out, as
the router drops its counts at the table swap that removes it. Counts go down only when the
router restarts, which Prometheus's `rate()` takes as a reset. prometheus-client is imported
here only, so the rest of the API does without it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import cast

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from laneway.api.auth import Principal, require
from laneway.controllers.manager import Manager
from laneway.core.measurements import LATENCY_BOUNDS, STATUS_CLASSES, Measurement
from laneway.core.routing import RoutingTable
from laneway.core.types import Role
from laneway.router.base import CounterKey, RouterDriver

router = APIRouter()
viewer = Depends(require(Role.VIEWER))
LABELS = ["app", "environment", "release", "role"]


class RouterCollector(Collector):
    """The families of one reading of the router's counters, named by one table."""

    def __init__(self, counters: dict[CounterKey, Measurement], table: RoutingTable) -> None:
        self.counters = counters
        self.table = table

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "laneway_router_requests",
            "Requests the router sent to a release (or answered itself for it).",
            labels=LABELS,
        )
        responses = CounterMetricFamily(
            "laneway_router_responses",
            "Responses by status class: the replicas' own, and the router's own 4xx.",
            labels=[*LABELS, "code_class"],
        )
        errors = CounterMetricFamily(
            "laneway_router_errors",
            "Requests the router failed itself: no replica reachable (502), too slow (504), "
            "a response cut short.",
            labels=LABELS,
        )
        duration = HistogramMetricFamily(
            "laneway_router_request_duration_seconds",
            "Time from the request's end sent to the replica to its response head.",
            labels=LABELS,
        )
        bounds = [repr(bound) for bound in LATENCY_BOUNDS] + ["+Inf"]
        for labels, m in self._labelled():
            requests.add_metric(labels, m.requests)
            for code_class, count in zip(STATUS_CLASSES, m.statuses, strict=True):
                responses.add_metric([*labels, code_class], count)
            errors.add_metric(labels, m.errors)
            cumulative, total = [], 0
            for bound, count in zip(bounds, m.latency, strict=True):
                total += count
                cumulative.append((bound, float(total)))
            duration.add_metric(labels, cumulative, m.latency_sum)
        yield from (requests, responses, errors, duration)

    def _labelled(self) -> Iterator[tuple[list[str], Measurement]]:
        for (hostname, release), measurement in sorted(self.counters.items()):
            route = self.table.routes.get(hostname)
            if route is None:
                continue
            role = next((pool.role for pool in route.pools if pool.release == release), None)
            if role is None:
                continue
            yield [route.app, route.environment, release, role], measurement


def exposition(driver: RouterDriver, table: RoutingTable | None) -> bytes:
    """The text format of what the driver reads now (blocking: a thread's work)."""
    registry = CollectorRegistry(auto_describe=False)
    snapshot = driver.read_snapshot()
    if snapshot is not None and table is not None:
        registry.register(RouterCollector(snapshot.counters, table))
    return generate_latest(registry)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    summary="The router's counts per environment and release (Prometheus text format)",
)
async def metrics(request: Request, principal: Principal = viewer) -> Response:
    routes = cast(Manager, request.app.state.manager).router  # starlette's State holds Any
    body = await asyncio.to_thread(exposition, routes.driver, routes.table)
    return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4)  # what every Prometheus reads
