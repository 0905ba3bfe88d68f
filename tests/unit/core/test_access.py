"""The rules for principals and tokens (core/access.py): names, expiries, refusals, admins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from laneway.core import access
from laneway.core.access import (
    Credential,
    PrincipalKind,
    PrincipalRecord,
    TokenRecord,
    TokenState,
)
from laneway.core.types import Role
from laneway.errors import Conflict, InvalidInput

NOW = datetime(2026, 12, 8, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize("name", ["alice", "ci-deploy", "0", "a" * 64, "gh-actions-2", "x-"])
def test_good_names(name: str) -> None:
    assert access.name_problem(name) is None
    assert access.check_name(name) == name


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("Alice", "lowercase letters"),
        ("ci_deploy", "lowercase letters"),
        ("-ci", "not first"),
        ("", "lowercase letters"),
        ("a b", "lowercase letters"),
        ("a" * 65, "65 characters long"),
        ("ci/deploy", "lowercase letters"),
        ("é", "lowercase letters"),
    ],
)
def test_bad_names_say_what_is_wrong(name: str, says: str) -> None:
    problem = access.name_problem(name)
    assert problem is not None and says in problem
    with pytest.raises(InvalidInput, match="principal name"):
        access.check_name(name)


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("30m", timedelta(minutes=30)),
        ("12h", timedelta(hours=12)),
        ("90d", timedelta(days=90)),
        ("8w", timedelta(weeks=8)),
        ("1y", timedelta(days=365)),
        ("365d", timedelta(days=365)),
        (" 30d ", timedelta(days=30)),
    ],
)
def test_expiries(text: str, span: timedelta) -> None:
    assert access.parse_expiry(text) == span


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("366d", "at most 1 year"),
        ("2y", "at most 1 year"),
        ("53w", "at most 1 year"),
        ("0d", "longer than nothing"),
        ("30", "expected a duration"),
        ("30s", "expected a duration"),
        ("1d12h", "expected a duration"),
        ("-1d", "expected a duration"),
        ("forever", "expected a duration"),
        ("9999999d", "expected a duration"),
    ],
)
def test_bad_expiries_are_refused(text: str, says: str) -> None:
    with pytest.raises(InvalidInput, match=says):
        access.parse_expiry(text)


def test_expires_at_takes_seconds_from_a_minute_to_a_year() -> None:
    assert access.expires_at(None, now=NOW) is None
    assert access.expires_at(60, now=NOW) == NOW + timedelta(minutes=1)
    assert access.expires_at(365 * 86400, now=NOW) == NOW + timedelta(days=365)
    for seconds in (59, 365 * 86400 + 1, 0, -5):
        with pytest.raises(InvalidInput, match="1 minute to 1 year"):
            access.expires_at(seconds, now=NOW)


def token(**changes: object) -> TokenRecord:
    fields: dict[str, object] = {
        "id": "t1",
        "principal": "ci",
        "created_at": NOW - timedelta(days=1),
        "expires_at": None,
        "last_used_at": None,
        "revoked_at": None,
    } | changes
    return TokenRecord(**fields)  # type: ignore[arg-type]


def principal(name: str = "ci", role: Role = Role.DEPLOYER, **changes: object) -> PrincipalRecord:
    return PrincipalRecord(
        id="p1",
        name=name,
        kind=PrincipalKind.SERVICE,
        role=role,
        created_at=NOW - timedelta(days=2),
        **changes,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("t", "p", "refused"),
    [
        (token(), principal(), None),
        (token(expires_at=NOW + timedelta(seconds=1)), principal(), None),
        (token(expires_at=NOW), principal(), "token expired"),
        (token(expires_at=NOW - timedelta(days=3)), principal(), "token expired"),
        (token(revoked_at=NOW - timedelta(hours=1)), principal(), "token revoked"),
        # revoked and expired: revoked says why it was stopped on purpose
        (token(revoked_at=NOW, expires_at=NOW - timedelta(days=1)), principal(), "token revoked"),
        (token(), principal(removed_at=NOW - timedelta(minutes=1)), "token revoked"),
    ],
)
def test_refusal_says_revoked_or_expired_and_no_more(
    t: TokenRecord, p: PrincipalRecord, refused: str | None
) -> None:
    assert access.refusal(Credential(t, p), now=NOW) == refused


def test_token_states() -> None:
    assert token().state(NOW) is TokenState.ACTIVE
    assert token(expires_at=NOW - timedelta(seconds=1)).state(NOW) is TokenState.EXPIRED
    assert token(revoked_at=NOW).state(NOW) is TokenState.REVOKED


def test_last_use_is_written_at_most_once_a_minute() -> None:
    assert access.touch_due(None, now=NOW)
    assert not access.touch_due(NOW - timedelta(seconds=59), now=NOW)
    assert access.touch_due(NOW - timedelta(seconds=60), now=NOW)


def test_the_last_admin_can_be_neither_removed_nor_demoted() -> None:
    admin = principal("root", Role.ADMIN)
    with pytest.raises(Conflict, match="^cannot remove 'root': it is the last admin"):
        access.check_keeps_an_admin(admin, admins=1)
    for role in (Role.VIEWER, Role.DEPLOYER):
        with pytest.raises(Conflict, match=f"^cannot demote 'root' to {role}: it is the last"):
            access.check_keeps_an_admin(admin, admins=1, role=role)
    access.check_keeps_an_admin(admin, admins=1, role=Role.ADMIN)  # no change
    access.check_keeps_an_admin(admin, admins=2)
    access.check_keeps_an_admin(admin, admins=2, role=Role.VIEWER)
    access.check_keeps_an_admin(principal(), admins=1)  # a deployer goes freely
    access.check_keeps_an_admin(principal(), admins=0)
