"""`laneway server` with HAProxy as the data plane (LANEWAY_ROUTER_DATA_PLANE=haproxy): an
environment goes live only once HAProxy serves its table, requests reach it through
HAProxy, the built-in router never starts, and `halt` stops HAProxy with the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from laneway.router.haproxy import find_haproxy
from laneway.runtime.local import scan
from laneway.testing import live, make_server, spec_repo

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(find_haproxy() is None, reason="HAProxy is not installed"),
]

SPEC = "app: shop\nservices:\n  web: {command: python3 -m http.server $PORT --bind 127.0.0.1}\n"


def test_an_environment_served_through_haproxy(tmp_path: Path) -> None:
    repo = spec_repo(tmp_path / "repo", SPEC)
    server = make_server(tmp_path / "lw")
    server.env["LANEWAY_ROUTER_DATA_PLANE"] = "haproxy"
    pid_file = server.home / "state" / "haproxy" / "haproxy.pid"
    try:
        server.start()
        with server.http() as http:
            assert http.put("/api/v1/apps/shop", json={"repo": str(repo)}).status_code == 200
            response = http.post(
                "/api/v1/apps/shop/environments",
                json={"name": "staging", "kind": "staging", "branch": "main"},
            )
            assert response.status_code == 202, response.text
        server.wait_for("staging", live("v1"), what="v1 live behind HAProxy")
        assert server.get("staging.shop.localhost").status_code == 200
        assert server.get("nope.shop.localhost").status_code == 404
        routers = [p for p in scan(server.owner()) if p.key.startswith("_router")]
        assert [p.release.endswith("haproxy") for p in routers] == [True]
        master = int(pid_file.read_text())
        assert routers[0].pid == master
    finally:
        server.teardown()
    assert (
        not Path(f"/proc/{master}").exists()
        or "Z" in Path(f"/proc/{master}/stat").read_text().split(")")[1][:3]
    )
