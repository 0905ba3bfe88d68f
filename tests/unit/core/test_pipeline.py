"""The pipeline's rules as tables: protection, promotion order, rollback choice, drift, config."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from laneway.core import config as configs
from laneway.core import pipeline
from laneway.core.types import Release, ReleaseState
from laneway.errors import Conflict, Forbidden, InvalidInput

from .test_environments import environment

T = datetime(2026, 1, 1, tzinfo=UTC)
B1, B2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64


def release(number: int, state: ReleaseState, build: str | None = B1) -> Release:
    return Release("e1", number, build, "c" * 40, 0, state, "", "admin", T, T)


ORDER = ["staging", "production"]


def protect(**changes: object) -> None:
    args = dict(
        target="production",
        protected=True,
        pipeline=ORDER,
        build_id=B2,
        previous_releases=[release(1, ReleaseState.SUPERSEDED, B1)],
        hotfix=False,
        reason=None,
    )
    args.update(changes)
    pipeline.check_protection(**args)  # type: ignore[arg-type]


def test_protected_takes_only_builds_that_ran_healthy_before_it():
    with pytest.raises(Forbidden, match="only takes builds that ran healthy in staging"):
        protect()
    protect(build_id=B1)  # superseded: it was live in staging
    with pytest.raises(Forbidden):
        protect(previous_releases=[release(2, ReleaseState.FAILED, B2)])
    with pytest.raises(Forbidden, match="not built yet"):
        protect(build_id=None)
    protect(protected=False)
    protect(target="staging")  # first in the pipeline: nothing before it to have run in


def test_an_environment_outside_the_pipeline_stands_where_its_kind_does():
    kinds = {"staging": "staging", "production": "production", "live": "production"}
    assert pipeline.previous_for(ORDER, "prod2", "production") == "staging"
    assert pipeline.previous_for(["qa", "stage", "live"], "prod2", "production", kinds) == "stage"
    # a kind the pipeline does not hold: after its last environment, so no step is skipped
    assert pipeline.previous_for(ORDER, "edge", "preview") == "production"
    assert pipeline.previous_for(["production"], "prod2", "production") is None
    with pytest.raises(Forbidden, match="prod2 is protected: .* ran healthy in staging"):
        protect(target="prod2", kind="production")
    protect(target="prod2", kind="production", build_id=B1)


def test_an_environment_named_after_a_kind_is_of_that_kind():
    with pytest.raises(InvalidInput, match="named production is of kind production, not preview"):
        pipeline.check_name_and_kind("production", "preview")
    pipeline.check_name_and_kind("production", "production")
    pipeline.check_name_and_kind("prod2", "production")
    pipeline.check_name_and_kind("qa", "staging")


RUNS_PROTECTED = pipeline.Standing(True, ["staging", "production"])
RUNS_UNPROTECTED = pipeline.Standing(False, ["qa", "production"])


@pytest.mark.parametrize(
    ("kind", "own", "same_kind", "expected"),
    [
        # its own live release's spec decides, whatever the others run
        ("production", RUNS_UNPROTECTED, [RUNS_PROTECTED], RUNS_UNPROTECTED),
        ("staging", RUNS_PROTECTED, [], RUNS_PROTECTED),
        # new (or never live): protected if any environment of its kind is
        ("production", None, [RUNS_UNPROTECTED, RUNS_PROTECTED], RUNS_PROTECTED),
        ("production", None, [RUNS_UNPROTECTED], RUNS_UNPROTECTED),
        # nothing of its kind runs: the kind's default
        ("production", None, [], pipeline.Standing(True, ORDER)),
        ("preview", None, [], pipeline.Standing(False, ORDER)),
    ],
)
def test_protection_stands_on_what_runs(kind, own, same_kind, expected):
    decided = pipeline.standing(kind, own=own, same_kind=same_kind, default_pipeline=ORDER)
    assert decided == expected


def test_what_runs_in_other_kinds_only_tightens_a_new_environments_rule():
    longer = ["staging", "beta", "production"]
    unprotecting = pipeline.Standing(False, longer)
    decided = pipeline.standing(
        "production", own=None, same_kind=[], default_pipeline=ORDER, others=[unprotecting]
    )
    # staging may run any branch: its spec cannot lift production's protection,
    # but its longer pipeline is followed as well as the default one
    assert decided.protected
    assert decided.pipelines() == [ORDER, longer]
    protecting = pipeline.Standing(True, ORDER)
    preview = pipeline.standing(
        "preview", own=None, same_kind=[], default_pipeline=ORDER, others=[protecting]
    )
    assert preview.protected and preview.pipelines() == [ORDER]


def test_destroying_a_protected_environment_needs_a_hotfix_and_reason():
    with pytest.raises(Forbidden, match="destroying it needs"):
        pipeline.check_destroy(name="production", protected=True, hotfix=False, reason=None)
    with pytest.raises(InvalidInput, match="--reason"):
        pipeline.check_destroy(name="production", protected=True, hotfix=True, reason="")
    with pytest.raises(InvalidInput, match="goes with --hotfix"):
        pipeline.check_destroy(name="qa", protected=False, hotfix=False, reason="tidy")
    pipeline.check_destroy(name="production", protected=True, hotfix=True, reason="INC-9")
    pipeline.check_destroy(name="qa", protected=False, hotfix=False, reason=None)


def test_hotfix_bypasses_protection_only_with_a_reason():
    protect(hotfix=True, reason="checkout is down")
    with pytest.raises(InvalidInput, match="--reason"):
        protect(hotfix=True, reason="  ")
    with pytest.raises(InvalidInput, match="goes with --hotfix"):
        protect(build_id=B1, reason="why not")


@pytest.mark.parametrize(
    ("source", "target", "error"),
    [
        ("staging", "production", None),
        ("production", "staging", "does not come after"),
        ("staging", "staging", "does not come after"),
        ("qa", "production", "qa is not in the pipeline"),
    ],
)
def test_promotion_follows_the_pipeline(source, target, error):
    if error is None:
        pipeline.check_promotion(ORDER, source, target)
    else:
        with pytest.raises(InvalidInput, match=error):
            pipeline.check_promotion(ORDER, source, target)


def test_rollback_goes_to_the_release_live_before_the_live_one():
    history = [
        release(1, ReleaseState.SUPERSEDED),
        release(2, ReleaseState.SUPERSEDED),
        release(3, ReleaseState.FAILED),
        release(4, ReleaseState.LIVE),
    ]
    live = history[-1]
    assert pipeline.rollback_target(history, live, None).number == 2
    assert pipeline.rollback_target(history, live, 1).number == 1
    with pytest.raises(InvalidInput, match="failed and never took traffic"):
        pipeline.rollback_target(history, live, 3)
    with pytest.raises(InvalidInput, match="live release already"):
        pipeline.rollback_target(history, live, 4)
    with pytest.raises(InvalidInput, match="no such release"):
        pipeline.rollback_target(history, live, 9)
    with pytest.raises(InvalidInput, match="first release that was live"):
        pipeline.rollback_target(history[:1], history[0], None)


def test_one_deploy_at_a_time():
    pipeline.check_not_in_progress(environment())
    with pytest.raises(Conflict, match="deploy of v2 to feature-x is in progress"):
        pipeline.check_not_in_progress(environment(release=2, target=2, live=1))
    pipeline.check_not_in_progress(environment(live=0, failure="build failed"))


def side(name: str, **changes: object) -> pipeline.Side:
    base = pipeline.Side(
        name=name,
        build_id=B1,
        commit="c" * 40,
        release="v3",
        config={"A": ("hmac:1", False, "1"), "KEY": ("hmac:k", True, None)},
        resources={"db": "postgres 15.4"},
        overrides={},
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_diff_is_in_parity_on_everything_but_declared_differences():
    same = pipeline.diff(
        side("s"),
        side("p", release="v9", overrides={"replicas": {"web": 2}}),
        declared_config=set(),
    )
    assert same.in_parity
    assert {r.status for r in same.rows} == {"same", "info", "declared"}

    extra = side("s", config={**side("s").config, "ONLY": ("hmac:o", False, "x")})
    drift = pipeline.diff(extra, side("p"), declared_config=set())
    assert not drift.in_parity
    assert [r.status for r in drift.rows if r.item == "ONLY"] == ["left-only"]
    assert pipeline.diff(extra, side("p"), declared_config={"ONLY"}).in_parity

    secret = side("p", config={"A": ("hmac:1", False, "1"), "KEY": ("hmac:other", True, None)})
    rows = {r.item: r for r in pipeline.diff(side("s"), secret, declared_config=set()).rows}
    assert rows["KEY"].status == "differs"
    assert rows["KEY"].left == "(secret) hmac:k"  # a fingerprint, never a value
    assert not pipeline.diff(side("s"), side("p", build_id=B2), declared_config=set()).in_parity


def test_config_assignments_are_checked_before_anything_changes():
    assert configs.parse_assignments(["A=1", "B=x=y", "C="]) == {"A": "1", "B": "x=y", "C": ""}
    with pytest.raises(InvalidInput) as caught:
        configs.parse_assignments(["A", "1X=2", "PORT=3", "LANEWAY_X=4"])
    message = caught.value.message
    assert "argument 1 ('A'): expected KEY=VALUE" in message
    assert "'1X' is not a variable name" in message
    assert "laneway sets PORT itself" in message and "reserved for laneway" in message
    with pytest.raises(InvalidInput, match="not set: B"):
        configs.without({"A": configs.ConfigEntry("1")}, ["B"])


def test_flag_states_differ_by_design_but_a_missing_flag_is_drift():
    left = side("s", flags={"new-checkout": "ENABLED default=on", "banner": "DISABLED"})
    right = side("p", flags={"new-checkout": "DISABLED"})
    drift = pipeline.diff(left, right, declared_config=set())
    statuses = {r.item: r.status for r in drift.rows if r.section == "flags"}
    assert statuses == {"new-checkout": "declared", "banner": "left-only"}
    assert not drift.in_parity
