"""`laneway run`, `restart` and `scale`: the everyday operations on a running environment.

`restart` and `scale` make releases and follow them as `deploy` does (`--no-wait` returns
once the release is recorded); `run` streams a one-off process's output and exits with its
exit code.
"""

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from laneway.cli import output
from laneway.cli.client import ApiPath, Client, path
from laneway.cli.commands_pipeline import TimeoutOpt, WaitOpt, announce
from laneway.cli.options import AppOpt, JsonOpt, RepoOpt, check_name, env_arg, which_app
from laneway.errors import LanewayError

commands = typer.Typer()
"""Top-level commands, merged into `laneway` by main.py."""


def environment_path(app: str, environment: str, *rest: str) -> ApiPath:
    return path("apps", app, "environments", environment, *rest)


@commands.command(context_settings={"ignore_unknown_options": True})
def run(
    environment: str = env_arg(),
    service: str = typer.Argument(
        ..., help="Service whose config and resources it gets.", callback=check_name
    ),
    command: list[str] = typer.Argument(
        ..., help="The command, after `--`: one argument is a shell line."
    ),
    timeout: int = typer.Option(3600, "--timeout", help="Seconds before it is stopped."),
    app_name: str | None = AppOpt,
    repo: Path | None = RepoOpt,
) -> None:
    """Run a one-off process with SERVICE's environment (config, resources, flags) in the
    live release's directory, print its output as it comes, and exit with its exit code.
    Its standard input is not connected. Ctrl-C stops it."""
    name = which_app(repo, app_name)
    body = {"service": service, "command": command, "timeout": timeout}
    client = Client()
    code: int | None = None
    finished = False
    for event in client.events("POST", environment_path(name, environment, "runs"), json=body):
        data = event.data
        if event.type == "started":
            output.err().print(
                f"[dim]running as {service} on {environment} {data['release']} "
                f"(pid {data['pid']})[/]",
                markup=True,
            )
        elif event.type == "output":
            sys.stdout.write(data["line"] + "\n")
            sys.stdout.flush()
        elif event.type == "exit":
            finished = True
            if data["timed_out"]:
                raise LanewayError(f"stopped after {timeout}s (--timeout)")
            code = data["code"]
            break
    if not finished:
        raise LanewayError("the server ended the stream before the process ended")
    if code is None:
        raise LanewayError("the process ended, but its exit code is unknown")
    raise typer.Exit(code)


@commands.command()
def restart(
    environment: str = env_arg(),
    service: str | None = typer.Argument(
        None, help="Only this service, one replica at a time.", callback=check_name
    ),
    no_wait: bool = WaitOpt,
    timeout: float = TimeoutOpt,
    app_name: str | None = AppOpt,
    repo: Path | None = RepoOpt,
) -> None:
    """Restart with zero downtime, recorded as a release. Every service: a new release of the
    same build, config and replica counts starts beside the live one and takes traffic once
    healthy (the release hook does not run again). One SERVICE: each of its replicas is
    replaced in turn, the new one started beside the old and healthy before the old stops."""
    name = which_app(repo, app_name)
    client = Client()
    path = environment_path(name, environment, "restart")
    if service is None:
        release = client.request("POST", path)
        announce(client, name, environment, release, wait=not no_wait, timeout=timeout)
        return
    before = client.request("GET", environment_path(name, environment))
    old = {r["pid"] for r in before["replicas"] if r["service"] == service and r["pid"]}
    release = client.request("POST", path, json={"service": service})
    announce(client, name, environment, release, wait=False, timeout=timeout)
    if not no_wait:
        wanted = (before.get("scale") or {}).get(service)
        follow_until(
            client,
            name,
            environment,
            release,
            timeout=timeout,
            done=lambda status: _replaced(status, service, old, wanted),
            success=f"every {service} replica of {environment} restarted",
        )


def _replaced(status: dict[str, Any], service: str, old: set[int], wanted: int | None) -> bool:
    mine = [r for r in status["replicas"] if r["service"] == service]
    return (
        status["phase"] == "running"
        and (wanted is None or len(mine) == wanted)
        and all(r["state"] in ("healthy", "running") and r["pid"] not in old for r in mine)
    )


@commands.command()
def scale(
    environment: str = env_arg(),
    counts: list[str] | None = typer.Argument(
        None,
        help="SERVICE=COUNT, such as web=3 worker=0; none: show the counts.",
        metavar="SERVICE=COUNT",
    ),
    no_wait: bool = WaitOpt,
    timeout: float = TimeoutOpt,
    as_json: bool = JsonOpt,
    app_name: str | None = AppOpt,
    repo: Path | None = RepoOpt,
) -> None:
    """Set how many replicas of each service run (0-64), recorded as a release of the same
    build and config; with no SERVICE=COUNT, show the counts."""
    from laneway.core import scaling

    change = scaling.parse(counts) if counts else None  # bad input is refused first
    name = which_app(repo, app_name)
    client = Client()
    if change is None:
        shown = client.request("GET", environment_path(name, environment, "scale"))
        if as_json:
            output.print_json(shown)
        else:
            print_counts(shown)
        return
    path = environment_path(name, environment, "scale")
    release = client.request("POST", path, json={"replicas": change})
    if as_json:
        output.print_json(release)
        return
    if release.get("unchanged"):
        output.out().print(f"{environment} runs these counts already ({release['name']})")
        return
    announce(client, name, environment, release, wait=False, timeout=timeout)
    if not no_wait:
        shown = ", ".join(f"{s}={n}" for s, n in sorted(release["replicas"].items()))
        follow_until(
            client,
            name,
            environment,
            release,
            timeout=timeout,
            done=lambda status: _counted(status, release["replicas"]),
            success=f"{environment} runs {shown}",
        )


def print_counts(shown: dict[str, Any]) -> None:
    out = output.out()
    for service, count in shown["replicas"].items():
        note = "  [dim](scaled)[/]" if service in shown["overrides"] else ""
        out.print(f"{service}={count}{note}", markup=True)


def _counted(status: dict[str, Any], wanted: dict[str, int]) -> bool:
    running: dict[str, int] = {}
    for replica in status["replicas"]:
        if replica["release"] == status["serving"] and replica["state"] in ("healthy", "running"):
            running[replica["service"]] = running.get(replica["service"], 0) + 1
    return status["phase"] == "running" and all(running.get(s, 0) == n for s, n in wanted.items())


def follow_until(
    client: Client,
    app: str,
    environment: str,
    release: dict[str, Any],
    *,
    timeout: float,
    done: Callable[[dict[str, Any]], bool],
    success: str,
) -> None:
    """Follow the environment, printing its steps, until its release is the new one and a
    status satisfies `done`; raise if it moves on, degrades, fails or takes too long."""
    started = time.monotonic()
    params = {"follow": "true", "after": str(release.get("events_after") or 0)}
    err = output.err()
    with err.status(f"{environment}: {release['description']}…") as status:
        path = environment_path(app, environment, "events")
        for event in client.events("GET", path, params=params):
            if time.monotonic() - started > timeout:
                raise LanewayError(
                    f"{environment}: {release['description']} not done after {timeout:g}s",
                    hint=f"it goes on; see `laneway env show {environment}`",
                )
            if event.type == "end":
                raise LanewayError(f"{environment} was destroyed")
            if event.type != "status":
                err.print(f"  {output.escape(str(event.data.get('message', '')))}")
                continue
            data = event.data
            status.update(f"{environment}: {data['phase']}: {output.escape(data['message'])}")
            if data["release"] != release["name"]:
                raise LanewayError(f"{environment} moved on to {data['release']} meanwhile")
            if data["phase"] in ("degraded", "failed"):
                raise LanewayError(
                    f"{environment} is {data['phase']}: "
                    f"{(data['message'].splitlines() or [''])[0]}",
                    hint=f"it keeps trying; see `laneway logs {environment}` and "
                    f"`laneway env show {environment}`",
                )
            if done(data):
                took = time.monotonic() - started
                output.out().print(f"[green]{success}[/] ({took:.1f}s)")
                return
