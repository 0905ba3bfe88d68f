"""`canary start` with the spec's PromQL metrics: refused, with nothing recorded, by a server
that has no Prometheus to ask; kept in the rollout's strategy by one that has."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from laneway.api import auth
from laneway.composition import build_app, build_context
from laneway.core.types import BuildRecord, Kind, Role
from laneway.settings import load_settings
from laneway.store.repository import Store
from laneway.testing import promote_now

SPEC = """\
app: shop
services:
  web: {command: serve, health: /healthz}
canary:
  metrics:
    - name: checkout-errors
      query: sum(rate(checkout_failed_total{release="{{release}}"}[{{interval}}]))
      max_increase: 10%
"""
BUILD, NEW = "sha256:" + "a" * 64, "sha256:" + "b" * 64
CANARY = "/api/v1/apps/shop/environments/staging/canary"


@pytest.mark.parametrize("prometheus", [None, "http://127.0.0.1:9"])
def test_a_canary_with_metrics_needs_a_prometheus(tmp_path: Path, prometheus: str | None) -> None:
    environ = {"LANEWAY_HOME": str(tmp_path / "home")}
    if prometheus is not None:
        environ["LANEWAY_PROMETHEUS_URL"] = prometheus
    settings = load_settings(environ=environ)
    settings.make_dirs()
    store = Store.open(settings.database_url)
    token = auth.new_token()
    store.add_token(name="deployer", token_hash=auth.hash_token(token), role=Role.DEPLOYER)
    store.ensure_app("shop", str(tmp_path))
    for build in (BUILD, NEW):
        store.record_build(
            BuildRecord(build, "shop", "c" * 40, "main", SPEC, build, datetime.now(UTC))
        )
    environment = store.create_environment(
        app="shop", name="staging", kind=Kind.STAGING, branch=None, ref=None, build_id=BUILD
    )
    promote_now(store, environment.id)
    try:
        with TestClient(build_app(build_context(settings, store), run_controllers=False)) as client:
            answer = client.post(
                CANARY,
                json={"build": NEW, "steps": [5, 100]},
                headers={"Authorization": f"Bearer {token}"},
            )
        releases = store.releases(environment.id)
        if prometheus is None:
            assert answer.status_code == 409, answer.text
            problem = answer.json()
            assert problem["detail"] == (
                "the spec's canary.metrics (checkout-errors) need a Prometheus, and "
                "LANEWAY_PROMETHEUS_URL is not set on the server"
            )
            assert [r.name for r in releases] == ["v1"]
        else:
            assert answer.status_code == 202, answer.text
            rolling = store.get_environment_by_id(environment.id)
            assert rolling is not None and rolling.rollout.canary is not None
            assert rolling.rollout.strategy.analysis is not None
            metrics = rolling.rollout.strategy.analysis.metrics
            assert [(m.name, m.relative) for m in metrics] == [("checkout-errors", 0.1)]
    finally:
        store.close()
