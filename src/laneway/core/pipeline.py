"""The pipeline's rules: who may deploy what where, what a rollback goes back to, and how two
environments differ. Pure: the API gathers the records, these functions decide.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from laneway.core import rollouts
from laneway.core.types import Environment, Kind, Release, ReleaseState
from laneway.errors import Conflict, Forbidden, InvalidInput


def in_progress(environment: Environment) -> str | None:
    """Why a new release cannot start now (one deploy at a time per environment), or None."""
    if environment.failure or environment.live == 0:
        return None  # nothing serves yet: a new release may replace one that never went live
    if environment.rollout.canary is not None and not rollouts.same_processes(environment.rollout):
        return (
            f"a deploy of {environment.release_name} to {environment.name} is in progress "
            f"({environment.phase}: {environment.message.splitlines()[0] if environment.message else '…'})"
        )
    return None


def check_not_in_progress(environment: Environment) -> None:
    busy = in_progress(environment)
    if busy:
        raise Conflict(
            busy,
            hint=f"wait for it (`laneway env show {environment.name}`), then try again",
        )


def previous_in_pipeline(pipeline: list[str], name: str) -> str | None:
    if name not in pipeline:
        return None
    index = pipeline.index(name)
    return pipeline[index - 1] if index > 0 else None


def check_promotion(pipeline: list[str], source: str, target: str) -> None:
    order = " -> ".join(pipeline)
    for name in (source, target):
        if name not in pipeline:
            raise InvalidInput(
                f"{name} is not in the pipeline ({order})",
                hint="the spec's `pipeline` lists environments in promotion order",
            )
    if pipeline.index(source) >= pipeline.index(target):
        raise InvalidInput(f"{target} does not come after {source} in the pipeline ({order})")


@dataclass(frozen=True)
class Standing:
    """What a spec that runs now says of one environment kind: whether it is protected, and
    the pipeline its builds come through."""

    protected: bool
    pipeline: list[str]
    also: tuple[tuple[str, ...], ...] = ()
    """More pipelines whose order a build must also have followed (they can only refuse)."""
    approvals: int = 0
    """Approvals a change needs before it runs (`core.approvals`); 0 when not protected."""
    hotfix_role: str = "deployer"
    """The role `--hotfix` needs: `deployer`, or `admin` where the spec that runs says so."""

    def pipelines(self) -> list[list[str]]:
        return [self.pipeline, *(list(p) for p in self.also if list(p) != self.pipeline)]


def standing(
    kind: str,
    *,
    own: Standing | None,
    same_kind: list[Standing],
    default_pipeline: list[str],
    others: list[Standing] | None = None,
) -> Standing:
    """An environment's protection, decided by what runs now and never by a proposed spec:
    the spec of its own live release; without one (a new environment, or one whose first
    release never went live), the specs that run in the app's other environments of its kind,
    protected if any of them protects it; with none of those either, the kind's default
    (production is protected) and the default pipeline, tightened (never loosened) by the
    specs that run in the app's environments of other kinds (`others`): protected if one of
    them protects the kind, and each of their pipelines followed too. Those environments may
    be unprotected, so what they run may only add to the rule."""
    if own is not None:
        return own
    guarded = [s for s in same_kind if s.protected]
    if guarded:
        return guarded[0]
    if same_kind:
        return same_kind[0]
    others = others or []
    return Standing(
        kind == "production" or any(o.protected for o in others),
        default_pipeline,
        tuple(dict.fromkeys(tuple(o.pipeline) for o in others)),
        max((o.approvals for o in others), default=0),
        "admin" if any(o.hotfix_role == "admin" for o in others) else "deployer",
    )


def previous_for(
    order: list[str], name: str, kind: str, kinds: Mapping[str, str] | None = None
) -> str | None:
    """The environment whose healthy runs a protected environment's builds need: the one before
    it in the pipeline. An environment outside the pipeline stands where the first of its kind
    does (an environment named as the kind counts as of it; `kinds` maps names to kinds), or
    else after the pipeline's last environment, so that a new name skips no step."""
    if name in order:
        return previous_in_pipeline(order, name)
    kinds = kinds or {}
    for index, entry in enumerate(order):
        if entry == kind or kinds.get(entry) == kind:
            return order[index - 1] if index > 0 else None
    return order[-1] if order else None


def check_name_and_kind(name: str, kind: str) -> None:
    """An environment named after a kind is of that kind: a `production` of kind preview
    would take the production name, hostname and pipeline place without its protection."""
    if name in set(Kind) and name != kind:
        raise InvalidInput(
            f"an environment named {name} is of kind {name}, not {kind}",
            hint=f"add --kind {name}, or choose another name",
        )


def check_hotfix(hotfix: bool, reason: str | None) -> bool:
    """Whether the request asks for a hotfix (with the reason it needs)."""
    if hotfix:
        if not reason or not reason.strip():
            raise InvalidInput('--hotfix needs --reason "...": it is recorded')
        return True
    if reason:
        raise InvalidInput("--reason goes with --hotfix")
    return False


def check_protection(
    *,
    target: str,
    protected: bool,
    pipeline: list[str],
    build_id: str | None,
    previous_releases: list[Release] | None,
    hotfix: bool,
    reason: str | None,
    kind: str | None = None,
    kinds: Mapping[str, str] | None = None,
) -> None:
    """A protected environment takes only a build that ran healthy in the environment before
    it in the pipeline (`previous_for`); `hotfix` with a reason bypasses that (and is
    recorded)."""
    if check_hotfix(hotfix, reason) or not protected:
        return
    before = previous_for(pipeline, target, kind or target, kinds)
    if before is None:
        return
    short = f"build {build_id[7:19]}" if build_id else "the requested commit (not built yet)"
    ran = build_id is not None and any(
        r.build_id == build_id and r.state.ran_healthy for r in previous_releases or []
    )
    if not ran:
        raise Forbidden(
            f"{target} is protected: it only takes builds that ran healthy in {before}, "
            f"and {short} has not",
            hint=f"deploy it to {before} first (`laneway promote {before} {target}` afterwards), "
            'or, for an urgent fix, add --hotfix --reason "..."',
        )


def check_destroy(*, name: str, protected: bool, hotfix: bool, reason: str | None) -> None:
    """Destroying a protected environment needs what deploying an unvetted build to it needs:
    an explicit hotfix with a reason, which is recorded."""
    if check_hotfix(hotfix, reason) or not protected:
        return
    raise Forbidden(
        f"{name} is protected: destroying it needs an explicit hotfix with a reason",
        hint=f'`laneway env destroy {name} --hotfix --reason "..."` (the reason is recorded)',
    )


def rollback_target(releases: list[Release], live: Release | None, to: int | None) -> Release:
    """The release a rollback returns to: `to`, or the one that was live before the live one."""
    by_number = {r.number: r for r in releases}
    if to is not None:
        chosen = by_number.get(to)
        if chosen is None:
            raise InvalidInput(f"--to v{to}: no such release (releases: v1 to v{max(by_number)})")
        if chosen.build_id is None:
            raise InvalidInput(f"--to v{to}: that release has no build")
        if not chosen.state.ran_healthy:
            raise InvalidInput(
                f"--to v{to}: that release is {chosen.state} and never took traffic; "
                "choose one that was live"
            )
        if live is not None and chosen.number == live.number:
            raise InvalidInput(f"v{to} is the live release already")
        return chosen
    if live is None:
        raise InvalidInput("nothing to roll back: no release has been live yet")
    earlier = [
        r
        for r in sorted(releases, key=lambda r: r.number, reverse=True)
        if r.number < live.number and r.state == ReleaseState.SUPERSEDED and r.build_id
    ]
    if not earlier:
        raise InvalidInput(
            f"nothing to roll back to: {live.name} is the first release that was live"
        )
    return earlier[0]


# drift --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    """What `laneway diff` compares of one environment."""

    name: str
    build_id: str | None
    commit: str | None
    release: str
    config: dict[str, tuple[str, bool, str | None]]
    """key -> (fingerprint, secret, value shown or None)"""
    resources: dict[str, str]
    """resource name -> `postgres 15.4`"""
    overrides: dict[str, object]
    """the spec's `environments.<kind>` section for this environment's kind"""
    flags: dict[str, str] | None = None
    """flag key -> state summary, once flags exist"""


@dataclass(frozen=True)
class Row:
    section: str
    item: str
    left: str | None
    right: str | None
    status: str
    """same | differs | declared | left-only | right-only | info"""


@dataclass(frozen=True)
class Drift:
    rows: list[Row] = field(default_factory=list)

    @property
    def in_parity(self) -> bool:
        return not any(r.status in ("differs", "left-only", "right-only") for r in self.rows)


def _compare(left: str | None, right: str | None, *, declared: bool = False) -> str:
    if left == right:
        return "same"
    if declared:
        return "declared"
    if left is None:
        return "right-only"
    if right is None:
        return "left-only"
    return "differs"


def diff(left: Side, right: Side, *, declared_config: set[str]) -> Drift:
    rows = [
        Row(
            "build",
            "build",
            _short(left.build_id),
            _short(right.build_id),
            _compare(left.build_id, right.build_id),
        ),
        Row(
            "build",
            "commit",
            _c(left.commit),
            _c(right.commit),
            _compare(left.commit, right.commit),
        ),
        Row("release", "release", left.release, right.release, "info"),
    ]
    for key in sorted(left.config.keys() | right.config.keys()):
        a, b = left.config.get(key), right.config.get(key)
        declared = key in declared_config
        if a and b and a[1] != b[1]:
            # a secret beside a plain value: comparing them would tell the secret
            status = "declared" if declared else "differs"
        else:
            status = _compare(a[0] if a else None, b[0] if b else None, declared=declared)
        rows.append(Row("config", key, _shown(a), _shown(b), status))
    for name in sorted(left.resources.keys() | right.resources.keys()):
        a_res, b_res = left.resources.get(name), right.resources.get(name)
        rows.append(Row("resources", name, a_res, b_res, _compare(a_res, b_res)))
    for key in sorted(left.overrides.keys() | right.overrides.keys()):
        a_o, b_o = left.overrides.get(key), right.overrides.get(key)
        rows.append(
            Row(
                "overrides",
                key,
                _json(a_o),
                _json(b_o),
                _compare(_json(a_o), _json(b_o), declared=True),
            )
        )
    if left.flags is not None or right.flags is not None:
        lf, rf = left.flags or {}, right.flags or {}
        for key in sorted(lf.keys() | rf.keys()):
            a_f, b_f = lf.get(key), rf.get(key)
            both = a_f is not None and b_f is not None
            rows.append(Row("flags", key, a_f, b_f, _compare(a_f, b_f, declared=both)))
    return Drift(rows)


def _short(build_id: str | None) -> str | None:
    return build_id[7:19] if build_id else None


def _c(commit: str | None) -> str | None:
    return commit[:12] if commit else None


def _shown(entry: tuple[str, bool, str | None] | None) -> str | None:
    if entry is None:
        return None
    fingerprint, secret, value = entry
    return f"(secret) {fingerprint}" if secret else (value or "")


def _json(value: object) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)
