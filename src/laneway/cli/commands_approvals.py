"""`laneway approvals`, `approve ID`, `reject ID --reason`: changes to protected environments
that wait for approvals (docs/access.md "Approvals"); and `held`, which the commands that
make such changes call to say that theirs waits."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from laneway.cli import output
from laneway.cli.client import Client, path
from laneway.cli.options import JsonOpt

commands = typer.Typer()
"""Top-level commands, merged into `laneway` by main.py."""

STATES = ("pending", "approved", "rejected", "expired")


def held(answer: dict[str, Any], *, as_json: bool = False) -> bool:
    """Whether the API answered that the change waits for approvals; if so, say so."""
    request = answer.get("approval")
    if not isinstance(request, dict):
        return False
    if as_json:
        output.print_json(answer)
        return True
    output.out().print(
        f"{request['environment']} waits for {request['waiting_for']} approval(s) before: "
        f"{request['description']}\nrequest {request['id']}; another principal approves it "
        f"with `laneway approve {request['id']}` (it expires {request['expires']})",
        markup=False,
    )
    return True


@commands.command()
def approvals(
    state: str = typer.Option(
        "pending", "--state", help="pending, approved, rejected, expired or all."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Changes to protected environments waiting for approvals (or, with --state, others)."""
    if state not in (*STATES, "all"):
        raise typer.BadParameter(
            f"expected one of {', '.join(STATES)} or all", param_hint="--state"
        )
    params = {} if state == "all" else {"state": state}
    found: list[dict[str, Any]] = Client().request("GET", path("approvals"), params=params)
    if as_json:
        output.print_json(found)
        return
    if not found:
        output.out().print("no approval requests" + ("" if state == "all" else f" {state}"))
        return
    table = Table("id", "environment", "change", "asked by", "approved by", "state")
    for r in found:
        approved = ", ".join(r["approved_by"]) or "-"
        table.add_row(
            r["id"],
            f"{r['app']}/{r['environment']}",
            r["description"],
            r["requester"],
            f"{approved} ({len(r['approved_by'])}/{r['needed']})",
            r["state"] + (f": {r['outcome']}" if r["outcome"] else ""),
        )
    output.out().print(table)


@commands.command()
def approve(
    request_id: str = typer.Argument(..., metavar="ID", help="The request's id."),
    as_json: bool = JsonOpt,
) -> None:
    """Approve a change that waits; the last approval it needs makes it run."""
    done = Client().request("POST", path("approvals", request_id, "approve"))
    if as_json:
        output.print_json(done)
        return
    if done["state"] == "approved" and str(done["outcome"]).startswith("not run"):
        output.err().print(f"approved, but {done['outcome']}", markup=False)
        raise typer.Exit(1)
    if done["state"] == "approved":
        output.out().print(f"approved: {done['description']} ({done['outcome']})", markup=False)
    else:
        output.out().print(
            f"approved; it waits for {done['waiting_for']} more approval(s)", markup=False
        )


@commands.command()
def reject(
    request_id: str = typer.Argument(..., metavar="ID", help="The request's id."),
    reason: str = typer.Option(..., "--reason", help="Why; recorded with it."),
    as_json: bool = JsonOpt,
) -> None:
    """Reject a change that waits: it will not run."""
    done = Client().request(
        "POST", path("approvals", request_id, "reject"), json={"reason": reason}
    )
    if as_json:
        output.print_json(done)
        return
    output.out().print(f"rejected: {done['description']}", markup=False)
