"""Garbage collection: remove what belongs to no environment in the store.

Covers every crash window of create and destroy: a process, database, directory or port
lease whose environment record is gone is removed here. Listing what exists comes before
reading the store, so an environment created meanwhile is never mistaken for an orphan.
"""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime

from laneway.controllers.builds import BUILD_ENVIRONMENT
from laneway.controllers.context import Context
from laneway.controllers.routes import ROUTER_ENVIRONMENT
from laneway.errors import LanewayError

log = logging.getLogger("laneway.gc")

EVENTS_KEPT_AFTER_DELETE = 3600.0


def collect_garbage(ctx: Context) -> list[str]:
    """Remove orphans; returns a line per thing removed."""
    processes = ctx.runtime.list_processes()
    owned: dict[str, set[str]] = {}
    for type_, provider in ctx.providers.items():
        try:
            owned[type_] = provider.owned_environments()
        except LanewayError as exc:
            log.warning("gc: cannot list %s resources: %s", type_, exc)
    directories = [
        path
        for root in (ctx.settings.environments_dir, ctx.settings.logs_dir)
        if root.is_dir()
        for path in root.iterdir()
        if path.is_dir()
    ]
    leases = ctx.store.leases()
    known = {environment.id for environment in ctx.store.list_environments()}
    removed = []
    for process in processes:
        if process.environment_id in known or process.environment_id in (
            ROUTER_ENVIRONMENT,
            BUILD_ENVIRONMENT,  # this control plane's own builds; leftovers are stopped at start
        ):
            continue
        if process.alive:
            ctx.runtime.stop_process(process.key, timeout=5)
        ctx.runtime.forget(process.key)
        removed.append(f"process {process.key} (pid {process.pid})")
    for type_, environment_ids in owned.items():
        for environment_id in environment_ids - known:
            ctx.providers[type_].destroy_all(environment_id)
            removed.append(f"{type_} resources of {environment_id}")
    for path in directories:
        if path.name not in known:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(f"directory {path}")
    for lease in leases:
        if lease.environment_id not in known:
            ctx.store.release_ports(lease.environment_id)
            removed.append(f"port {lease.port}")
    cutoff = datetime.fromtimestamp(ctx.clock() - EVENTS_KEPT_AFTER_DELETE, UTC)
    pruned = ctx.store.prune_events(known, before=cutoff)
    if pruned:
        removed.append(f"{pruned} events of destroyed environments")
    for line in removed:
        log.info("gc: removed orphan %s", line)
    return removed
