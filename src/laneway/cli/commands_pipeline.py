"""`laneway deploy`, `promote`, `rollback` and `diff`: releases along the pipeline.

A command that makes a release follows the environment's events until the release is live
or has failed, printing each step; `--no-wait` returns once the release is recorded.
"""

import time
from pathlib import Path
from typing import Any

import typer

from laneway.cli import output
from laneway.cli.client import Client, path
from laneway.cli.commands_approvals import held
from laneway.cli.options import (
    AppOpt,
    JsonOpt,
    RepoOpt,
    app_of,
    check_build,
    env_arg,
    register_app,
    which_app,
)
from laneway.errors import InvalidInput, LanewayError

commands = typer.Typer()
"""Top-level commands, merged into `laneway` by main.py."""

WaitOpt = typer.Option(False, "--no-wait", help="Return once the release is recorded.")
TimeoutOpt = typer.Option(900.0, "--timeout", help="Seconds to wait for the release.")
STATUS_STYLE = {
    "same": "green",
    "declared": "cyan",
    "info": "dim",
    "differs": "red",
    "left-only": "red",
    "right-only": "red",
}


def follow_release(
    client: Client, app: str, environment: str, release: dict[str, Any], *, timeout: float
) -> None:
    """Print the steps of a release until it is live; raise if it fails."""
    name = release["name"]
    out, err = output.out(), output.err()
    if release.get("unchanged"):
        out.print(
            f"nothing to deploy: {environment} runs {name} with this build and config already"
        )
        return
    started = time.monotonic()
    events = path("apps", app, "environments", environment, "events")
    params = {"follow": "true", "after": str(release.get("events_after") or 0)}
    built: list[str] = []
    with err.status(f"{environment}: {name}…") as status:
        for event in client.events("GET", events, params=params):
            data = event.data
            if time.monotonic() - started > timeout:
                raise LanewayError(
                    f"{name} is not live on {environment} after {timeout:g}s",
                    hint=f"it goes on; see `laneway env show {environment}`",
                )
            if event.type == "status":
                status.update(f"{environment}: {data['phase']}: {data['message']}")
                if data["phase"] == "failed" and data["release"] == name:
                    # its first line: the rest (a build's output) was printed as it came
                    first = (data["message"].splitlines() or [""])[0]
                    raise LanewayError(
                        f"{name} failed on {environment}: {first}",
                        hint=f"`laneway releases {environment} {name}` has the details",
                    )
                continue
            if event.type == "end":
                raise LanewayError(f"{environment} was destroyed")
            message = data["message"]
            if event.type == "build.output":
                err.print(f"  [dim]build |[/] {output.escape(message)}", markup=True)
                built.append(message)
                continue
            err.print(f"  {output.without_echo(message, built)}", markup=False)
            if event.type == "switched" and message.startswith(f"{name} is live"):
                took = time.monotonic() - started
                out.print(f"[green]{name} is live on {environment}[/] ({took:.1f}s)")
                return
            if event.type == "deploy.failed" and message.startswith(f"deploy of {name} "):
                raise LanewayError(
                    f"{name} failed on {environment}; traffic stayed where it was",
                    hint=f"`laneway releases {environment} {name}` has the details",
                )


def announce(
    client: Client,
    app: str,
    environment: str,
    release: dict[str, Any],
    *,
    wait: bool,
    timeout: float,
) -> None:
    """Print the release just made and, unless told not to wait, follow it until it is live."""
    hotfix = f" [yellow](hotfix: {release['hotfix_reason']})[/]" if release["hotfix_reason"] else ""
    output.out().print(f"{release['name']}: {release['description']}{hotfix}", markup=True)
    if wait:
        follow_release(client, app, environment, release, timeout=timeout)


@commands.command()
def deploy(
    environment: str = env_arg(),
    ref: str | None = typer.Option(None, "--ref", help="Git ref to deploy (built if needed)."),
    build: str | None = typer.Option(
        None, "--build", help="Build id (or a prefix).", callback=check_build
    ),
    hotfix: bool = typer.Option(False, "--hotfix", help="Bypass the pipeline's protection."),
    reason: str | None = typer.Option(None, "--reason", help="Why (needed with --hotfix)."),
    cancel: bool = typer.Option(False, "--cancel", help="Stop the deploy under way."),
    no_wait: bool = WaitOpt,
    timeout: float = TimeoutOpt,
    app_name: str | None = AppOpt,
    repo: Path | None = RepoOpt,
) -> None:
    """Deploy a ref or a build with zero downtime: the new release starts beside the old,
    takes traffic once healthy, and the old one stays warm for an instant rollback.
    `--cancel` stops the deploy under way (the live release keeps serving)."""
    if cancel:
        if ref or build or hotfix or reason:
            raise InvalidInput("--cancel takes no --ref, --build, --hotfix or --reason")
        name = which_app(repo, app_name)
        cancel_path = path("apps", name, "environments", environment, "deploys", "cancel")
        live = Client().request("POST", cancel_path)
        output.out().print(f"deploy cancelled; {live['name']} serves {environment}")
        return
    if (ref is None) == (build is None):
        raise InvalidInput("give exactly one of --ref or --build")
    name, root = app_of(repo, app_name)
    client = Client()
    if ref is not None:
        register_app(client, name, root)  # the ref is read from this repository
    body = {"ref": ref, "build": build, "hotfix": hotfix, "reason": reason}
    release = client.request(
        "POST", path("apps", name, "environments", environment, "deploys"), json=body
    )
    if not held(release):
        announce(client, name, environment, release, wait=not no_wait, timeout=timeout)


@commands.command()
def promote(
    source: str = env_arg("Environment whose live build is promoted.", "SOURCE"),
    target: str = env_arg("Environment that receives it.", "TARGET"),
    hotfix: bool = typer.Option(False, "--hotfix", help="Bypass the pipeline's protection."),
    reason: str | None = typer.Option(None, "--reason", help="Why (needed with --hotfix)."),
    create: bool = typer.Option(
        False, "--create", help="Create TARGET with SOURCE's build if it does not exist."
    ),
    kind: str | None = typer.Option(
        None, "--kind", help="With --create: TARGET's kind (default: its name, else staging)."
    ),
    no_wait: bool = WaitOpt,
    timeout: float = TimeoutOpt,
    app_name: str | None = AppOpt,
    repo: Path | None = RepoOpt,
) -> None:
    """Deploy to TARGET the very build SOURCE runs (never a rebuild), with TARGET's config.
    --create makes a missing TARGET from that build, under the same protection as any
    environment's creation."""
    if kind is not None and not create:
        raise InvalidInput("--kind goes with --create")
    if kind is not None and kind not in ("development", "preview", "staging", "production"):
        raise InvalidInput(
            f"--kind: expected development, preview, staging or production, got {kind!r}"
        )
    name = which_app(repo, app_name)
    client = Client()
    body = {"from": source, "to": target, "hotfix": hotfix, "reason": reason}
    if create:
        body |= {"create": True, "kind": kind}
    release = client.request("POST", path("apps", name, "promotions"), json=body)
    if not held(release):
        announce(client, name, target, release, wait=not no_wait, timeout=timeout)


@commands.command()
def rollback(
    environment: str = env_arg(),
    to: str | None = typer.Option(None, "--to", help="Release to go back to, e.g. v3."),
    no_wait: bool = WaitOpt,
    timeout: float = TimeoutOpt,
    app_name: str | None = AppOpt,
    repo: Path | None = RepoOpt,
) -> None:
    """Go back to the previous release (or --to vN) as a new release; instant while the
    previous release is still warm."""
    number = None
    if to is not None:
        digits = to.removeprefix("v")
        if not digits.isdigit() or int(digits) < 1:
            raise InvalidInput(f"--to {to}: expected a release such as v3")
        number = int(digits)
    name = which_app(repo, app_name)
    client = Client()
    rollback_path = path("apps", name, "environments", environment, "rollback")
    release = client.request("POST", rollback_path, json={"to": number})
    announce(client, name, environment, release, wait=not no_wait, timeout=timeout)
    if release.get("flags_now") is not None:
        output.err().print(
            f"flags are not rolled back with a release: it went live with flag set version "
            f"{release['flags_version']}; {environment} is at version {release['flags_now']} "
            f"(`laneway flags history {environment}` shows what changed since)",
            markup=False,
        )


def print_diff(left: str, right: str, report: dict[str, Any]) -> None:
    table = output.table("", "", left, right, "")
    for row in report["rows"]:
        style = STATUS_STYLE.get(row["status"], "")
        table.add_row(
            row["section"],
            row["item"],
            row["left"] if row["left"] is not None else "[dim]-[/]",
            row["right"] if row["right"] is not None else "[dim]-[/]",
            f"[{style}]{row['status']}[/]",
        )
    output.out().print(table)
    drifted = [
        f"{r['section']} {r['item']} ({r['status']})"
        for r in report["rows"]
        if r["status"] in ("differs", "left-only", "right-only")
    ]
    verdict = "[green]in parity[/]" if report["in_parity"] else "[red]drift[/]: "
    output.out().print(f"{left} and {right}: {verdict}" + ", ".join(drifted))


@commands.command()
def diff(
    left: str = env_arg("Environment name, e.g. staging.", "LEFT"),
    right: str = env_arg("Environment name, e.g. production.", "RIGHT"),
    as_json: bool = JsonOpt,
    app_name: str | None = AppOpt,
    repo: Path | None = RepoOpt,
) -> None:
    """Show two environments side by side. Exit 0 when they are in parity on everything
    but the differences the spec declares, 1 otherwise."""
    name = which_app(repo, app_name)
    params = {"left": left, "right": right}
    report = Client().request("GET", path("apps", name, "diff"), params=params)
    if as_json:
        output.print_json(report)
    else:
        print_diff(left, right, report)
    raise typer.Exit(0 if report["in_parity"] else 1)
