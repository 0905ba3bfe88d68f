"""The router driver interface: how the control plane hands the data plane a routing table.

Drivers sit beside this file: `driver.py` (the built-in router, through a table file and
SIGHUP) and `fake.py` (in memory, for controller tests); HAProxy and Gateway API drivers
will join them. The control plane computes one `RoutingTable`; each driver realizes it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from laneway.core.measurements import Measurement
from laneway.core.routing import RoutingTable

CounterKey = tuple[str, str]
"""(hostname, release label): whose requests a `Measurement` counts."""


class RouterDriver(Protocol):
    def apply(self, table: RoutingTable) -> None:
        """Make `table` the one to serve. Never raises because the data plane is down."""
        ...

    def verify(self, table: RoutingTable) -> bool | None:
        """True if the data plane serves `table` (or a later one), False if an older one,
        None if it has not said."""
        ...

    def read_counters(self) -> dict[CounterKey, Measurement] | None:
        """Each (hostname, release) pool's counts since the data plane started; None if the
        data plane cannot be asked now. Counts go down only when it restarts."""
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
