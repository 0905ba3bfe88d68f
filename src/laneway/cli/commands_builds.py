"""`laneway build` and `laneway builds`: build a commit of the app, list its builds."""

from pathlib import Path

import typer

from laneway.cli import output
from laneway.cli.client import Client, path
from laneway.cli.options import AppOpt, JsonOpt, RepoOpt, app_of, register_app, which_app
from laneway.errors import LanewayError

commands = typer.Typer()
"""Top-level commands, merged into `laneway` by main.py."""


@commands.command()
def build(
    ref: str = typer.Argument("HEAD", help="Branch, tag or commit to build."),
    app_name: str | None = AppOpt,
    repo: Path | None = RepoOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Build one commit into an immutable, content-addressed artifact (cached per commit)."""
    name, root = app_of(repo, app_name)
    client = Client()
    register_app(client, name, root)
    printed: list[str] = []
    for event in client.events("POST", path("apps", name, "builds"), json={"ref": ref}):
        data = event.data
        if event.type == "output" and not as_json:
            output.err().print(f"[dim]build |[/] {output.escape(data['line'])}", markup=True)
            printed.append(data["line"])
        elif event.type == "result":
            if as_json:
                output.print_json(data)
            else:
                cached = " (cached: nothing was run)" if data.get("cached") else ""
                output.out().print(
                    f"build [bold]{data['id']}[/] of commit {data['commit'][:12]}{cached}"
                )
            return
        elif event.type == "error":
            hint = data.get("hint")
            if hint and _ends(printed, hint.splitlines()):
                hint = None  # the output's tail, printed already as it came
            raise LanewayError(data["detail"], hint=hint)
    raise LanewayError("the build stream ended without a result")


def _ends(lines: list[str], tail: list[str]) -> bool:
    return bool(tail) and lines[-len(tail) :] == tail


@commands.command()
def builds(
    app_name: str | None = AppOpt, repo: Path | None = RepoOpt, as_json: bool = JsonOpt
) -> None:
    """List the app's builds."""
    name = which_app(repo, app_name)
    items = Client().request("GET", path("apps", name, "builds"))
    if as_json:
        output.print_json(items)
        return
    table = output.table("build", "commit", "ref", "created")
    for b in items:
        table.add_row(b["id"][:19], b["commit"][:12], b["ref"], b["created_at"][:19])
    output.out().print(table)
