"""Gathering what a protection check needs: the spec of what is deployed, the build already
made of a commit, and the releases of the environment before in the pipeline. The rule itself
is `core.pipeline.check_protection`; environment creation and every later release use this.
"""

from __future__ import annotations

from pathlib import Path

from laneway.builds import git
from laneway.controllers.context import Context
from laneway.core import pipeline
from laneway.errors import NotFound
from laneway.spec.loader import load_spec_text
from laneway.spec.model import Spec


def build_of_commit(ctx: Context, app: str, commit: str) -> str | None:
    """The build made of `commit` already, if any (builds are cached per commit)."""
    return next((b.id for b in ctx.store.list_builds(app) if b.commit == commit), None)


def spec_at(ctx: Context, app: str, commit: str) -> Spec:
    text = git.show_file(Path(ctx.store.get_app(app).repo), commit, "laneway.yaml") or ""
    return load_spec_text(text, filename="laneway.yaml")


def check(
    ctx: Context,
    *,
    app: str,
    name: str,
    kind: str,
    specs: list[Spec],
    build_id: str | None,
    hotfix: bool,
    reason: str | None,
) -> None:
    """Refuse `build_id` for environment `name` if any of `specs` protects its kind and the
    build has not run healthy in the environment before it in the (last spec's) pipeline."""
    if not specs:
        return
    order = specs[-1].pipeline
    before = pipeline.previous_in_pipeline(order, name)
    previous = []
    if before is not None:
        try:
            previous = ctx.store.releases(ctx.store.get_environment(app, before).id)
        except NotFound:
            previous = []
    pipeline.check_protection(
        target=name,
        protected=any(s.protected(kind) for s in specs),
        pipeline=order,
        build_id=build_id,
        previous_releases=previous,
        hotfix=hotfix,
        reason=reason,
    )
