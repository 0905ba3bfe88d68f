"""`laneway releases`: an environment's releases, newest first, or one in full."""

from pathlib import Path
from typing import Any

import typer

from laneway.cli import output
from laneway.cli.client import Client, path
from laneway.cli.options import AppOpt, JsonOpt, RepoOpt, env_arg, which_app
from laneway.errors import InvalidInput

commands = typer.Typer()
"""Top-level commands, merged into `laneway` by main.py."""


def _state(release: dict[str, Any]) -> str:
    return "[green]live[/]" if release["state"] == "live" else output.phase(release["state"])


def print_release(r: dict[str, Any]) -> None:
    out = output.out()
    out.print(f"[bold]{r['name']}[/]: {_state(r)}   {r['description']}")
    commit = f"commit {r['commit'][:12]}" if r["commit"] else "no commit yet"
    out.print(f"  build:   {(r['build'] or '-')[:19]} @ {commit}")
    out.print(f"  config:  version {r['config_version']}   processes: {r['generation']}")
    if r.get("flags_version") is not None:
        out.print(f"  flags:   version {r['flags_version']} when it went live")
    out.print(f"  by:      {r['created_by']} at {r['created_at'][:19]}")
    if r["hotfix_reason"]:
        out.print(f"  hotfix:  {r['hotfix_reason']}")
    if r["message"]:
        out.print(f"  message: {r['message']}")
    for var in r.get("config") or []:
        value = "(secret)" if var["secret"] else var["value"]
        out.print(f"    {var['key']}={value}  [dim]{var['fingerprint'] or ''}[/]")
    if r.get("hook_output"):
        out.print("  release hook output:")
        for line in r["hook_output"].splitlines():
            out.print(f"    {line}", markup=False)


def print_releases(items: list[dict[str, Any]]) -> None:
    table = output.table("release", "state", "build", "commit", "by", "created", "what")
    for r in items:
        what = r["description"] + (f" (hotfix: {r['hotfix_reason']})" if r["hotfix_reason"] else "")
        if r["message"]:
            what += f": {r['message'].splitlines()[0]}"
        table.add_row(
            r["name"],
            _state(r),
            (r["build"] or "-")[:19],
            (r["commit"] or "-")[:12],
            r["created_by"],
            r["created_at"][:19],
            what,
        )
    output.out().print(table)


@commands.command()
def releases(
    environment: str = env_arg(),
    release: str | None = typer.Argument(None, help="One release (e.g. v3) in full."),
    app_name: str | None = AppOpt,
    repo: Path | None = RepoOpt,
    as_json: bool = JsonOpt,
) -> None:
    """List an environment's releases, newest first; or show one with its config and its
    release hook's output."""
    name = which_app(repo, app_name)
    where = ("apps", name, "environments", environment, "releases")
    if release is not None:
        digits = release.removeprefix("v")
        if not digits.isdigit():
            raise InvalidInput(f"release {release!r}: expected a release such as v3")
        item = Client().request("GET", path(*where, int(digits)))
        if as_json:
            output.print_json(item)
        else:
            print_release(item)
        return
    items = Client().request("GET", path(*where))
    if as_json:
        output.print_json(items)
    else:
        print_releases(items)
