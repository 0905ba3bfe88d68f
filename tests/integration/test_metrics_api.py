"""`GET /metrics` over a real router process: the API's driver reads the router's counters
on its socket, and the Prometheus text parser finds the requests sent, by release, role and
status class, and a latency histogram of them."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.integration.router_harness import run
from tests.integration.test_router_split import backends, router_process, send, table

from laneway.api import auth
from laneway.composition import build_app, build_context
from laneway.controllers.manager import Manager
from laneway.core.measurements import LATENCY_BOUNDS
from laneway.core.types import Role
from laneway.settings import load_settings
from laneway.store.repository import Store

pytestmark = pytest.mark.integration


def test_metrics_serve_the_router_counts_to_a_viewer(tmp_path: Path) -> None:
    settings = load_settings(environ={"LANEWAY_HOME": str(tmp_path / "home")})
    store = Store.open(settings.database_url)
    token = auth.new_token()
    store.add_token(name="viewer", token_hash=auth.hash_token(token), role=Role.VIEWER)
    app = build_app(build_context(settings, store), run_controllers=False)
    assert isinstance(app.state.manager, Manager)
    routes = app.state.manager.router

    async def main() -> None:
        transport = httpx.ASGITransport(app=app)
        async with (
            backends("stable", "canary") as (stable, new),
            router_process(tmp_path, table(1, 2000, stable, new)) as router,
            httpx.AsyncClient(transport=transport, base_url="http://api") as api,
        ):
            assert (await api.get("/metrics")).status_code == 401
            bearer = {"authorization": f"Bearer {token}"}
            empty = await api.get("/metrics", headers=bearer)  # no router known yet
            assert empty.status_code == 200 and "laneway_router" not in empty.text

            routes.driver, routes.table = router.driver, table(1, 2000, stable, new)
            sent = await send(router.port, 1000) + await send(router.port, 200, path="/500")
            response = await api.get("/metrics", headers=bearer)
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
            samples = {
                (sample.name, tuple(sorted(sample.labels.items()))): sample.value
                for family in text_string_to_metric_families(response.text)
                for sample in family.samples
            }
            for release, role, name in (("v1", "stable", "stable"), ("v2", "canary", "canary")):
                labels = {"app": "shop", "environment": "production", "release": release}
                labels["role"] = role
                mine = [status for status, server, _ in sent if server == name]

                def value(metric: str, **more: str) -> float:
                    key = tuple(sorted({**labels, **more}.items()))  # noqa: B023
                    return samples[(metric, key)]

                assert value("laneway_router_requests_total") == len(mine)
                assert value("laneway_router_responses_total", code_class="2xx") == mine.count(200)
                assert value("laneway_router_responses_total", code_class="5xx") == mine.count(500)
                assert value("laneway_router_responses_total", code_class="4xx") == 0
                assert value("laneway_router_errors_total") == 0
                assert value("laneway_router_request_duration_seconds_count") == len(mine)
                assert value("laneway_router_request_duration_seconds_bucket", le="+Inf") == len(
                    mine
                )
                buckets = [
                    value("laneway_router_request_duration_seconds_bucket", le=repr(bound))
                    for bound in LATENCY_BOUNDS
                ]
                assert buckets == sorted(buckets)  # cumulative
                assert value("laneway_router_request_duration_seconds_sum") > 0

    try:
        run(main())
    finally:
        store.close()
