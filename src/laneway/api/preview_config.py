"""What a new preview starts with: the config variables that staging's running spec lets it
copy (`environments.preview.copy_config`), from staging's config.

Read from what staging runs (its live release's spec and config), never from the preview's
own branch: a branch cannot grant itself staging's secrets. No such list, no staging, or
more than one: nothing is copied, and the preview starts with no config at all.
"""

from __future__ import annotations

from laneway.api import protection
from laneway.controllers.context import Context
from laneway.core.config import ConfigEntry
from laneway.core.types import Kind


def copied_config(ctx: Context, app: str) -> tuple[dict[str, ConfigEntry], str | None]:
    """The variables a new preview of `app` starts with, and the staging they come from."""
    stagings = [e for e in ctx.store.list_environments(app) if e.kind == Kind.STAGING]
    if len(stagings) != 1:
        return {}, None
    staging = stagings[0]
    spec = protection.running_spec(ctx, staging)
    overrides = spec.overrides_for(str(Kind.PREVIEW)) if spec is not None else None
    if overrides is None or not overrides.copy_config:
        return {}, None
    stable = staging.rollout.stable
    if stable is None:
        return {}, None
    config = ctx.vault.open(ctx.store.sealed_config(staging.id, stable.release))
    return {key: config[key] for key in overrides.copy_config if key in config}, staging.name
