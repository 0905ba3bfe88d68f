"""`laneway server`: the control plane in one process (API, controllers) plus the router process.

App processes and the router outlive this process: stopping or killing it leaves them
serving, and the next start adopts them. `halt` stops everything this LANEWAY_HOME started.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import socket
from collections.abc import Iterator

import httpx
import uvicorn

from laneway.addresses import Address
from laneway.api import auth, flag_service
from laneway.api.flagd_sync import FlagSyncServer
from laneway.composition import build_app, build_context, local_runtime, vault_for
from laneway.controllers.routes import ROUTER_ENVIRONMENT
from laneway.errors import LanewayError, Unavailable
from laneway.settings import Settings
from laneway.store.repository import Store

log = logging.getLogger("laneway.server")


PORT_OPTIONS = {
    "API": "--api HOST:PORT (LANEWAY_API)",
    "router": "--router HOST:PORT (LANEWAY_ROUTER)",
    "flags sync": "--flags-sync HOST:PORT or `off` (LANEWAY_FLAGS_SYNC)",
}
"""What moves each address laneway listens on, as its message names it."""


def port_is_free(host: str, port: int) -> OSError | None:
    """None if `host:port` can be listened on now, else why not."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            return exc
    return None


def check_port_free(host: str, port: int, *, what: str) -> None:
    """Raise, naming the option that moves it, when `what` (a key of PORT_OPTIONS) cannot
    listen on `host:port`."""
    problem = port_is_free(host, port)
    if problem is not None:
        raise Unavailable(
            f"{what} address {Address(host, port)} is not available: {problem.strerror}",
            hint=f"another laneway server (or another program) may hold it; "
            f"move the {what} with {PORT_OPTIONS[what]}",
        )


def our_router_runs(settings: Settings) -> bool:
    """Whether the router this LANEWAY_HOME started runs, on the router address set."""
    rhost, rport = settings.router
    return any(
        p.alive and p.release.split(" ")[0] == f"{rhost}:{rport}"
        for p in local_runtime(settings).list_processes(ROUTER_ENVIRONMENT)
    )


LOCK_FILE = "server.lock"


@contextlib.contextmanager
def owning_state(settings: Settings) -> Iterator[None]:
    """Hold the state directory for this server's life: an exclusive lock (flock) on
    `state/server.lock`, which holds our pid. A second server on the same directory would
    fight this one over the router and the app processes; it is refused, naming the holder.
    The kernel releases the lock when this process ends, however it ends."""
    try:
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(settings.state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise Unavailable(f"cannot use LANEWAY_HOME {settings.home}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise Unavailable(
                f"another laneway server (pid {holder}) is running on {settings.state_dir}",
                hint="stop it first, or give this one its own LANEWAY_HOME",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def open_store(settings: Settings) -> Store:
    try:
        settings.make_dirs()
    except OSError as exc:
        raise Unavailable(f"cannot use LANEWAY_HOME {settings.home}: {exc.strerror}") from None
    # scratch space of builds a previous run was doing when it stopped
    shutil.rmtree(settings.home / "tmp", ignore_errors=True)
    return Store.open(settings.database_url, vault=vault_for(settings))


def api_url(settings: Settings) -> str:
    host, port = settings.api
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def serve(settings: Settings) -> None:
    with owning_state(settings):
        await _serve(settings)


async def _serve(settings: Settings) -> None:
    host, port = settings.api
    check_port_free(host, port, what="API")
    rhost, rport = settings.router
    if not our_router_runs(settings):  # our own router, adopted, may hold it; nothing else
        check_port_free(rhost, rport, what="router")
    if settings.flags_sync is not None:
        check_port_free(*settings.flags_sync, what="flags sync")
    store = open_store(settings)
    token = auth.ensure_admin_token(store, settings.client_config, api_url(settings))
    if token is not None:
        log.info(
            "created the first admin, principal 'admin'; its token is in %s (mode 0600), "
            "where the CLI reads it",
            settings.client_config,
        )
    elif not settings.client_config.exists():
        log.warning("no client config at %s; set LANEWAY_TOKEN", settings.client_config)
    ctx = build_context(settings, store)
    app = build_app(ctx)
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", lifespan="on", access_log=False
    )
    server = uvicorn.Server(config)
    # flagd's sync service for in-process providers, in this event loop (api/flagd_sync.py)
    sync = None
    if settings.flags_sync is not None:
        sync = FlagSyncServer(flag_service.get(app), settings.flags_sync)
    try:
        if sync is not None:
            await sync.start()
        await server.serve()
    finally:
        if sync is not None:
            await sync.stop()
        store.close()


def running_api(settings: Settings) -> str | None:
    """The URL of this instance's API if a laneway server answers there: at the address in
    the settings, or the one the client config names (where the first start wrote it)."""
    urls = [api_url(settings)]
    with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
        urls.append(str(json.loads(settings.client_config.read_text())["url"]))
    for url in dict.fromkeys(urls):
        with contextlib.suppress(httpx.HTTPError, ValueError):
            response = httpx.get(f"{url}/api/v1/status", timeout=1)
            if response.status_code in (200, 401) and response.headers.get(
                "content-type", ""
            ).startswith(("application/json", "application/problem+json")):
                return url
    return None


def halt(settings: Settings) -> list[str]:
    """Stop every process this instance started: app replicas, hooks and the router."""
    names = {ROUTER_ENVIRONMENT: "laneway", **_environment_names(settings)}
    runtime = local_runtime(settings)
    stopped = []
    processes = runtime.list_processes()
    for process in sorted(processes, key=lambda p: p.environment_id == ROUTER_ENVIRONMENT):
        runtime.stop_process(process.key, timeout=10)
        where = names.get(process.environment_id, process.environment_id)
        stopped.append(f"{where} {process.service}/{process.index} (pid {process.pid})")
    return stopped


def _environment_names(settings: Settings) -> dict[str, str]:
    """Environment id -> `app/name`, when the store can be read (halt works without it)."""
    if not (settings.state_dir / "laneway.db").exists() and settings.store_url is None:
        return {}
    try:
        store = Store.open(settings.database_url)
    except LanewayError:
        return {}
    try:
        return {e.id: f"{e.app}/{e.name}" for e in store.list_environments()}
    finally:
        store.close()
