"""`laneway config list|set|unset`: config per environment; each change is a new release."""

from pathlib import Path
from typing import Any

import typer

from laneway.cli import output
from laneway.cli.client import Client, path
from laneway.cli.commands_pipeline import TimeoutOpt, WaitOpt, announce
from laneway.cli.options import AppOpt, JsonOpt, RepoOpt, env_arg, which_app

config_app = typer.Typer(
    help="Config per environment: each change is a new release.", no_args_is_help=True
)


@config_app.command("list")
def config_list(
    environment: str = env_arg(),
    as_json: bool = JsonOpt,
    app_name: str | None = AppOpt,
    repo: Path | None = RepoOpt,
) -> None:
    """The environment's config; secrets show only that they are set, and a fingerprint."""
    name = which_app(repo, app_name)
    items = Client().request("GET", path("apps", name, "environments", environment, "config"))
    if as_json:
        output.print_json(items)
        return
    if not items:
        output.out().print(
            f"{environment} has no config; `laneway config set {environment} KEY=VALUE`"
        )
        return
    table = output.table("key", "value", "fingerprint")
    for item in items:
        value = "[dim](secret)[/]" if item["secret"] else item["value"]
        table.add_row(item["key"], value, item["fingerprint"] or "")
    output.out().print(table)


@config_app.command("set")
def config_set(
    environment: str = env_arg(),
    assignments: list[str] = typer.Argument(..., help="KEY=VALUE ..."),
    secret: bool = typer.Option(False, "--secret", help="Never show these values back."),
    no_wait: bool = WaitOpt,
    timeout: float = TimeoutOpt,
    app_name: str | None = AppOpt,
    repo: Path | None = RepoOpt,
) -> None:
    """Set variables: a new release, restarted with zero downtime."""
    from laneway.core.config import parse_assignments

    values = parse_assignments(assignments)
    _change(environment, {"set": values, "secret": secret}, no_wait, timeout, app_name, repo)


@config_app.command("unset")
def config_unset(
    environment: str = env_arg(),
    keys: list[str] = typer.Argument(..., help="KEY ..."),
    no_wait: bool = WaitOpt,
    timeout: float = TimeoutOpt,
    app_name: str | None = AppOpt,
    repo: Path | None = RepoOpt,
) -> None:
    """Remove variables: a new release, restarted with zero downtime."""
    _change(environment, {"unset": keys}, no_wait, timeout, app_name, repo)


def _change(
    environment: str,
    body: dict[str, Any],
    no_wait: bool,
    timeout: float,
    app_name: str | None,
    repo: Path | None,
) -> None:
    name = which_app(repo, app_name)
    client = Client()
    config_path = path("apps", name, "environments", environment, "config")
    release = client.request("PATCH", config_path, json=body)
    announce(client, name, environment, release, wait=not no_wait, timeout=timeout)
