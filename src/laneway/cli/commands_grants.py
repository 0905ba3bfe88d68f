"""`laneway access grant|revoke-grant|grants`: a principal's role on one environment of an
app, or on an environment kind of an app or of every app (docs/access.md). An admin's
commands; the rules (core/grants.py) are checked before any request."""

from typing import Any

import typer

from laneway.cli import output
from laneway.cli.client import Client, path
from laneway.cli.options import JsonOpt


def _grantable(value: str) -> str:
    from laneway.core.grants import GRANTABLE

    roles = [str(r) for r in GRANTABLE]
    if value not in roles:
        raise typer.BadParameter(
            f"{value!r}: a grant gives {' or '.join(roles)} (viewer is every principal's "
            "already; admin is global: `laneway access update NAME --role admin`)"
        )
    return value


def _principal(value: str | None) -> str | None:
    from laneway.core import access

    if value is not None and (problem := access.name_problem(value)):
        raise typer.BadParameter(f"{value!r}: {problem}")
    return value


NameArg = typer.Argument(..., metavar="NAME", help="The principal's name.", callback=_principal)
RoleArg = typer.Argument(..., metavar="ROLE", help="developer or deployer.", callback=_grantable)
AppOpt = typer.Option(None, "--app", help="The app (without it, with --kind: every app).")
EnvOpt = typer.Option(None, "--env", help="One environment of the app.")
KindOpt = typer.Option(
    None,
    "--kind",
    help="Every environment of this kind: development, preview, staging, production.",
)


def _scope(app: str | None, env: str | None, kind: str | None) -> dict[str, str | None]:
    """The grant's scope, checked as the API will (exit 2 before any request)."""
    from laneway.core import grants
    from laneway.core.types import Role
    from laneway.errors import InvalidInput

    try:
        grants.check_grant(Role.DEVELOPER, app=app, environment=env, kind=kind)
    except InvalidInput as exc:
        raise typer.BadParameter(
            exc.message.replace("environment (with its app)", "--env (with --app)"),
            param_hint="--app/--env/--kind",
        ) from None
    return {"app": app, "environment": env, "kind": kind}


def grant(
    name: str = NameArg,
    role: str = RoleArg,
    app: str | None = AppOpt,
    env: str | None = EnvOpt,
    kind: str | None = KindOpt,
) -> None:
    """Give a principal ROLE on one environment (--app A --env E) or on an environment kind
    (--kind K, of --app A or of every app)."""
    body = {"role": role, **_scope(app, env, kind)}
    made = Client().request("POST", path("access", "principals", name, "grants"), json=body)
    output.out().print(f"{made['principal']} has {made['role']} on {made['scope']}", markup=False)


def revoke_grant(
    name: str = NameArg,
    role: str = RoleArg,
    app: str | None = AppOpt,
    env: str | None = EnvOpt,
    kind: str | None = KindOpt,
) -> None:
    """Take back the grant `laneway access grant` gave, with the same arguments."""
    scope = _scope(app, env, kind)
    client = Client()
    held = client.request("GET", path("access", "grants"), params={"principal": name})
    found = [g for g in held if g["role"] == role and all(g[k] == v for k, v in scope.items())]
    if not found:
        from laneway.errors import NotFound

        raise NotFound(
            f"{name} has no grant of {role} there",
            hint=f"`laneway access grants {name}` lists its grants",
        )
    gone = client.request("DELETE", path("access", "grants", found[0]["id"]))
    output.out().print(
        f"revoked: {gone['principal']} no longer has {gone['role']} on {gone['scope']}",
        markup=False,
    )


def list_grants(
    name: str | None = typer.Argument(
        None, metavar="[NAME]", help="Of this principal only.", callback=_principal
    ),
    as_json: bool = JsonOpt,
) -> None:
    """The grants: who has which role on which environment or kind."""
    params = {} if name is None else {"principal": name}
    found: list[dict[str, Any]] = Client().request("GET", path("access", "grants"), params=params)
    if as_json:
        output.print_json(found)
        return
    table = output.table("ID", "PRINCIPAL", "ROLE", "ON", "CREATED")
    for g in found:
        table.add_row(
            g["id"],
            output.escape(g["principal"]),
            g["role"],
            output.escape(g["scope"]),
            g["created_at"][:16].replace("T", " "),
        )
    output.out().print(table)


def install(access_app: typer.Typer) -> None:
    access_app.command("grant")(grant)
    access_app.command("revoke-grant")(revoke_grant)
    access_app.command("grants")(list_grants)
