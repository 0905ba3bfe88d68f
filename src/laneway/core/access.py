"""Principals and their tokens: the rules, free of I/O (the store keeps them, `api/auth.py`
checks a request with them, `api/access.py` manages them).

A principal is a user or a service (CI) with a name and a role; a token belongs to one
principal and may expire or be revoked. The role sits on the principal, never on a token, so
that roles per environment can be bound to principals later without touching tokens.
Pure: the caller passes the time it calls now.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from laneway.core.types import Role
from laneway.errors import Conflict, InvalidInput

MAX_NAME = 64
NAME = r"^[a-z0-9][a-z0-9-]{0,63}$"
NAME_RULE = (
    "lowercase letters, digits and '-' (not first), at most "
    f"{MAX_NAME} characters, like `ci-deploy` or `alice`"
)
_NAME = re.compile(NAME)

UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
MAX_EXPIRY = timedelta(days=365)
MAX_EXPIRY_SECONDS = int(MAX_EXPIRY.total_seconds())
MIN_EXPIRY_SECONDS = 60
EXPIRY = re.compile(r"^(\d{1,6})([mhdwy])$")
EXPIRY_RULE = "a duration such as 30m, 12h, 30d, 8w or 1y (at most 1 year)"

LAST_USED_GRANULARITY = timedelta(minutes=1)
"""A token's last use is written at most once a minute: a request does not write the store
each time to say so."""


class PrincipalKind(StrEnum):
    USER = "user"
    SERVICE = "service"
    """A service principal, for CI and other machines."""


class TokenState(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True)
class PrincipalRecord:
    id: str
    name: str
    kind: PrincipalKind
    role: Role
    created_at: datetime
    removed_at: datetime | None = None
    """When it was removed (disabled): its tokens are refused from then on."""
    tokens: int = 0
    """Its tokens that are neither revoked nor known to be expired, as listed."""


@dataclass(frozen=True)
class TokenRecord:
    """A token as it may be shown: never the token itself, nor its hash."""

    id: str
    principal: str
    """The principal's name."""
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    def state(self, now: datetime) -> TokenState:
        if self.revoked_at is not None:
            return TokenState.REVOKED
        if self.expires_at is not None and self.expires_at <= now:
            return TokenState.EXPIRED
        return TokenState.ACTIVE


@dataclass(frozen=True)
class Credential:
    """What a presented token's hash was found to belong to."""

    token: TokenRecord
    principal: PrincipalRecord


def name_problem(value: str) -> str | None:
    """What is wrong with `value` as a principal's name, in words; None when nothing."""
    if _NAME.fullmatch(value):
        return None
    if len(value) > MAX_NAME:
        return f"{len(value)} characters long; expected {NAME_RULE}"
    return f"expected {NAME_RULE}"


def check_name(value: str) -> str:
    if problem := name_problem(value):
        raise InvalidInput(f"principal name {value!r}: {problem}")
    return value


def parse_expiry(text: str) -> timedelta:
    """`--expires 30d`: how long a new token lives, at most a year."""
    match = EXPIRY.fullmatch(text.strip())
    if match is None:
        raise InvalidInput(f"expires {text[:40]!r}: expected {EXPIRY_RULE}")
    number, unit = int(match.group(1)), match.group(2)
    if number == 0:
        raise InvalidInput(f"expires {text!r}: must be longer than nothing; expected {EXPIRY_RULE}")
    span = timedelta(seconds=number * UNITS[unit])
    if span > MAX_EXPIRY:
        raise InvalidInput(f"expires {text!r}: tokens live at most 1 year (365d)")
    return span


def expires_at(seconds: int | None, *, now: datetime) -> datetime | None:
    """When a token made `now` to live `seconds` expires (the API's `expires_in`)."""
    if seconds is None:
        return None
    if not MIN_EXPIRY_SECONDS <= seconds <= MAX_EXPIRY_SECONDS:
        raise InvalidInput(
            f"expires_in {seconds}: expected {MIN_EXPIRY_SECONDS} to {MAX_EXPIRY_SECONDS} "
            "seconds (1 minute to 1 year)"
        )
    return now + timedelta(seconds=seconds)


def refusal(credential: Credential, *, now: datetime) -> str | None:
    """Why the token is refused, saying no more than that; None when it may be used. A
    removed principal's tokens are revoked with it."""
    if credential.principal.removed_at is not None:
        return "token revoked"
    state = credential.token.state(now)
    return None if state is TokenState.ACTIVE else f"token {state}"


def touch_due(last_used_at: datetime | None, *, now: datetime) -> bool:
    return last_used_at is None or now - last_used_at >= LAST_USED_GRANULARITY


def check_keeps_an_admin(
    principal: PrincipalRecord, *, admins: int, role: Role | None = None
) -> None:
    """Refuse removing (role None) or demoting (to `role`) the last admin; `admins` counts
    the principals with the admin role that are not removed, `principal` among them."""
    if principal.role is not Role.ADMIN or role is Role.ADMIN or admins > 1:
        return
    what = f"remove {principal.name!r}" if role is None else f"demote {principal.name!r} to {role}"
    raise Conflict(
        f"cannot {what}: it is the last admin, and nobody could manage principals after",
        hint="add another admin first (`laneway access add NAME --role admin`)",
    )
