"""Which replicas of a generation run at which index: the slots, and their replacements
during a restart of one service (`laneway restart ENV SERVICE`). Pure.

Replica i of a service runs at index i or at its `twin`, i+SURGE: its own process key, port
lease and log file, so a replacement can run beside the replica it replaces.
"""

from __future__ import annotations

from collections.abc import Mapping

from laneway.core import scaling
from laneway.core.types import ProcessInfo, ReplicaState

SURGE = scaling.MAX_REPLICAS
"""Index offset of a replacement replica: above every index a spec can want."""

Slot = tuple[str, int]


def twin(index: int) -> int:
    """The other index of a replica's slot."""
    return index + SURGE if index < SURGE else index - SURGE


def wanted(
    counts: Mapping[str, int],
    restarts: Mapping[str, float],
    processes: Mapping[Slot, ProcessInfo],
    recorded: Mapping[Slot, ReplicaState],
) -> tuple[list[Slot], set[Slot]]:
    """The (service, index) replicas wanted, and those replaced by a restart.

    `processes` are the generation's by slot, `recorded` the states last recorded. A restart
    of a service (a time in `restarts`) replaces its replicas started before then one at a
    time: the stale one and a new one at its twin are both wanted until the new one is
    recorded up, then only the new one (the stale one stops on the next pass, out of the
    routing table by then)."""
    found: list[Slot] = []
    replaced: set[Slot] = set()
    for service, count in counts.items():
        since = restarts.get(service)
        busy = False
        for home in range(count):
            pair = (home, twin(home))
            alive = [i for i in pair if (p := processes.get((service, i))) and p.alive]
            if not alive:
                known = [i for i in pair if (service, i) in processes]
                known = known or [i for i in pair if (service, i) in recorded]
                found.append((service, known[0] if known else home))
                continue
            if since is None:
                found.append((service, alive[0]))
                replaced.update((service, i) for i in alive[1:])
                continue
            fresh = [i for i in alive if processes[(service, i)].started_at >= since]
            stale = [i for i in alive if i not in fresh]
            if fresh and stale:
                state = recorded.get((service, fresh[0]))
                if state is not None and state.up:
                    found.append((service, fresh[0]))
                    replaced.add((service, stale[0]))
                else:
                    found += [(service, stale[0]), (service, fresh[0])]
                    busy = True
            elif fresh:
                found.append((service, fresh[0]))
            elif not busy:
                found += [(service, stale[0]), (service, twin(stale[0]))]
                busy = True
            else:
                found.append((service, stale[0]))
    return found, replaced
