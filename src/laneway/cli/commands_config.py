"""`laneway config list|get|pull|set|unset`: config per environment; each change is a new
release. A secret is shown as its fingerprint; its value only with --reveal (or, for pull,
--secrets), which needs the deployer role and is recorded as an event of the environment."""

import sys
from pathlib import Path
from typing import Any

import typer

from laneway.cli import output
from laneway.cli.client import Client, path
from laneway.cli.commands_pipeline import TimeoutOpt, WaitOpt, announce
from laneway.cli.options import AppOpt, JsonOpt, RepoOpt, env_arg, which_app
from laneway.errors import InvalidInput

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
        value = "[dim](secret)[/]" if item["secret"] else output.escape(item["value"])
        table.add_row(output.escape(item["key"]), value, item["fingerprint"] or "")
    output.out().print(table)


@config_app.command("get")
def config_get(
    environment: str = env_arg(),
    key: str = typer.Argument(..., help="Variable name."),
    reveal: bool = typer.Option(
        False, "--reveal", help="A secret's value (deployer role on ENV; recorded as an event)."
    ),
    as_json: bool = JsonOpt,
    app_name: str | None = AppOpt,
    repo: Path | None = RepoOpt,
) -> None:
    """One variable's value; a secret shows its fingerprint unless --reveal."""
    from laneway.core.config import check_key

    problem = check_key(key)
    if problem:
        raise InvalidInput(problem)
    name = which_app(repo, app_name)
    key_path = path("apps", name, "environments", environment, "config", key)
    item = Client().request("GET", key_path, params={"reveal": "true"} if reveal else None)
    if as_json:
        output.print_json(item)
    elif item["secret"] and item["value"] is None:
        output.out().print(f"(secret) {item['fingerprint']}")
        output.err().print(
            "[dim]hint:[/] --reveal shows the value (deployer role on ENV; recorded)"
        )
    else:
        sys.stdout.write(item["value"] + "\n")


@config_app.command("pull")
def config_pull(
    environment: str = env_arg(),
    secrets: bool = typer.Option(
        False,
        "--secrets",
        "--reveal",
        help="Include secrets' values (deployer role on ENV; recorded as an event).",
    ),
    as_json: bool = JsonOpt,
    app_name: str | None = AppOpt,
    repo: Path | None = RepoOpt,
) -> None:
    """The config as a dotenv file (`laneway config pull ENV > .env`), quoted so that a
    shell (`set -a; . ./.env`) and python-dotenv read back each value exactly. Secrets are
    left out, and named in a comment, unless --secrets."""
    from laneway.core.dotenv import render

    name = which_app(repo, app_name)
    config_path = path("apps", name, "environments", environment, "config")
    items = Client().request("GET", config_path, params={"reveal": "true"} if secrets else None)
    values = {i["key"]: i["value"] for i in items if i["value"] is not None}
    if as_json:
        output.print_json(values)
        return
    dotenv = render(values, left_out=[i["key"] for i in items if i["value"] is None])
    sys.stdout.write(dotenv.text)
    if dotenv.unquotable:
        output.err().print(
            f"warning: left out {', '.join(dotenv.unquotable)}: no quoting reads "
            "back the same in a shell and in python-dotenv ($ or ` with ' or \\, ${, "
            "a trailing \\, a carriage return)",
            markup=False,
        )


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
