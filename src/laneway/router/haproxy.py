"""The HAProxy data plane: a `RouterDriver` that runs HAProxy and hands it routing tables.

Chosen by `LANEWAY_ROUTER_DATA_PLANE=haproxy` (the routing controller's table of data
planes). The driver starts `haproxy -W` (master-worker) in a session of its own, so that it
outlives a control plane's restart like the built-in router, and adopts it from its pid
file after one. Its files live in one directory of laneway's state dir: the config, the
split map, the runtime API socket, the master socket, the log socket and the pid file.

`apply(table)` writes the config and the split map (`router.haproxy_config`). A table that
only moves weights (or a split's offset) changes the map alone: one `set map` per route
through the runtime API, no reload. A table whose routes, pools, servers or split names
change needs a new config: the master reloads (its CLI's `reload`), seamlessly (the listening socket
passes to the new worker; the old one finishes its requests). `verify(table)` asks the
running worker which config it loaded (`show info`, whose description is the config's
digest), its map (`show map`) and its servers (`show servers state`). `read_counters()`
reads `show stat` per backend and the latency histogram from the request log.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from ipaddress import ip_address
from pathlib import Path

import psutil

from laneway import errors
from laneway.core.measurements import Measurement
from laneway.core.routing import RoutingTable
from laneway.router import haproxy_config
from laneway.router.base import CounterKey, CounterSnapshot
from laneway.router.driver import write_atomically
from laneway.router.haproxy_api import (
    LatencyLog,
    command,
    parse_info,
    parse_map,
    parse_servers,
    parse_stat,
)

log = logging.getLogger("laneway.router")

EXECUTABLE = "/usr/sbin/haproxy"
START_TIMEOUT = 10.0


def find_haproxy() -> str | None:
    """The haproxy program: Debian's, else the first on PATH."""
    return EXECUTABLE if os.access(EXECUTABLE, os.X_OK) else shutil.which("haproxy")


class HAProxyDriver:
    """Realizes routing tables on an HAProxy it starts, supervises and reloads."""

    def __init__(
        self,
        *,
        listen: tuple[str, int],
        directory: Path,
        executable: str | None = None,
        env: Mapping[str, str] | None = None,
        server_timeout: float = 60.0,
        request_log: bool = True,
    ) -> None:
        """`request_log`: each request logged for the latency histogram (off: none kept,
        HAProxy spared the log's cost; counts stay exact)."""
        self.listen = listen
        self.server_timeout = server_timeout
        self.directory = Path(directory)
        self.executable = executable
        self.env = dict(env or {})
        self.config_path = self.directory / "haproxy.cfg"
        self.map_path = self.directory / haproxy_config.SPLIT_MAP
        self.stats_socket = self.directory / "haproxy.sock"
        self.master_socket = self.directory / "master.sock"
        self.pid_file = self.directory / "haproxy.pid"
        self.log_path = self.directory / "haproxy.log"
        self.paths = haproxy_config.Paths(
            stats_socket=str(self.stats_socket),
            split_map=str(self.map_path),
            log_socket=str(self.directory / "log.sock") if request_log else None,
        )
        self.table: RoutingTable | None = None
        """The table last applied by this driver; None after a control plane's restart
        until the controller applies one (HAProxy serves the files it has meanwhile)."""
        self._process: subprocess.Popen[bytes] | None = None
        self._reload_pending = False
        self._failures = 0
        self._next_start = 0.0
        """A start that failed is tried again after 2, 4, … 30 s (a port taken, a bad config)."""
        self._master: int | None = None
        self._latency: LatencyLog | None = None
        self._seen: dict[int, dict[CounterKey, Measurement]] = {}
        """The last counts read from each worker since the master started: a reload's new
        worker counts from zero, so the total is their sum."""

    # -- the process

    def master_pid(self) -> int | None:
        """The HAProxy master's pid if it runs (ours, or adopted from the pid file)."""
        if self._process is not None:
            if self._process.poll() is None:
                return self._process.pid
            self._process = None
        pid = self._master or _read_pid(self.pid_file)
        if pid is not None and _exists(pid) and _is_our_haproxy(pid, self.config_path):
            self._master = pid
            return pid
        self._master = None
        return None

    def ensure_running(self) -> int | None:
        """Start HAProxy if it does not run; bring its map in line with the table if a
        reload raced a weight step. The master's pid."""
        if self._latency is None and self.paths.log_socket:
            try:
                self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                self._latency = LatencyLog(Path(self.paths.log_socket))
            except OSError as exc:
                raise errors.Unavailable(
                    f"cannot open HAProxy's log socket in {self.directory}: {exc.strerror or exc}"
                ) from exc
        pid = self.master_pid()
        if pid is None:
            if time.monotonic() < self._next_start:
                return None
            try:
                pid = self._start()
            except errors.Unavailable:
                self._failures += 1
                self._next_start = time.monotonic() + min(2.0**self._failures, 30.0)
                raise
            self._failures = 0
        elif self._reload_pending:
            self._reload()
        else:
            self._mend_map()
        return pid

    def _start(self) -> int:
        executable = self.executable or find_haproxy()
        if executable is None:
            raise errors.Unavailable(
                "HAProxy is not installed",
                hint="apt-get install haproxy, or use the built-in router",
            )
        if self.table is not None or not self.config_path.exists():
            self._write_files(self.table or RoutingTable(version=0))
        if self._latency is not None:
            self._latency.reset()
        self._seen.clear()
        with contextlib.suppress(FileNotFoundError):
            self.stats_socket.unlink()
        with open(self.log_path, "ab") as output:
            since = output.tell()
            process = subprocess.Popen(
                [
                    executable,
                    "-W",
                    "-S",
                    f"{self.master_socket},mode,600",
                    "-f",
                    str(self.config_path),
                    "-p",
                    str(self.pid_file),
                ],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={"PATH": "/usr/sbin:/usr/bin:/bin", **self.env},
            )
        deadline = time.monotonic() + START_TIMEOUT
        while self._worker_pid() is None or not self._master_answers():
            if process.poll() is not None or time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                raise errors.Unavailable(f"HAProxy did not start: {self._first_alert(since)}")
            time.sleep(0.01)  # the runtime socket sends no notice when it is bound
        self._process, self._master = process, process.pid
        self._reload_pending = False
        log.info("haproxy: started pid %s on %s:%s", process.pid, *self.listen)
        return process.pid

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop HAProxy (master and workers) and the log reader."""
        pid = self.master_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
            if self._process is not None:
                try:
                    self._process.wait(timeout)
                except subprocess.TimeoutExpired:
                    os.killpg(pid, signal.SIGKILL)
                    self._process.wait()
            else:
                _wait_gone(pid, timeout)
        self._process = self._master = None
        if self._latency is not None:
            self._latency.close()
            self._latency = None

    def worker_pid(self) -> int | None:
        """The pid of the worker that answers the runtime API now (None: none answers)."""
        return self._worker_pid()

    def _worker_pid(self) -> int | None:
        try:
            pid = parse_info(command(self.stats_socket, "show info")).get("pid", "")
        except OSError:
            return None
        return int(pid) if pid.isdigit() else None

    def _master_answers(self) -> bool:
        try:
            return "master" in command(self.master_socket, "show proc", master=True)
        except OSError:
            return False

    def _first_alert(self, since: int) -> str:
        """The first alert (else the last line) HAProxy wrote from offset `since` of its log."""
        try:
            with open(self.log_path, "rb") as output:
                output.seek(since)
                lines = output.read().decode(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        alerts = [line for line in lines if "ALERT" in line]
        return (alerts or lines[-1:] or ["no output"])[0]

    def _read_old_workers(self, current: int) -> None:
        """Counts of the workers a reload replaced, while they finish their requests: the
        master passes a command to any of its workers (`@!<pid>`)."""
        for pid in [seen for seen in self._seen if seen != current]:
            try:
                text = command(self.master_socket, f"@!{pid} show stat", master=True)
            except OSError:
                continue
            counts = _parse_worker_stat(text)
            if counts is not None:
                self._seen[pid] = counts

    # -- RouterDriver

    def apply(self, table: RoutingTable) -> None:
        """Write the table's config and map; a running HAProxy takes the map through the
        runtime API, or reloads if its config changed."""
        changed = self._write_files(table)
        self.table = table
        pid = self.master_pid()
        if pid is None:
            return
        if changed:
            self._reload_pending = True
            self._reload()
        else:
            self._mend_map()

    def _reload(self) -> None:
        """Have the master load the config anew (its CLI's `reload`, which it answers only
        once it is ready for one: a signal could come too early); retried on the next
        tick if it did not answer."""
        self.read_counters()  # the old worker's counts so far
        try:
            command(self.master_socket, "reload", master=True)
        except OSError:
            return
        self._reload_pending = False

    def _write_files(self, table: RoutingTable) -> bool:
        """Write config and map; True if the config changed."""
        try:
            config, _ = haproxy_config.render(
                table, listen=self.listen, paths=self.paths, server_timeout=self.server_timeout
            )
        except haproxy_config.ConfigError as exc:
            raise errors.InvalidInput(f"HAProxy cannot serve this routing table: {exc}") from None
        entries = haproxy_config.render_map(table)
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_atomically(self.map_path, haproxy_config.map_text(entries))
            try:
                same = self.config_path.read_text(encoding="utf-8") == config
            except FileNotFoundError:
                same = False
            if not same:
                write_atomically(self.config_path, config)
        except OSError as exc:
            raise errors.Unavailable(
                f"cannot write HAProxy's config in {self.directory}: {exc.strerror or exc}"
            ) from exc
        return not same

    def _mend_map(self) -> None:
        """`set map` (or add, del) each entry the running worker has otherwise than the
        table: a weight step is one command."""
        if self.table is None:
            return
        wanted = haproxy_config.render_map(self.table)
        path = self.map_path
        try:
            current = parse_map(command(self.stats_socket, f"show map {path}"))
            for key, value in wanted.items():
                if key not in current:
                    command(self.stats_socket, f"add map {path} {key} {value}")
                elif current[key] != value:
                    command(self.stats_socket, f"set map {path} {key} {value}")
            for key in current.keys() - wanted.keys():
                command(self.stats_socket, f"del map {path} {key}")
        except OSError:
            pass  # not answering: verify says so, and the next tick tries again

    def verify(self, table: RoutingTable) -> bool | None:
        """True if the running worker loaded `table`'s config and serves its weights and
        servers; False if it serves anything else; None if it does not answer."""
        try:
            _, digest = haproxy_config.render(
                table, listen=self.listen, paths=self.paths, server_timeout=self.server_timeout
            )
        except haproxy_config.ConfigError:
            return False
        try:
            info = parse_info(command(self.stats_socket, "show info"))
            if info.get("description") != digest:
                return False
            served = parse_map(command(self.stats_socket, f"show map {self.map_path}"))
            if served != haproxy_config.render_map(table):
                return False
            servers = parse_servers(command(self.stats_socket, "show servers state"))
        except OSError:
            return None
        return _same_servers(servers, haproxy_config.servers_of(table))

    def read_snapshot(self) -> CounterSnapshot | None:
        """The counts, since the master process started (reloads included)."""
        pid = self.master_pid()
        if pid is None:
            return None
        try:
            started = psutil.Process(pid).create_time()
        except psutil.Error:
            return None
        counters = self.read_counters()
        return None if counters is None else CounterSnapshot(counters, started)

    def read_counters(self) -> dict[CounterKey, Measurement] | None:
        """Per (hostname, release) since HAProxy started, reloads included."""
        try:
            text = command(self.stats_socket, "show info;show stat")
        except OSError:
            return None
        info_text, _, stat_text = text.partition("\n# ")
        pid = parse_info(info_text).get("pid", "")
        live = parse_stat("# " + stat_text)
        if pid.isdigit():
            self._seen[int(pid)] = live
            self._read_old_workers(int(pid))
        total: dict[CounterKey, Measurement] = {}
        for counts in self._seen.values() if pid.isdigit() else [live]:
            for key, measurement in counts.items():
                total[key] = total[key].plus(measurement) if key in total else measurement
        if self._latency is not None:
            for key, (latency, seconds) in self._latency.histograms().items():
                base = total.get(key, Measurement())
                total[key] = Measurement(
                    requests=base.requests,
                    statuses=base.statuses,
                    errors=base.errors,
                    latency=latency,
                    latency_sum=seconds,
                )
        return total


def _parse_worker_stat(text: str) -> dict[CounterKey, Measurement] | None:
    return parse_stat(text) if text.lstrip().startswith("# pxname") else None


def _same_servers(served: set[tuple[str, str, int]], wanted: set[tuple[str, str, int]]) -> bool:
    """Equal sets of (backend, port), and of addresses where the table names an IP (a name
    is shown resolved)."""
    if {(b, p) for b, _, p in served} != {(b, p) for b, _, p in wanted}:
        return False
    for backend, host, port in wanted:
        with contextlib.suppress(ValueError):
            if (backend, str(ip_address(host)), port) not in served:
                return False
    return True


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _is_our_haproxy(pid: int, config: Path) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(argv) and b"haproxy" in argv[0] and str(config).encode() in argv


def _wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _exists(pid) and time.monotonic() < deadline:
        time.sleep(0.01)  # not our child: nothing to wait on
    if _exists(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def _exists(pid: int) -> bool:
    """Whether `pid` runs (a zombie, which its parent has yet to reap, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"
