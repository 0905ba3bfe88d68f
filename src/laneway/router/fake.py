"""An in-memory router driver for controller tests: it keeps every table it is handed and
confirms them at once, or only when the test says so (`confirming = False`, then `confirm()`)."""

from __future__ import annotations

from laneway.core.measurements import Measurement
from laneway.core.routing import RoutingTable
from laneway.router.base import CounterKey, CounterSnapshot


class FakeRouterDriver:
    def __init__(self, *, confirming: bool = True) -> None:
        self.tables: list[RoutingTable] = []
        self.confirming = confirming
        self.served: int | None = None
        self.counters: dict[CounterKey, Measurement] | None = {}
        """What `read_counters` answers; a test sets it (None: the data plane cannot say)."""
        self.started: float | None = None
        """When the data plane began counting, as `read_snapshot` says; a test sets it."""

    def apply(self, table: RoutingTable) -> None:
        self.tables.append(table)
        if self.confirming:
            self.served = table.version

    def verify(self, table: RoutingTable) -> bool | None:
        if self.served is None:
            return None
        return self.served >= table.version

    def read_counters(self) -> dict[CounterKey, Measurement] | None:
        return None if self.counters is None else dict(self.counters)

    def read_snapshot(self) -> CounterSnapshot | None:
        counters = self.read_counters()
        return None if counters is None else CounterSnapshot(counters, self.started)

    def confirm(self) -> None:
        """The data plane has loaded the newest table it was handed."""
        if self.tables:
            self.served = self.tables[-1].version

    @property
    def table(self) -> RoutingTable | None:
        return self.tables[-1] if self.tables else None
