"""`laneway up`'s session (laneway/dev.py) on the controller harness (fake runtime, clock and
providers): what a changed file does, what it prints, and a whole run."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import watchfiles
from rich.console import Console

from laneway import dev as up
from laneway.controllers import development
from laneway.controllers.harness import SPEC, Harness
from laneway.core.types import Phase
from laneway.errors import Conflict
from laneway.runtime import logfiles
from laneway.spec.loader import load_spec_text

SERVICES = """\
app: shop
services:
  web: {command: python -m shop.web}
  worker: {command: python -m shop.worker}
resources:
  db: {type: postgres}
"""
"""No health check: the session's own reconciler probes real ports."""


class Dev:
    """The harness, a work tree, and a session on them that prints into `out`."""

    def __init__(self, harness: Harness, repo: Path) -> None:
        self.harness = harness
        self.repo = repo
        self.out = io.StringIO()
        text = (repo / "laneway.yaml").read_text()
        console = Console(file=self.out, width=200, soft_wrap=True, highlight=False)
        self.session = up.Session(harness.ctx, repo, load_spec_text(text), text, console)

    def start(self, hooks_exit: int = 0) -> str:
        """The session's environment, started and converged as its first passes would."""
        tree = development.WorkTree(self.repo, commit="c" * 40, branch="main")
        environment = self.harness.run(
            development.start(self.harness.ctx, tree, self.session.spec_text, app="shop", drain=1.0)
        )
        self.session.environment_id = environment.id
        self.harness.converge(environment.id, hooks_exit=hooks_exit)
        return environment.id

    def changed(self, *names: str) -> None:
        self.harness.run(self.session._changed({self.repo / name for name in names}))

    def replicas(self, environment_id: str) -> dict[str, int]:
        return {
            p.key: p.pid
            for p in self.harness.runtime.list_processes(environment_id)
            if p.alive and p.service != "_hook"
        }


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[Dev]:
    repo = tmp_path / "work"
    (repo / "shop").mkdir(parents=True)
    (repo / "laneway.yaml").write_text(SPEC)
    harness = Harness(tmp_path)
    d = Dev(harness, repo)
    yield d
    harness.run(d.session.http.aclose())
    harness.close()


@pytest.mark.parametrize(
    "path, restarts",
    [
        ("shop/web.py", True),
        ("laneway.yaml", True),
        ("templates/index.html", True),
        (".git/index", False),
        ("shop/__pycache__/web.cpython-311.pyc", False),
        ("node_modules/x/index.js", False),
        (".venv/lib/site.py", False),
        ("shop/.web.py.swp", False),
        ("shop/web.py~", False),
        ("shop/#web.py#", False),
        ("shop/sedX1b2c3", False),
        ("app.log", False),
    ],
)
def test_which_changes_restart(path: str, restarts: bool):
    assert up.watch_filter(watchfiles.Change.modified, f"/repo/{path}") is restarts


def test_a_changed_file_restarts_the_replicas_in_the_same_release(dev: Dev):
    environment_id = dev.start()
    pids = dev.replicas(environment_id)

    dev.changed("shop/web.py")

    assert "changed: web.py; restarting" in dev.out.getvalue()
    assert dev.replicas(environment_id) == {}
    dev.harness.pass_(environment_id)
    assert dev.replicas(environment_id).keys() == pids.keys()
    assert dev.harness.environment(environment_id).release == 1


def test_an_invalid_spec_is_reported_and_the_last_good_one_kept(dev: Dev):
    environment_id = dev.start()
    (dev.repo / "laneway.yaml").write_text("app: shop\nservices: [\n")

    dev.changed("laneway.yaml")

    text = dev.out.getvalue()
    assert "laneway.yaml is invalid, keeping the last good one" in text
    assert "laneway.yaml:" in text and "changed: laneway.yaml; restarting" in text
    assert dev.harness.environment(environment_id).release == 1
    assert dev.session.spec.app == "shop"


def test_a_changed_spec_is_a_new_release(dev: Dev):
    environment_id = dev.start()
    with open(dev.repo / "laneway.yaml", "a") as spec:
        spec.write("  development: {drain: 3s}\n")

    dev.changed("laneway.yaml", "shop/web.py")

    assert "changed: laneway.yaml, web.py; release v2" in dev.out.getvalue()
    assert dev.harness.environment(environment_id).release == 2 and dev.session.drain == 3.0


def test_a_spec_naming_another_app_is_refused(dev: Dev):
    environment_id = dev.start()
    (dev.repo / "laneway.yaml").write_text(SERVICES.replace("shop", "other", 1))

    dev.changed("laneway.yaml")

    assert "names app 'other' now" in dev.out.getvalue()
    assert dev.harness.environment(environment_id).release == 1


def test_any_change_after_a_failure_is_a_new_release(dev: Dev):
    environment_id = dev.start(hooks_exit=1)
    assert dev.harness.environment(environment_id).phase == Phase.FAILED

    dev.changed("shop/migrate.py")

    assert "changed: migrate.py; release v2" in dev.out.getvalue()
    current = dev.harness.converge(environment_id)
    assert current is not None and current.phase == Phase.RUNNING


def test_events_and_urls_of_live_replicas_are_printed_once(dev: Dev):
    environment_id = dev.start()
    environment = dev.harness.environment(environment_id)
    dev.session._report(environment)
    dev.session._report(environment)

    text = dev.out.getvalue()
    (web,) = [r for r in environment.replicas if r.service == "web"]
    assert text.count(f"laneway | web.0 at http://127.0.0.1:{web.port}/") == 1
    assert "worker.0 at" not in text, "a worker has no port"
    assert "release hook succeeded" in text and "v1 is live" in text


def test_output_is_labelled_per_replica(dev: Dev):
    environment_id = dev.start()
    logs = dev.harness.ctx.log_dir(environment_id)
    logs.mkdir(parents=True, exist_ok=True)
    dev.session._follower = logfiles.Follower.from_end(logs)
    (logs / "web.0.log").write_text("listening [bold]not markup[/bold]\n")
    (logs / "release.log").write_text("--- release v1\n")
    dev.session._print_output()

    lines = dev.out.getvalue().splitlines()
    assert "     web.0 | listening [bold]not markup[/bold]" in lines
    assert "   release | --- release v1" in lines


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.005)  # the session's tasks run meanwhile
    raise AssertionError("condition not met")


def test_a_run_starts_serves_and_stops_everything(tmp_path: Path):
    repo = tmp_path / "work"
    repo.mkdir()
    (repo / "laneway.yaml").write_text(SERVICES)
    harness = Harness(tmp_path)
    dev = Dev(harness, repo)
    session = dev.session

    async def scenario() -> None:
        run = asyncio.create_task(session.run())
        await until(lambda: "web.0 at http://127.0.0.1:" in dev.out.getvalue())
        assert len(harness.runtime.alive()) == 2
        session._stop.set()
        await run

    try:
        harness.run(scenario())
    finally:
        harness.close()

    text = dev.out.getvalue()
    assert "shop from" in text and "laneway | stopping" in text and "stopped;" in text
    assert harness.runtime.list_processes() == []
    environment = harness.store.get_environment("shop", "dev")
    assert environment.live == 0 and [r.name for r in harness.store.resources(environment.id)]


def test_a_second_session_of_the_same_app_is_refused(dev: Dev):
    ctx = dev.harness.ctx
    with development.one_session(ctx, "shop"):
        with pytest.raises(Conflict, match="runs app 'shop'"), development.one_session(ctx, "shop"):
            pass
        with development.one_session(ctx, "other"):
            pass
    with development.one_session(ctx, "shop"):
        pass  # free again once the first session ended
