"""Build a ref of an app and record the build: one path for the API's `build` and for the
environment reconciler. Blocking: callers run it in a thread."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from laneway.builds import builder, git
from laneway.controllers.context import Context
from laneway.core.types import BuildRecord
from laneway.errors import InvalidInput


def build_and_record(
    ctx: Context, app: str, ref: str, *, on_output: Callable[[str], None] | None = None
) -> tuple[BuildRecord, bool]:
    """The build of `ref` (made now, or found in the cache) and whether it was cached."""
    repo = Path(ctx.store.get_app(app).repo)
    workdir = ctx.settings.home / "tmp"
    workdir.mkdir(parents=True, exist_ok=True)
    result = builder.build(repo, ref, store=ctx.artifacts, workdir=workdir, on_output=on_output)
    if result.spec.app != app:
        raise InvalidInput(
            f"laneway.yaml at {result.commit[:12]} describes app {result.spec.app!r}, not {app!r}"
        )
    record = ctx.store.record_build(
        BuildRecord(
            id=result.id,
            app=app,
            commit=result.commit,
            ref=ref,
            spec_text=git.show_file(repo, result.commit, "laneway.yaml") or "",
            spec_digest=result.spec_digest,
            created_at=datetime.now(UTC),
        )
    )
    return record, result.cached
