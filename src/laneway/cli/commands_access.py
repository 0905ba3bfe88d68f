"""`laneway access add|list|update|remove|token|tokens|revoke`: principals and their tokens
(`grant|revoke-grant|grants`: cli/commands_grants.py).

An admin's commands. A new token is printed once, alone on standard output (so that
`TOKEN=$(laneway access token ci)` takes it), with a warning on standard error that it is not
shown again. The rules for names and expiries (core/access.py) are checked before any request.
"""

from typing import Any

import typer

from laneway.cli import output
from laneway.cli.client import Client, path
from laneway.cli.options import JsonOpt

access_app = typer.Typer(
    help="Principals (users, services for CI) and their tokens: admins only.",
    no_args_is_help=True,
)


def _name(value: str | None) -> str | None:
    from laneway.core import access

    if value is not None and (problem := access.name_problem(value)):
        raise typer.BadParameter(f"{value!r}: {problem}")
    return value


def _role(value: str | None) -> str | None:
    from laneway.core.types import Role

    roles = [str(r) for r in Role]
    if value is not None and value not in roles:
        raise typer.BadParameter(f"{value!r}: expected one of {', '.join(roles)}")
    return value


def _expires(value: str | None) -> str | None:
    from laneway.core import access
    from laneway.errors import InvalidInput

    if value is not None:
        try:
            access.parse_expiry(value)
        except InvalidInput as exc:
            raise typer.BadParameter(exc.message) from None
    return value


def _seconds(expires: str | None) -> int | None:
    from laneway.core import access

    return None if expires is None else int(access.parse_expiry(expires).total_seconds())


NameArg = typer.Argument(..., metavar="NAME", help="The principal's name.", callback=_name)
ExpiresOpt = typer.Option(
    None,
    "--expires",
    help="How long the token lives: 30m, 12h, 90d, 8w, 1y (at most a year). Default: until revoked.",
    callback=_expires,
)


def _when(value: str | None) -> str:
    return "-" if value is None else value[:16].replace("T", " ")


def _print_new_token(token: dict[str, Any], *, as_json: bool, data: Any) -> None:
    if as_json:
        output.print_json(data)
    else:
        expires = _when(token["expires_at"]) if token["expires_at"] else "never"
        output.err().print(
            f"token {token['id']} of {token['principal']} (expires: {expires}):", markup=False
        )
        output.out().print(token["token"], markup=False)
    output.err().print(
        "[yellow]warning:[/] this token is not shown again: store it now (a CI secret, a "
        "password manager)"
    )


@access_app.command()
def add(
    name: str = NameArg,
    role: str = typer.Option(
        ..., "--role", help="viewer, developer, deployer or admin.", callback=_role, metavar="ROLE"
    ),
    service: bool = typer.Option(False, "--service", help="A service principal (for CI)."),
    expires: str | None = ExpiresOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Create a user (or with --service, a service principal) and print its first token."""
    body = {
        "name": name,
        "role": role,
        "kind": "service" if service else "user",
        "expires_in": _seconds(expires),
    }
    created = Client().request("POST", path("access", "principals"), json=body)
    principal = created["principal"]
    if not as_json:
        output.err().print(
            f"created {principal['kind']} {principal['name']} with role {principal['role']}",
            markup=False,
        )
    _print_new_token(created["token"], as_json=as_json, data=created)


@access_app.command("list")
def list_(
    removed: bool = typer.Option(False, "--removed", help="The removed principals too."),
    as_json: bool = JsonOpt,
) -> None:
    """The principals, with their role, grants and how many usable tokens each has."""
    params = {"removed": "true"} if removed else {}
    principals = Client().request("GET", path("access", "principals"), params=params)
    if as_json:
        output.print_json(principals)
        return
    table = output.table("NAME", "KIND", "ROLE", "GRANTS", "TOKENS", "CREATED", "REMOVED")
    for p in principals:
        table.add_row(
            output.escape(p["name"]),
            p["kind"],
            p["role"],
            output.escape(", ".join(p.get("grants", [])) or "-"),
            str(p["tokens"]),
            _when(p["created_at"]),
            _when(p["removed_at"]),
        )
    output.out().print(table)


@access_app.command()
def update(
    name: str = NameArg,
    role: str = typer.Option(
        ..., "--role", help="viewer, developer, deployer or admin.", callback=_role, metavar="ROLE"
    ),
) -> None:
    """Give a principal another role (the last admin stays one)."""
    found = Client().request("PATCH", path("access", "principals", name), json={"role": role})
    output.out().print(f"{found['name']} has role {found['role']}", markup=False)


@access_app.command()
def remove(name: str = NameArg) -> None:
    """Remove (disable) a principal: every token of it is refused from now on."""
    Client().request("DELETE", path("access", "principals", name))
    output.out().print(f"removed {name}: its tokens are refused from now on", markup=False)


@access_app.command()
def token(name: str = NameArg, expires: str | None = ExpiresOpt, as_json: bool = JsonOpt) -> None:
    """Make another token for a principal and print it (once)."""
    made = Client().request(
        "POST",
        path("access", "principals", name, "tokens"),
        json={"expires_in": _seconds(expires)},
    )
    _print_new_token(made, as_json=as_json, data=made)


@access_app.command()
def tokens(name: str = NameArg, as_json: bool = JsonOpt) -> None:
    """A principal's tokens: id, state, when made, expiring and last used (never the token)."""
    found = Client().request("GET", path("access", "principals", name, "tokens"))
    if as_json:
        output.print_json(found)
        return
    table = output.table("ID", "STATE", "CREATED", "EXPIRES", "LAST USED", "REVOKED")
    style = {"active": "green", "expired": "yellow", "revoked": "red"}
    for t in found:
        table.add_row(
            t["id"],
            f"[{style.get(t['state'], 'cyan')}]{t['state']}[/]",
            _when(t["created_at"]),
            _when(t["expires_at"]),
            _when(t["last_used_at"]),
            _when(t["revoked_at"]),
        )
    output.out().print(table)


@access_app.command()
def revoke(
    token_id: str = typer.Argument(
        ..., metavar="TOKEN_ID", help="The token's id (`laneway access tokens NAME`)."
    ),
) -> None:
    """Revoke a token: it is refused from its next request on."""
    import re

    if not re.fullmatch(r"[0-9a-f]{1,16}", token_id):
        raise typer.BadParameter(
            f"{token_id!r}: expected a token id such as 3fa2c1d0 (`laneway access tokens NAME`)",
            param_hint="TOKEN_ID",
        )
    revoked = Client().request("DELETE", path("access", "tokens", token_id))
    output.out().print(f"revoked token {revoked['id']} of {revoked['principal']}", markup=False)
