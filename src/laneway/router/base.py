"""The router driver interface: how the control plane hands the data plane a routing table.

Drivers sit beside this file: `driver.py` (the built-in router, through a table file and
SIGHUP) and `fake.py` (in memory, for controller tests); HAProxy and Gateway API drivers
will join them. The control plane computes one `RoutingTable`; each driver realizes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from laneway.core.measurements import Measurement
from laneway.core.routing import RoutingTable

CounterKey = tuple[str, str]
"""(hostname, release label): whose requests a `Measurement` counts."""


@dataclass(frozen=True)
class CounterSnapshot:
    """What a data plane counted, and since when."""

    counters: dict[CounterKey, Measurement]
    started: float | None = None
    """When the data plane began counting, seconds since the epoch (None: it does not say):
    another value means it restarted and the counts began again."""


class RouterDriver(Protocol):
    def apply(self, table: RoutingTable) -> None:
        """Make `table` the one to serve. Never raises because the data plane is down."""
        ...

    def verify(self, table: RoutingTable) -> bool | None:
        """True if the data plane serves `table` (or a later one), False if an older one,
        None if it has not said."""
        ...

    def read_snapshot(self) -> CounterSnapshot | None:
        """Each (hostname, release) pool's counts since the data plane started, and when
        that was; None if the data plane cannot be asked now. Counts go down only when it
        restarts. Blocking: call it from a thread when on an event loop."""
        ...


@runtime_checkable
class SupervisingDriver(RouterDriver, Protocol):
    """A driver that runs its data plane's process itself (HAProxy's); the routing controller
    calls `ensure_running` on each tick instead of starting the built-in router."""

    def ensure_running(self) -> int | None:
        """Start the data plane if it does not run; its pid."""
        ...

    def master_pid(self) -> int | None:
        """The data plane's pid if it runs; starts nothing."""
        ...
