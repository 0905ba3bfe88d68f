"""A principal's role for an environment: its own and its grants, the highest; the role a
change needs there; a grant's scope checked."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from laneway.core import grants
from laneway.core.grants import Grant
from laneway.core.types import Kind, Role
from laneway.errors import InvalidInput

NOW = datetime(2026, 12, 8, tzinfo=UTC)


def grant(role: Role, app: str | None, environment: str | None, kind: Kind | None) -> Grant:
    return Grant("g1", "dana", role, app, environment, kind, NOW)


STAGING = grant(Role.DEPLOYER, "shop", "staging", None)
PRODUCTION = grant(Role.DEPLOYER, None, None, Kind.PRODUCTION)
PREVIEWS = grant(Role.DEVELOPER, "shop", None, Kind.PREVIEW)


@pytest.mark.parametrize(
    ("own", "held", "app", "environment", "kind", "role"),
    [
        (Role.VIEWER, [], "shop", "staging", "staging", Role.VIEWER),
        (Role.VIEWER, [STAGING], "shop", "staging", "staging", Role.DEPLOYER),
        (Role.VIEWER, [STAGING], "blog", "staging", "staging", Role.VIEWER),
        (Role.VIEWER, [STAGING], "shop", "production", "production", Role.VIEWER),
        (Role.DEVELOPER, [PRODUCTION], "blog", "live", "production", Role.DEPLOYER),
        (Role.DEVELOPER, [PRODUCTION], "blog", "live", None, Role.DEVELOPER),
        (Role.VIEWER, [PREVIEWS], "shop", "pr-1", "preview", Role.DEVELOPER),
        (Role.VIEWER, [PREVIEWS], "blog", "pr-1", "preview", Role.VIEWER),
        (Role.ADMIN, [PREVIEWS], "shop", "pr-1", "preview", Role.ADMIN),  # never lowered
        (Role.VIEWER, [PREVIEWS, STAGING], "shop", "staging", "staging", Role.DEPLOYER),
    ],
)
def test_the_role_for_an_environment_is_the_highest_that_matches(
    own, held, app, environment, kind, role
):
    assert grants.role_for(own, held, app=app, environment=environment, kind=kind) is role


def test_the_best_role_in_an_app_counts_its_grants_and_those_of_every_app():
    assert grants.best_in(Role.VIEWER, [STAGING], app="shop") is Role.DEPLOYER
    assert grants.best_in(Role.VIEWER, [STAGING], app="blog") is Role.VIEWER
    assert grants.best_in(Role.VIEWER, [PRODUCTION], app="blog") is Role.DEPLOYER
    assert grants.best_in(Role.VIEWER, [STAGING], app=None) is Role.DEPLOYER


def test_a_change_needs_a_developer_unless_protected():
    assert grants.needed_to_change(protected=False) is Role.DEVELOPER
    assert grants.needed_to_change(protected=True) is Role.DEPLOYER
    assert list(Role) == [Role.VIEWER, Role.DEVELOPER, Role.DEPLOYER, Role.ADMIN]
    assert Role.DEPLOYER.includes(Role.DEVELOPER) and not Role.DEVELOPER.includes(Role.DEPLOYER)


def test_a_grant_shows_where_it_applies():
    assert STAGING.scope == "shop/staging"
    assert PRODUCTION.scope == "*/kind=production"
    assert PREVIEWS.scope == "shop/kind=preview"


@pytest.mark.parametrize(
    ("role", "app", "environment", "kind", "message"),
    [
        (Role.ADMIN, None, None, "production", "admin is global only"),
        (Role.VIEWER, None, None, "production", "viewer is every principal's already"),
        (Role.DEPLOYER, "shop", None, None, "give exactly one of environment"),
        (Role.DEPLOYER, "shop", "staging", "staging", "give exactly one of environment"),
        (Role.DEPLOYER, None, "staging", None, "environment 'staging': give its app too"),
        (Role.DEPLOYER, "Shop", None, "staging", "app 'Shop': expected a lowercase DNS label"),
        (Role.DEPLOYER, None, None, "prod", "kind 'prod': expected one of development, preview"),
    ],
)
def test_a_bad_grant_is_refused_saying_what_and_where(role, app, environment, kind, message):
    with pytest.raises(InvalidInput, match=message):
        grants.check_grant(role, app=app, environment=environment, kind=kind)


def test_a_refusal_names_the_role_missing_and_the_environment():
    refused = grants.refuse("ci", Role.DEVELOPER, Role.DEPLOYER, where="shop/production")
    assert refused.message == (
        "principal 'ci' has role developer on shop/production; this needs deployer on "
        "shop/production"
    )
    assert grants.refuse("ci", Role.VIEWER, Role.ADMIN, where=None).message == (
        "principal 'ci' has role viewer; this needs admin"
    )
