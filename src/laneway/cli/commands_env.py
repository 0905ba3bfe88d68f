"""`laneway env create|list|show|destroy` and `laneway logs`; `wait_for` follows an
environment's events until it serves (also used by `laneway demo`)."""

import contextlib
import json
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
from laneway.errors import InvalidInput, LanewayError, NotFound

env_app = typer.Typer(help="Create, list, show and destroy environments.", no_args_is_help=True)
commands = typer.Typer()
"""Top-level commands, merged into `laneway` by main.py."""

KINDS = ("development", "preview", "staging", "production")


def print_environment(e: dict[str, Any]) -> None:
    out = output.out()
    out.print(f"[bold]{e['name']}[/] ({e['kind']}) of app {e['app']}: {output.phase(e['phase'])}")
    out.print(f"  url:     {e['url']}")
    commit = f"commit {e['commit'][:12]}" if e["commit"] else "no commit yet"
    out.print(f"  source:  {e['branch'] or e['ref'] or '-'} @ {commit}")
    out.print(f"  build:   {(e['build'] or '-')[:19]}   release: {e['release']}")
    if e.get("scale"):
        out.print("  scale:   " + ", ".join(f"{s}={n}" for s, n in e["scale"].items()))
    if e["message"]:
        out.print(f"  status:  {e['message']}")
    if e["replicas"]:
        table = output.table(box=None, padding=(0, 2), show_edge=False)
        for column in ("replica", "state", "pid", "port", "restarts", "detail"):
            table.add_column(column)
        for r in e["replicas"]:
            table.add_row(
                f"{r['service']}/{r['index']}",
                r["state"],
                str(r["pid"] or "-"),
                str(r["port"] or "-"),
                str(r["restarts"]),
                r["message"],
            )
        out.print(table)


def _settled(name: str, status: dict[str, Any], *, until: str) -> bool:
    """Whether a status event ends the wait for `until`; raises if it never will."""
    if until != "running":
        return False
    if status["phase"] == "failed":
        raise LanewayError(
            f"environment {name} failed: {(status['message'].splitlines() or [''])[0]}",
            hint=f"it is kept, failed, for a look (`laneway env show {name}`); "
            f"`laneway deploy {name} --ref REF` tries again with a fix, "
            f"`laneway env destroy {name}` removes it",
        )
    if status["phase"] == "degraded":
        raise LanewayError(
            f"environment {name} is degraded: {status['message']}",
            hint=f"it keeps trying; see `laneway logs {name}` and `laneway env show {name}`",
        )
    return bool(status["phase"] == "running")


def wait_for(
    client: Client, app: str, name: str, *, until: str, timeout: float, after: int = 0
) -> dict[str, Any]:
    """Follow an environment's events until it is `running` (or gone, for destroy)."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    events = path("apps", app, "environments", name, "events")
    err = output.err()
    built: list[str] = []
    with err.status(f"waiting for {name}…") as status:
        params = {"follow": "true", "after": str(after)}
        for event in client.events("GET", events, params=params):
            data = event.data
            if event.type == "status":
                last = data
                status.update(f"{name}: {data['phase']}: {data['message']}")
                if _settled(name, last, until=until):
                    return last
            elif event.type == "end":
                return last
            elif event.type == "build.output":
                err.print(f"  [dim]build |[/] {output.escape(data['message'])}", markup=True)
                built.append(data["message"])
            else:
                err.print(f"  {output.without_echo(data['message'], built)}", markup=False)
            if time.monotonic() > deadline:
                raise LanewayError(
                    f"environment {name} is not {until} after {timeout:g}s: "
                    f"{last.get('phase', '?')}: {last.get('message', '')}",
                    hint=f"see `laneway env show {name}` and `laneway logs {name}`",
                )
    return last


@env_app.command("create")
def env_create(
    name: str = env_arg("Environment name, a DNS label (e.g. feature-x).", "NAME"),
    kind: str = typer.Option(
        "preview", "--kind", help="development, preview, staging or production."
    ),
    branch: str | None = typer.Option(None, "--branch", help="Build this branch."),
    build_id: str | None = typer.Option(
        None, "--build", help="Run this build (no rebuild).", callback=check_build
    ),
    ref: str | None = typer.Option(None, "--ref", help="Build this tag or commit."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Wait until it serves."),
    timeout: float = typer.Option(600, "--timeout", help="Seconds to wait."),
    hotfix: bool = typer.Option(
        False, "--hotfix", help="Protected kinds: a build not run before it in the pipeline."
    ),
    reason: str | None = typer.Option(None, "--reason", help="Why (needed with --hotfix)."),
    app_name: str | None = AppOpt,
    repo: Path | None = RepoOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Create an environment from a branch, ref or build; wait until it serves. A protected
    kind (production) takes only a build that ran in the environment before it in the
    pipeline, unless --hotfix --reason."""
    if kind not in KINDS:
        raise InvalidInput(
            f"--kind: expected development, preview, staging or production, got {kind!r}"
        )
    if sum(x is not None for x in (branch, build_id, ref)) != 1:
        raise InvalidInput("give exactly one of --branch, --ref or --build")
    app, root = app_of(repo, app_name)
    client = Client()
    register_app(client, app, root)
    body = {
        "name": name,
        "kind": kind,
        "branch": branch,
        "ref": ref,
        "build": build_id,
        "hotfix": hotfix or None,
        "reason": reason,
    }
    created = client.request(
        "POST",
        path("apps", app, "environments"),
        json={k: v for k, v in body.items() if v is not None},
    )
    if held(created, as_json=as_json):
        return
    if not wait:
        result = created
    else:
        after = 0 if created["phase"] == "pending" else -1  # a retry: follow from now on
        result = wait_for(client, app, name, until="running", timeout=timeout, after=after)
    if as_json:
        output.print_json(result)
    elif wait:
        output.out().print(f"[green]✓[/] {name} is running at [bold]{result['url']}[/]")
    else:
        output.out().print(f"{name} requested; it will be at {created['url']}")


@env_app.command("list")
def env_list(
    app_name: str | None = AppOpt, repo: Path | None = RepoOpt, as_json: bool = JsonOpt
) -> None:
    """List the app's environments."""
    name = which_app(repo, app_name)
    items = Client().request("GET", path("apps", name, "environments"))
    if as_json:
        output.print_json(items)
        return
    table = output.table("name", "kind", "phase", "release", "source", "url")
    for e in items:
        table.add_row(
            e["name"],
            e["kind"],
            output.phase(e["phase"]),
            e["release"],
            f"{e['branch'] or e['ref'] or '-'}@{(e['commit'] or '-')[:8]}",
            e["url"],
        )
    output.out().print(table)


@env_app.command("show")
def env_show(
    name: str = env_arg(metavar="NAME"),
    app_name: str | None = AppOpt,
    repo: Path | None = RepoOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Show one environment: phase, source, build, replicas."""
    app = which_app(repo, app_name)
    e = Client().request("GET", path("apps", app, "environments", name))
    if as_json:
        output.print_json(e)
    else:
        print_environment(e)


@env_app.command("destroy")
def env_destroy(
    name: str = env_arg(metavar="NAME"),
    wait: bool = typer.Option(True, "--wait/--no-wait"),
    timeout: float = typer.Option(120, "--timeout"),
    hotfix: bool = typer.Option(
        False, "--hotfix", help="A protected environment: destroy it anyway (needs --reason)."
    ),
    reason: str | None = typer.Option(None, "--reason", help="Why; recorded in its events."),
    app_name: str | None = AppOpt,
    repo: Path | None = RepoOpt,
) -> None:
    """Destroy an environment: its processes, ports, files, databases and roles. A protected
    one (production) needs --hotfix --reason."""
    app = which_app(repo, app_name)
    client = Client()
    params = {"hotfix": "true"} if hotfix else {}
    if reason is not None:
        params["reason"] = reason
    answer = client.request("DELETE", path("apps", app, "environments", name), params=params)
    if held(answer):
        return
    if wait:
        with contextlib.suppress(NotFound):  # gone before we started to follow it
            wait_for(client, app, name, until="deleted", timeout=timeout, after=-1)
        output.out().print(f"[green]✓[/] {name} destroyed")
    else:
        output.out().print(f"{name} is being destroyed")


@commands.command()
def logs(
    environment: str = env_arg(),
    service: str | None = typer.Argument(None, help="Only this service (or `release`)."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines."),
    tail: int | None = typer.Option(
        None, "--tail", "-n", help="Lines of history per file (100; with --since, 10000)."
    ),
    since: str | None = typer.Option(
        None, "--since", help="Only lines since then: 30s, 10m, 2h, 1d, or an ISO timestamp."
    ),
    grep: str | None = typer.Option(
        None, "--grep", help="Only lines matching this regular expression (Python syntax)."
    ),
    as_json: bool = typer.Option(
        False, "--json", help='One JSON object a line: {"replica": "web.0", "line": "…"}.'
    ),
    app_name: str | None = AppOpt,
    repo: Path | None = RepoOpt,
) -> None:
    """Print an environment's logs, labelled per service replica."""
    params: dict[str, str] = {"follow": str(follow).lower()}
    if tail is not None:
        if tail < 0:
            raise InvalidInput(f"--tail {tail}: expected a number of lines, 0 or more")
        params["tail"] = str(tail)
    if since is not None:
        params["since"] = since_param(since)
    if grep is not None:
        from laneway.core.grep import compile_pattern

        compile_pattern(grep)  # a bad pattern is bad usage: said here, exit 2
        params["grep"] = grep
    if service:
        params["service"] = service
    app = which_app(repo, app_name)
    logs_path = path("apps", app, "environments", environment, "logs")
    for line in Client().stream("GET", logs_path, params=params):
        if as_json:
            replica, _, text = line.partition(" | ")
            line = json.dumps({"replica": replica, "line": text})
        print(line, flush=True)


def since_param(since: str) -> str:
    """`--since` checked here (exit 2 if bad) and sent as the server reads it: a duration as
    it is (counted back by the server's clock), a timestamp without an offset as local time."""
    import time
    from datetime import datetime

    from laneway.core import since as since_parser

    since = since.strip()
    since_parser.parse(since, now=time.time())
    if since_parser.duration(since) is not None:
        return since
    moment = datetime.fromisoformat(since)
    return (moment if moment.tzinfo else moment.astimezone()).isoformat()
