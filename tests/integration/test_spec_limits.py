"""A spec over the limits is refused at once, with a message naming the file, the limit and
the figure, and the server goes on answering meanwhile (issue 10, item 5)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from laneway.testing import git

pytestmark = pytest.mark.integration

SERVICES = 200_000
ENV = "/api/v1/apps/shop/environments"


def _commit_big_spec(repo: Path) -> int:
    """A branch `big` whose laneway.yaml has 200,000 services (about 5 MB); its size."""
    lines = ["app: shop\n", "services:\n"]
    lines += [f"  s{i}: {{command: python3 -m http.server $PORT}}\n" for i in range(SERVICES)]
    text = "".join(lines)
    git(repo, "checkout", "-q", "-b", "big")
    (repo / "laneway.yaml").write_text(text)
    git(repo, "commit", "-q", "-am", "a spec far too large")
    git(repo, "checkout", "-q", "main")
    return len(text.encode())


def test_a_deploy_of_a_too_large_spec_is_refused_while_the_api_answers(
    flag_world: Any,
) -> None:
    with flag_world.http() as http:
        repo = Path(next(a["repo"] for a in http.get("/api/v1/apps").json() if a["name"] == "shop"))
        releases = [r["number"] for r in http.get(f"{ENV}/staging/releases").json()]
    size = _commit_big_spec(repo)

    def deploy() -> tuple[int, dict]:
        with flag_world.http() as http:
            response = http.post(f"{ENV}/staging/deploys", json={"ref": "big"})
        return response.status_code, response.json()

    def status() -> int:
        with flag_world.http() as http:
            return http.get("/api/v1/status").status_code

    with ThreadPoolExecutor(8) as pool:
        deploys = [pool.submit(deploy) for _ in range(4)]
        statuses = [pool.submit(status) for _ in range(40)]
        answers = [d.result() for d in deploys]
        assert [s.result() for s in statuses] == [200] * 40

    expected = (
        f"laneway.yaml:1:1: the file is {size:,} bytes ({size / 1024 / 1024:.1f} MiB), "
        "over the limit of 262,144 bytes (256 KiB)"
    )
    for code, body in answers:
        assert code == 400, body
        assert body["detail"] == expected
        assert "at commit" in body["hint"]
        assert "alias" not in body["detail"]
    with flag_world.http() as http:
        after = [r["number"] for r in http.get(f"{ENV}/staging/releases").json()]
    assert after == releases  # no release made
