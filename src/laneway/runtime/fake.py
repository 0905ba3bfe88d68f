"""An in-memory Runtime for controller tests: processes are records that outlive a
reconciler, as real ones outlive a control-plane restart.

Tests steer it as the world would: `crash()` ends a process, `set_healthy()` decides what
its health check answers (`healthy_on_port()` is what a probe of its port finds), `clock`
stamps each start, so a fake clock moves grace periods and backoff.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Callable

from laneway.runtime.base import ProcessInfo, ProcessSpec


class FakeRuntime:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.processes: dict[str, ProcessInfo] = {}
        self.specs: dict[str, ProcessSpec] = {}
        self.started: list[str] = []
        """Every key started, in order: a key twice means a process was started again."""
        self.healthy: dict[str, bool] = {}
        self._pids = itertools.count(1000)

    def list_processes(self, environment_id: str | None = None) -> list[ProcessInfo]:
        return [
            p
            for p in self.processes.values()
            if environment_id is None or p.environment_id == environment_id
        ]

    def start_process(self, spec: ProcessSpec) -> ProcessInfo:
        current = self.processes.get(spec.key)
        if current is not None and current.alive:
            return current
        info = ProcessInfo(
            key=spec.key,
            environment_id=spec.environment_id,
            service=spec.service,
            index=spec.index,
            release=spec.release,
            pid=next(self._pids),
            alive=True,
            started_at=self.clock(),
        )
        self.processes[spec.key] = info
        self.specs[spec.key] = spec
        self.started.append(spec.key)
        return info

    def stop_process(self, key: str, *, timeout: float = 10.0) -> None:
        self.processes.pop(key, None)

    def forget(self, key: str) -> None:
        process = self.processes.get(key)
        if process is not None and not process.alive:
            del self.processes[key]

    def crash(self, key: str, exit_code: int = 1) -> None:
        p = self.processes[key]
        self.processes[key] = ProcessInfo(
            p.key,
            p.environment_id,
            p.service,
            p.index,
            p.release,
            p.pid,
            False,
            exit_code,
            p.started_at,
        )

    def set_healthy(self, key: str, healthy: bool) -> None:
        self.healthy[key] = healthy

    def healthy_on_port(self, port: int) -> bool | None:
        """What the health check of the process listening on `port` answers; None when no
        live process has that port (a probe would find nothing listening)."""
        for key, process in self.processes.items():
            spec = self.specs.get(key)
            if process.alive and spec is not None and spec.env.get("PORT") == str(port):
                return self.healthy.get(key, True)
        return None

    def alive(self, environment_id: str | None = None) -> list[str]:
        return sorted(p.key for p in self.list_processes(environment_id) if p.alive)

    def starts(self) -> Counter[str]:
        return Counter(self.started)
