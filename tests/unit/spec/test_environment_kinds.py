"""Per-kind settings read from the spec staging or production runs: `copy_config` (the staging
variables a new preview may start with) and `approvals` (protected environments only)."""

from __future__ import annotations

from tests.unit.spec.loader_support import problems

from laneway.spec.loader import load_spec_text

BASE = "app: shop\nservices:\n  web: {command: run}\nenvironments:\n"


def test_previews_name_the_variables_they_may_copy() -> None:
    spec = load_spec_text(BASE + "  preview: {copy_config: [STRIPE_TEST_KEY, MAPS_KEY]}\n")
    overrides = spec.overrides_for("preview")
    assert overrides is not None and overrides.copy_config == ["STRIPE_TEST_KEY", "MAPS_KEY"]


def test_only_previews_copy_config() -> None:
    found = problems(BASE + "  staging: {copy_config: [KEY]}\n")
    assert found == [
        "laneway.yaml:5:13: environments.staging.copy_config: "
        "only previews start with config copied from staging"
    ]


def test_a_copied_name_is_a_variable_name() -> None:
    found = problems(BASE + "  preview: {copy_config: [not-a-name]}\n")
    assert found == [
        "laneway.yaml:5:27: environments.preview.copy_config[0]: expected a variable name like "
        "`LOG_LEVEL` (letters, digits and '_', not starting with a digit), got 'not-a-name'"
    ]


def test_approvals_are_for_protected_environments() -> None:
    spec = load_spec_text(
        BASE + "  production: {approvals: 2}\n  staging: {protected: true, approvals: 1}\n"
    )
    assert (spec.approvals("production"), spec.approvals("staging"), spec.approvals("preview")) == (
        2,
        1,
        0,
    )
    assert problems(BASE + "  staging: {approvals: 1}\n") == [
        "laneway.yaml:5:13: environments.staging.approvals: "
        "approvals apply to protected environments: add `protected: true`"
    ]


def test_the_hotfix_role_is_deployer_unless_the_spec_says_admin() -> None:
    spec = load_spec_text(BASE + "  production: {hotfix_role: admin}\n")
    assert (spec.hotfix_role("production"), spec.hotfix_role("staging")) == ("admin", "deployer")
    found = problems(BASE + "  production: {hotfix_role: developer}\n")
    assert len(found) == 1 and "environments.production.hotfix_role" in found[0], found


def test_a_hotfix_needs_admin_where_changes_wait_for_approvals() -> None:
    spec = load_spec_text(BASE + "  production: {approvals: 1}\n")
    assert spec.hotfix_role("production") == "admin"
    said = load_spec_text(BASE + "  production: {approvals: 1, hotfix_role: deployer}\n")
    assert said.hotfix_role("production") == "deployer"
