"""The local Runtime: each replica is a process group on this machine, labelled so it can be found.

A process is started in a session of its own with three labels in its environment
(LANEWAY_OWNER, LANEWAY_PROCESS_KEY, LANEWAY_PROCESS_RELEASE). `list_processes` reads them back
with psutil, so processes outlive the control plane and a restarted one adopts them, the way
pods outlive a kubelet restart. Output goes straight to a log file opened for append: the
control plane never sits in the path of an app's logs (a replica's command is the redacting
filter, `runtime/redacting.py`, which runs the app in the same process group).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import psutil

from laneway.errors import LanewayError
from laneway.runtime.base import ProcessInfo, ProcessSpec

LABEL_OWNER = "LANEWAY_OWNER"
LABEL_KEY = "LANEWAY_PROCESS_KEY"
LABEL_RELEASE = "LANEWAY_PROCESS_RELEASE"
SCAN_TTL = 0.1


class LocalRuntime:
    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._children: dict[int, tuple[subprocess.Popen[bytes], ProcessSpec, float]] = {}
        self._exited: dict[str, ProcessInfo] = {}
        # controllers call from several threads (observe, gc, routes): one at a time here
        self._lock = threading.RLock()
        self._scanned: tuple[float, tuple[list[ProcessInfo], set[int]]] | None = None
        self._stopping: set[int] = set()  # groups draining after SIGTERM: not orphans
        self._groups: dict[int, str] = {}  # group id -> key, of every leader seen

    def _scan(self) -> tuple[list[ProcessInfo], set[int]]:
        """Processes read at most every SCAN_TTL seconds: every environment's worker lists its
        processes each pass, and our own just-started children are known without it."""
        now = time.monotonic()
        if self._scanned is None or now - self._scanned[0] > SCAN_TTL:
            self._scanned = (now, scan_groups(self.owner))
        return self._scanned[1]

    def list_processes(self, environment_id: str | None = None) -> list[ProcessInfo]:
        with self._lock:
            return self._list_processes(environment_id)

    def _list_processes(self, environment_id: str | None = None) -> list[ProcessInfo]:
        self._reap()
        found: dict[str, ProcessInfo] = dict(self._exited)
        found.update(self._live_children())
        leaders, orphaned_groups = self._scan()
        # groups seen led by one of ours whose leader is gone: members whose own labels are
        # unreadable (setproctitle) are found by their group id alone
        live = {p.pid for p in leaders} | {pid for pid in self._children}
        for pgid in list(self._groups):
            if pgid not in live:
                del self._groups[pgid]
                orphaned_groups = orphaned_groups | ({pgid} if group_members(pgid) else set())
        self._groups.update((p.pid, p.key) for p in leaders)
        for pgid in orphaned_groups - self._stopping:
            kill_group(pgid)
        for info in sorted(leaders, key=lambda p: p.started_at):
            twin = found.get(info.key)
            if twin is not None and twin.alive and twin.pid != info.pid:
                # two processes for one key (a start raced a crash): keep the older one
                self._children.pop(info.pid, None)
                kill_group(info.pid)
                continue
            found[info.key] = info
        return [
            info
            for info in found.values()
            if environment_id is None or info.environment_id == environment_id
        ]

    def start_process(self, spec: ProcessSpec) -> ProcessInfo:
        with self._lock:
            return self._start_process(spec)

    def _start_process(self, spec: ProcessSpec) -> ProcessInfo:
        self._reap()
        running = self._live_children()
        if spec.key in running:
            return running[spec.key]
        for info in scan(self.owner):
            if info.key == spec.key:
                return info
        self._exited.pop(spec.key, None)
        env = {**spec.env, **labels(self.owner, spec.key, spec.release)}
        log_path = spec.log_path or Path(os.devnull)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab", buffering=0) as log:
            try:
                child = subprocess.Popen(
                    ["/bin/sh", "-c", spec.command],
                    cwd=spec.cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                raise LanewayError(f"cannot start {spec.key}: {exc.strerror}") from None
        self._children[child.pid] = (child, spec, time.time())
        return self._live_children()[spec.key]

    def stop_process(self, key: str, *, timeout: float = 10.0) -> None:
        with self._lock:  # find them under the lock; wait for them outside it
            self._exited.pop(key, None)
            self._scanned = None
            pids = {info.pid for info in scan(self.owner) if info.key == key}
            pids |= {pid for pid, (_, spec, _) in self._children.items() if spec.key == key}
            owned = {pid: self._children.pop(pid, None) for pid in pids}
            self._stopping |= pids
        try:
            for pid, child in owned.items():
                terminate_group(pid, timeout=timeout, child=child[0] if child else None)
        finally:
            with self._lock:
                self._stopping -= pids

    def forget(self, key: str) -> None:
        with self._lock:
            return self._forget(key)

    def _forget(self, key: str) -> None:
        self._exited.pop(key, None)

    def _live_children(self) -> dict[str, ProcessInfo]:
        """Our own children, which /proc shows with their labels only once they have exec'd."""
        return {
            spec.key: _child_info(pid, spec, started)
            for pid, (child, spec, started) in self._children.items()
            if child.returncode is None
        }

    def _reap(self) -> None:
        """Collect exit codes of our own children; adopted processes are reaped by init."""
        for pid, (child, spec, started) in list(self._children.items()):
            code = child.poll()
            if code is None:
                continue
            del self._children[pid]
            self._exited[spec.key] = _child_info(pid, spec, started, exit_code=code)


def _child_info(
    pid: int, spec: ProcessSpec, started_at: float, *, exit_code: int | None = None
) -> ProcessInfo:
    return ProcessInfo(
        key=spec.key,
        environment_id=spec.environment_id,
        service=spec.service,
        index=spec.index,
        release=spec.release,
        pid=pid,
        alive=exit_code is None,
        exit_code=exit_code,
        started_at=started_at,
    )


def labels(owner: str, key: str, release: str = "") -> dict[str, str]:
    """The variables by which `scan` recognises a process group as `owner`'s `key`; also
    given to processes laneway starts without this runtime (builds), so that a restarted
    control plane finds them."""
    return {LABEL_OWNER: owner, LABEL_KEY: key, LABEL_RELEASE: release}


def _split_key(key: str) -> tuple[str, str, int]:
    environment_id, service, index = key.split("/")[:3]
    return environment_id, service, int(index)


def scan(owner: str) -> list[ProcessInfo]:
    """Every live process group leader on this machine labelled with `owner`."""
    return scan_groups(owner)[0]


def scan_groups(owner: str) -> tuple[list[ProcessInfo], set[int]]:
    """Live labelled group leaders, and the groups whose leader is gone but members live on
    (a replica whose `sh -c` wrapper was killed): those are broken and must be stopped.

    The leader is always the `sh` laneway started, which keeps its environment, so its
    labels stay readable even when the app rewrites its own (setproctitle does)."""
    leaders = []
    members: set[int] = set()
    boot_error = _boot_time_error()
    for process in psutil.process_iter():
        try:
            labels = process.environ()
            if labels.get(LABEL_OWNER) != owner:
                continue
            key = labels.get(LABEL_KEY, "")
            if key.count("/") not in (2, 3) or not _running(process):
                continue
            pgid = os.getpgid(process.pid)
            if pgid != process.pid:
                members.add(pgid)
                continue
            started_at = process.create_time() + boot_error
        except (psutil.Error, ProcessLookupError):
            continue
        environment_id, service, index = _split_key(key)
        leaders.append(
            ProcessInfo(
                key=key,
                environment_id=environment_id,
                service=service,
                index=index,
                release=labels.get(LABEL_RELEASE, ""),
                pid=process.pid,
                alive=True,
                started_at=started_at,
            )
        )
    live = {p.pid for p in leaders}
    return leaders, {pgid for pgid in members - live if not _alive(pgid)}


def _running(process: psutil.Process) -> bool:
    return process.status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)


def _alive(pid: int) -> bool:
    try:
        return _running(psutil.Process(pid))
    except psutil.NoSuchProcess:
        return False


def _boot_time_error() -> float:
    """What to add to psutil's create times: they count from the boot time that /proc/stat
    gives in whole seconds, up to a second early; CLOCK_BOOTTIME (the uptime) gives the exact
    one, so an adopted process's age is as precise as a child's."""
    return time.time() - time.clock_gettime(time.CLOCK_BOOTTIME) - psutil.boot_time()


def group_members(pgid: int) -> list[psutil.Process]:
    """The live (not zombie) processes of a process group, its leader or not."""
    found = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == pgid and _running(process):
                found.append(process)
        except (psutil.Error, ProcessLookupError):
            continue
    return found


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def terminate_group(
    pgid: int, *, timeout: float, child: subprocess.Popen[bytes] | None = None
) -> None:
    """SIGTERM the process group, wait up to `timeout` for every member to exit, then
    SIGKILL what is left (members forked meanwhile too)."""
    members = group_members(pgid)
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    else:
        _wait_exited(members, timeout=timeout)
    kill_group(pgid)
    if child is not None:
        child.wait()


def _wait_exited(members: list[psutil.Process], *, timeout: float) -> None:
    """Like psutil.wait_procs, but a zombie counts as exited: for a process that is not our
    child, wait_procs waits until init has reaped it, which some inits do only every second
    or two, and where nothing reaps (laneway as a container's pid 1), never."""
    deadline = time.monotonic() + timeout
    while any(_still_running(process) for process in members):
        if time.monotonic() >= deadline:
            return
        time.sleep(0.02)


def _still_running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and _running(process)
    except psutil.NoSuchProcess:
        return False
