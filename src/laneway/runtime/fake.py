"""An in-memory Runtime for controller tests: processes are records, `crash()` kills one."""

from __future__ import annotations

import itertools

from laneway.runtime.base import ProcessInfo, ProcessSpec


class FakeRuntime:
    def __init__(self) -> None:
        self.processes: dict[str, ProcessInfo] = {}
        self.specs: dict[str, ProcessSpec] = {}
        self.started: list[str] = []
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
        )
        self.processes[spec.key] = info
        self.specs[spec.key] = spec
        self.started.append(spec.key)
        return info

    def stop_process(self, key: str, *, timeout: float = 10.0) -> None:
        self.processes.pop(key, None)

    def forget(self, key: str) -> None:
        self.processes.pop(key, None)

    def crash(self, key: str, exit_code: int = 1) -> None:
        p = self.processes[key]
        self.processes[key] = ProcessInfo(
            p.key, p.environment_id, p.service, p.index, p.release, p.pid, False, exit_code
        )
