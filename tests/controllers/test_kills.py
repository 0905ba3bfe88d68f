"""Kill between actions: the control plane dies right after any action of an operation took
effect, a new reconciler starts on the same store and the same (surviving) processes, and
the environment converges to what an uninterrupted run reaches, nothing started twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from laneway.controllers.harness import Harness, Killed
from laneway.core import rollouts
from laneway.core.measurements import LATENCY_BOUNDS, Measurement, latency_bucket

Step = Callable[[Harness, dict[str, str]], None]


@dataclass(frozen=True)
class Scenario:
    before: Step
    """Brings the environment to where the operation starts (not interrupted)."""
    operation: Step
    """Writes the intent (as the API does); the passes after it are the ones killed."""
    after: float = 0.0
    """Seconds of fake time the operation runs for after converging (a warm window, say)."""


def _create(h: Harness, ids: dict[str, str]) -> None:
    ids["env"] = h.create(build_id=ids.setdefault("b1", h.add_build()))


def _running(h: Harness, ids: dict[str, str]) -> None:
    _create(h, ids)
    h.converge(ids["env"])


def _deployed(h: Harness, ids: dict[str, str]) -> None:
    _running(h, ids)
    h.deploy(ids["env"], ids.setdefault("b2", h.add_build(files={"v": "2"})))
    h.converge(ids["env"])


def _deploy(h: Harness, ids: dict[str, str]) -> None:
    h.deploy(ids["env"], h.add_build(files={"v": "3"}))


def _rollback(h: Harness, ids: dict[str, str]) -> None:
    h.rollback(ids["env"], 1)


def _deployed_and_cold(h: Harness, ids: dict[str, str]) -> None:
    _deployed(h, ids)
    h.settle(ids["env"], 31)


def _destroy(h: Harness, ids: dict[str, str]) -> None:
    h.destroy(ids["env"])


def _nothing(h: Harness, ids: dict[str, str]) -> None:
    return None


def _scale_up(h: Harness, ids: dict[str, str]) -> None:
    h.scale(ids["env"], {"web": 3, "worker": 2})


def _scaled(h: Harness, ids: dict[str, str]) -> None:
    _running(h, ids)
    _scale_up(h, ids)
    h.converge(ids["env"])


def _scale_down(h: Harness, ids: dict[str, str]) -> None:
    h.scale(ids["env"], {"web": 1, "worker": 0})


def _restart(h: Harness, ids: dict[str, str]) -> None:
    h.restart_all(ids["env"])


def _restart_web(h: Harness, ids: dict[str, str]) -> None:
    h.clock.advance(1)
    h.restart_service(ids["env"], "web")


def _canary(h: Harness, ids: dict[str, str]) -> None:
    """A canary of two weights judged on counts that grow with the fake clock (10 requests
    a second, 0.5% failing, on each side), so each interval's verdict passes."""
    host = f"staging.shop.{h.ctx.settings.domain}"

    def counts() -> dict[tuple[str, str], Measurement]:
        n = int(h.clock() * 10)
        latency = [0] * (len(LATENCY_BOUNDS) + 1)
        latency[latency_bucket(0.05)] = n
        side = Measurement(n, (0, n - n // 200, 0, 0, n // 200), 0, tuple(latency))
        return {(host, label): side for label in ("v1", "v2")}

    h.driver.read_counters = counts  # type: ignore[method-assign]  # read_snapshot reads it
    strategy = rollouts.Strategy(
        steps=(rollouts.SetWeight(100), rollouts.SetWeight(2_500)),
        analysis=rollouts.Analysis(interval=20.0, criteria={"min_requests": 100}),
    )
    h.deploy(ids["env"], h.add_build(files={"v": "2"}), strategy=strategy)


SCENARIOS = {
    "create": Scenario(_nothing, _create),
    "deploy": Scenario(_running, _deploy, after=31.0),
    "rollback to warm": Scenario(_deployed, _rollback),
    "rollback after warm": Scenario(_deployed_and_cold, _rollback, after=31.0),
    "destroy": Scenario(_deployed, _destroy),
    "scale up": Scenario(_running, _scale_up),
    "scale down": Scenario(_scaled, _scale_down),
    "restart": Scenario(_scaled, _restart, after=31.0),
    "restart one service": Scenario(_scaled, _restart_web, after=10.0),
    "canary": Scenario(_running, _canary, after=120.0),
}


def outcome(h: Harness, scenario: Scenario, *, kill_after: int | None) -> tuple[object, ...]:
    """Run the scenario, killing the control plane after `kill_after` actions of the
    operation (then starting a new one); returns what an observer can compare."""
    ids: dict[str, str] = {}
    scenario.before(h, ids)
    h.applied.clear()
    h.kill_after = kill_after
    scenario.operation(h, ids)
    env = ids["env"]
    try:
        h.converge(env)
        if scenario.after:
            h.settle(env, scenario.after)
    except Killed:
        h.kill_after = None
        h.restart()
        h.converge(env)
        if scenario.after:
            h.settle(env, scenario.after)
    h.kill_after = None
    environment = h.converge(env)
    twice = {k: n for k, n in h.runtime.starts().items() if n > 1}
    assert not twice, f"started more than once: {twice}"
    if environment is None:
        assert h.runtime.list_processes(env) == []
        assert h.postgres.instances == set()
        assert not (h.ctx.settings.environments_dir / env).exists()
        return ("deleted",)
    live_processes = sorted(k.split("/", 1)[1] for k in h.alive(env))
    leases = sorted((lease.generation, lease.service) for lease in h.store.leases(env))
    return (
        environment.phase,
        (environment.release, environment.live, environment.warm),
        h.states(env),
        live_processes,
        leases,
        sorted(p.name for p in (h.ctx.settings.environments_dir / env / "releases").iterdir()),
    )


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_a_kill_after_any_action_converges_to_the_same_end(tmp_path: Path, name: str) -> None:
    scenario = SCENARIOS[name]
    clean = Harness(tmp_path / "clean")
    try:
        expected = outcome(clean, scenario, kill_after=None)
        actions = len(clean.applied)
    finally:
        clean.close()
    assert actions > 0
    for kill_after in range(1, actions + 1):
        h = Harness(tmp_path / f"kill{kill_after}")
        try:
            assert outcome(h, scenario, kill_after=kill_after) == expected, (
                f"killed after action {kill_after} of {actions}"
            )
        finally:
            h.close()
