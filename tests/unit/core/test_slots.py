"""Which index each replica runs at, and the one-at-a-time replacement of a restart."""

from __future__ import annotations

from laneway.core import slots
from laneway.core.types import ProcessInfo, ReplicaState

UP = ReplicaState.HEALTHY
T = 100.0


def proc(service: str, index: int, *, started: float, alive: bool = True) -> ProcessInfo:
    return ProcessInfo(
        key=f"e/{service}/{index}/v1",
        environment_id="e",
        service=service,
        index=index,
        release="v1",
        pid=1000 + index,
        alive=alive,
        started_at=started,
    )


def by_slot(*processes: ProcessInfo) -> dict[tuple[str, int], ProcessInfo]:
    return {(p.service, p.index): p for p in processes}


def test_twin_is_the_other_index_of_a_slot() -> None:
    assert [slots.twin(i) for i in (0, 5, 63, 64, 69, 127)] == [64, 69, 127, 0, 5, 63]


def test_without_a_restart_each_replica_keeps_the_index_it_runs_at() -> None:
    running = by_slot(proc("web", 0, started=1), proc("web", 65, started=1))
    assert slots.wanted({"web": 3}, {}, running, {}) == (
        [("web", 0), ("web", 65), ("web", 2)],
        set(),
    )
    both = by_slot(proc("web", 0, started=1), proc("web", 64, started=2))
    assert slots.wanted({"web": 1}, {}, both, {}) == ([("web", 0)], {("web", 64)})


def test_a_restart_replaces_one_replica_at_a_time() -> None:
    old = [proc("web", 0, started=1), proc("web", 1, started=1)]
    restarts = {"web": T}
    # first: a replacement of web/0 beside it, web/1 left alone
    assert slots.wanted({"web": 2}, restarts, by_slot(*old), {}) == (
        [("web", 0), ("web", 64), ("web", 1)],
        set(),
    )
    new0 = proc("web", 64, started=T + 1)
    running = by_slot(*old, new0)
    # the replacement is not recorded up yet: both stay, web/1 still waits
    recorded = {("web", 0): UP, ("web", 1): UP, ("web", 64): ReplicaState.STARTING}
    assert slots.wanted({"web": 2}, restarts, running, recorded)[0] == [
        ("web", 0),
        ("web", 64),
        ("web", 1),
    ]
    # once it is: web/0 is replaced, and web/1 gets its replacement
    recorded[("web", 64)] = UP
    assert slots.wanted({"web": 2}, restarts, running, recorded) == (
        [("web", 64), ("web", 1), ("web", 65)],
        {("web", 0)},
    )
    # a replacement that crashed is wanted again in its slot, the old one serving meanwhile
    crashed = by_slot(*old, proc("web", 64, started=T + 1, alive=False))
    assert slots.wanted({"web": 2}, restarts, crashed, {})[0] == [
        ("web", 0),
        ("web", 64),
        ("web", 1),
    ]


def test_a_restart_leaves_other_services_and_fresh_replicas_alone() -> None:
    running = by_slot(proc("web", 64, started=T + 1), proc("worker", 0, started=1))
    assert slots.wanted({"web": 1, "worker": 1}, {"web": T}, running, {}) == (
        [("web", 64), ("worker", 0)],
        set(),
    )
