"""Grants (role bindings): a principal's role on one environment of an app, or on an
environment kind of an app or of every app. The rules, free of I/O: `store/access.py` keeps
grants, `api/auth.py` checks a request with them, `api/access.py` manages them.

A principal's role for an environment is the highest of its own (global) role and of the
grants that match that environment, by name or by kind. A change to an environment needs
the developer role if the environment is not protected, the deployer role if it is; whether
it is protected is decided by what runs (api/protection.py), never by the request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from laneway.core.types import Kind, Role
from laneway.errors import Forbidden, InvalidInput

GRANTABLE = (Role.DEVELOPER, Role.DEPLOYER)
"""Viewer is every principal's least role; admin manages principals, which has no scope."""
_LABEL = re.compile(r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$")
"""An app's or environment's name (spec/names.py `DNS_LABEL`)."""


@dataclass(frozen=True)
class Grant:
    id: str
    principal: str
    """The principal's name."""
    role: Role
    app: str | None
    """None: every app (with a kind only)."""
    environment: str | None
    kind: Kind | None
    created_at: datetime

    @property
    def scope(self) -> str:
        """`shop/staging`, `shop/kind=production`, `*/kind=production`."""
        where = self.environment if self.environment is not None else f"kind={self.kind}"
        return f"{self.app or '*'}/{where}"

    def matches(self, app: str, environment: str, kind: str | None) -> bool:
        if self.app is not None and self.app != app:
            return False
        if self.environment is not None:
            return self.environment == environment
        return kind is not None and str(self.kind) == kind

    def within(self, app: str) -> bool:
        return self.app is None or self.app == app


def check_grant(
    role: Role, *, app: str | None, environment: str | None, kind: str | None
) -> Kind | None:
    """Refuse a grant that is not one role on one environment or one kind; the kind parsed."""
    if role not in GRANTABLE:
        raise InvalidInput(
            f"role {role}: a grant gives {' or '.join(map(str, GRANTABLE))}; "
            "viewer is every principal's already, admin is global only (`laneway access update`)"
        )
    if (environment is None) == (kind is None):
        raise InvalidInput("give exactly one of environment (with its app) or kind")
    if environment is not None and app is None:
        raise InvalidInput(f"environment {environment!r}: give its app too")
    for what, value in (("app", app), ("environment", environment)):
        if value is not None and not _LABEL.fullmatch(value):
            raise InvalidInput(f"{what} {value[:70]!r}: expected a lowercase DNS label")
    if kind is None:
        return None
    try:
        return Kind(kind)
    except ValueError:
        kinds = ", ".join(str(k) for k in Kind)
        raise InvalidInput(f"kind {kind[:40]!r}: expected one of {kinds}") from None


def role_for(
    own: Role, grants: Iterable[Grant], *, app: str, environment: str, kind: str | None
) -> Role:
    """The principal's role for environment `app/environment` of `kind` (None: unknown)."""
    return highest([own, *(g.role for g in grants if g.matches(app, environment, kind))])


def best_in(own: Role, grants: Iterable[Grant], *, app: str | None) -> Role:
    """The highest role the principal holds on any environment of `app` (None: of any app)."""
    return highest([own, *(g.role for g in grants if app is None or g.within(app))])


def highest(roles: Iterable[Role]) -> Role:
    order = list(Role)
    return max(roles, key=order.index)


def needed_to_change(*, protected: bool) -> Role:
    return Role.DEPLOYER if protected else Role.DEVELOPER


def refuse(name: str, has: Role, needs: Role, *, where: str | None) -> Forbidden:
    """403 naming the role that was missing, and for which environment."""
    if where is None:
        return Forbidden(f"principal {name!r} has role {has}; this needs {needs}")
    return Forbidden(
        f"principal {name!r} has role {has} on {where}; this needs {needs} on {where}",
        hint=f"an admin may grant it: `laneway access grant {name} {needs} ...`",
    )
