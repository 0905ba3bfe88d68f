"""`laneway audit list|verify|export`: the tamper-evident audit log (admins).

`verify` exits 0 when every record holds to the hash chain and the signed checkpoint, and 1
naming the first bad record, so a cron job or CI step can gate on it.
"""

import sys
from pathlib import Path
from typing import Any

import typer

from laneway.cli import output
from laneway.cli.client import Client, path
from laneway.cli.options import JsonOpt, check_name
from laneway.cli.output import escape
from laneway.errors import InvalidInput, LanewayError

audit_app = typer.Typer(
    help="The audit log: who changed what, when, from where; verify it was not tampered with.",
    no_args_is_help=True,
)

OUTCOME_STYLE = {"ok": "green", "refused": "red", "failed": "yellow"}


@audit_app.command("list")
def list_records(
    app_name: str | None = typer.Option(None, "--app", help="Only this app.", callback=check_name),
    env: str | None = typer.Option(
        None, "--env", "-e", help="Only this environment.", callback=check_name
    ),
    principal: str | None = typer.Option(None, "--principal", help="Only this token's name."),
    action: str | None = typer.Option(
        None, "--action", help="Only actions containing this (`canary`, `DELETE`)."
    ),
    since: str | None = typer.Option(
        None, "--since", help="Since a duration ago (`30m`, `2d`) or a timestamp."
    ),
    limit: int = typer.Option(50, "--limit", "-n", min=1, max=1000, help="The newest N."),
    as_json: bool = JsonOpt,
) -> None:
    """The newest audit records, oldest first: when, who, from where, what, the outcome."""
    given = {
        "app": app_name,
        "environment": env,
        "principal": principal,
        "action": action,
        "since": since,
    }
    params: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    params["limit"] = limit
    records = Client().request("GET", path("audit"), params=params)
    if as_json:
        output.print_json(records)
        return
    table = output.table("#", "when", "who", "from", "what", "app/env", "outcome")
    for r in records:
        where = "/".join(x for x in (r["app"], r["environment"]) if x) or "-"
        style = OUTCOME_STYLE.get(r["outcome"], "")
        outcome = f"[{style}]{r['outcome']}[/] {r['status']}"
        if r["detail"].get("reason"):
            outcome += f" [dim]{escape(str(r['detail']['reason']))}[/]"
        table.add_row(
            str(r["seq"]),
            r["time"][:19].replace("T", " "),
            escape(r["principal"] or "(unknown)"),
            escape(r["source"] or "-"),
            escape(r["action"]),
            escape(where),
            outcome,
        )
    output.out().print(table)


@audit_app.command()
def verify(as_json: bool = JsonOpt) -> None:
    """Check every record against the hash chain and the signed checkpoint: exit 0 when
    intact, 1 naming the first edited, deleted or reordered record."""
    result = Client().request("GET", path("audit", "verify"))
    if as_json:
        output.print_json(result)
    if not result["ok"]:
        raise LanewayError(
            f"the audit log was tampered with: {result['message']}",
            hint="`laneway audit export` keeps a copy of what is there now",
        )
    if not as_json:
        output.out().print(f"[green]ok:[/] {escape(result['message'])}")


@audit_app.command()
def export(
    out: Path | None = typer.Option(
        None, "--output", "-o", help="Write to this file (default: standard output)."
    ),
) -> None:
    """Every record as JSON lines, oldest first, with the hashes that chain them."""
    client = Client()
    lines = client.stream("GET", path("audit", "export"))
    if out is None:
        for line in lines:
            sys.stdout.write(line + "\n")
        return
    try:
        with out.open("w", encoding="utf-8") as f:
            count = 0
            for line in lines:
                f.write(line + "\n")
                count += 1
    except OSError as exc:
        raise InvalidInput(f"--output {out}: {exc.strerror}") from None
    output.err().print(f"{count} records written to {escape(str(out))}")
