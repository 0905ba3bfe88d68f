"""CLI commands that talk to the API: build, builds, env create|list|show|destroy, logs."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from laneway.cli.client import Client
from laneway.errors import InvalidInput, LanewayError, NotFound
from laneway.workspace import load_spec

# wide when piped, so that tables keep whole URLs and ids
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)

PHASE_STYLE = {
    "running": "green",
    "degraded": "yellow",
    "failed": "red",
    "deleting": "magenta",
}


def repo_root(repo: Path | None) -> Path:
    start = (repo or Path.cwd()).resolve()
    try:
        top = subprocess.run(
            ["git", "-C", str(start), "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        raise InvalidInput(
            f"{start} is not inside a git repository",
            hint="run laneway in the app's repository, or pass --repo",
        ) from None
    return Path(top)


def app_of(repo: Path | None, app: str | None) -> tuple[str, Path]:
    """The app name (from laneway.yaml unless given) and its repository. With an app name
    given, no repository is needed where none is used (reading, deploying a build): the
    current directory stands in, and a command that registers it is refused by the server."""
    if app and repo is None:
        try:
            return app, repo_root(None)
        except InvalidInput:
            return app, Path.cwd()
    root = repo_root(repo)
    if app:
        return app, root
    spec_path = root / "laneway.yaml"
    if not spec_path.exists():
        raise InvalidInput(f"no laneway.yaml in {root}", hint="create one with `laneway init`")
    return load_spec(spec_path).app, root


def register_app(client: Client, app: str, repo: Path) -> None:
    client.request("PUT", f"/apps/{app}", json={"repo": str(repo)})


AppOpt = typer.Option(
    None, "--app", envvar="LANEWAY_APP", help="App name (default: laneway.yaml's)."
)
RepoOpt = typer.Option(None, "--repo", help="The app's git repository (default: the current one).")
JsonOpt = typer.Option(False, "--json", help="Print JSON.")


def _phase(phase: str) -> str:
    style = PHASE_STYLE.get(phase, "cyan")
    return f"[{style}]{phase}[/]"


def print_environment(e: dict[str, Any]) -> None:
    out.print(f"[bold]{e['name']}[/] ({e['kind']}) of app {e['app']}: {_phase(e['phase'])}")
    out.print(f"  url:     {e['url']}")
    out.print(f"  source:  {e['branch'] or e['ref'] or '-'} @ {(e['commit'] or '-')[:12]}")
    out.print(f"  build:   {(e['build'] or '-')[:19]}   release: {e['release']}")
    if e["message"]:
        out.print(f"  status:  {e['message']}")
    if e["replicas"]:
        table = Table(box=None, padding=(0, 2), show_edge=False)
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


def print_release(r: dict[str, Any]) -> None:
    state = _phase(r["state"]) if r["state"] != "live" else "[green]live[/]"
    out.print(f"[bold]{r['name']}[/]: {state}   {r['description']}")
    out.print(f"  build:   {(r['build'] or '-')[:19]} @ {(r['commit'] or '-')[:12]}")
    out.print(f"  config:  version {r['config_version']}   processes: {r['generation']}")
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


def wait_for(
    client: Client, app: str, name: str, *, until: str, timeout: float, after: int = 0
) -> dict[str, Any]:
    """Follow an environment's events until it is `running` (or gone, for destroy)."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    path = f"/apps/{app}/environments/{name}/events"
    with err.status(f"waiting for {name}…") as status:
        params = {"follow": "true", "after": str(after)}
        for event, data in client.events("GET", path, params=params):
            if event == "status":
                last = data
                status.update(f"{name}: {data['phase']}: {data['message']}")
                if until == "running" and data["phase"] == "running":
                    return last
                if until == "running" and data["phase"] == "failed":
                    raise LanewayError(
                        f"environment {name} failed: {data['message'].splitlines()[0]}",
                        hint=f"`laneway env show {name}` has the whole message",
                    )
                if until == "running" and data["phase"] == "degraded":
                    raise LanewayError(
                        f"environment {name} is degraded: {data['message']}",
                        hint=f"it keeps trying; see `laneway logs {name}` and "
                        f"`laneway env show {name}`",
                    )
            elif event == "end":
                return last
            elif event == "build.output":
                err.print(f"  [dim]build |[/] {data['message']}", markup=True)
            else:
                err.print(f"  {data['message']}")
            if time.monotonic() > deadline:
                raise LanewayError(
                    f"environment {name} is not {until} after {timeout:g}s: "
                    f"{last.get('phase', '?')}: {last.get('message', '')}",
                    hint=f"see `laneway env show {name}` and `laneway logs {name}`",
                )
    return last


def register(app: typer.Typer, env_app: typer.Typer) -> None:
    @app.command()
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
        for event, data in client.events("POST", f"/apps/{name}/builds", json={"ref": ref}):
            if event == "output" and not as_json:
                err.print(f"[dim]build |[/] {data['line']}", markup=True)
            elif event == "result":
                if as_json:
                    out.print_json(json.dumps(data))
                else:
                    cached = " (cached: nothing was run)" if data.get("cached") else ""
                    out.print(f"build [bold]{data['id']}[/] of {data['commit'][:12]}{cached}")
                return
            elif event == "error":
                raise LanewayError(data["detail"], hint=data.get("hint"))
        raise LanewayError("the build stream ended without a result")

    @app.command()
    def builds(
        app_name: str | None = AppOpt, repo: Path | None = RepoOpt, as_json: bool = JsonOpt
    ) -> None:
        """List the app's builds."""
        name, root = app_of(repo, app_name)
        items = Client().request("GET", f"/apps/{name}/builds")
        if as_json:
            out.print_json(json.dumps(items))
            return
        table = Table("build", "commit", "ref", "created")
        for b in items:
            table.add_row(b["id"][:19], b["commit"][:12], b["ref"], b["created_at"][:19])
        out.print(table)

    @env_app.command("create")
    def env_create(
        name: str = typer.Argument(..., help="Environment name, a DNS label (e.g. feature-x)."),
        kind: str = typer.Option(
            "preview", "--kind", help="development, preview, staging or production."
        ),
        branch: str | None = typer.Option(None, "--branch", help="Build this branch."),
        build_id: str | None = typer.Option(None, "--build", help="Run this build (no rebuild)."),
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
        if kind not in ("development", "preview", "staging", "production"):
            raise InvalidInput(
                f"--kind: expected development, preview, staging or production, got {kind!r}"
            )
        if sum(x is not None for x in (branch, build_id, ref)) != 1:
            raise InvalidInput("give exactly one of --branch, --ref or --build")
        app_name_, root = app_of(repo, app_name)
        client = Client()
        register_app(client, app_name_, root)
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
            f"/apps/{app_name_}/environments",
            json={k: v for k, v in body.items() if v is not None},
        )
        after = 0 if created["phase"] == "pending" else -1  # a retry: follow from now on
        result = (
            wait_for(client, app_name_, name, until="running", timeout=timeout, after=after)
            if wait
            else created
        )
        if as_json:
            out.print_json(json.dumps(result))
        elif wait:
            out.print(f"[green]✓[/] {name} is running at [bold]{result['url']}[/]")
        else:
            out.print(f"{name} requested; it will be at {created['url']}")

    @env_app.command("list")
    def env_list(
        app_name: str | None = AppOpt, repo: Path | None = RepoOpt, as_json: bool = JsonOpt
    ) -> None:
        """List the app's environments."""
        name, _ = app_of(repo, app_name)
        items = Client().request("GET", f"/apps/{name}/environments")
        if as_json:
            out.print_json(json.dumps(items))
            return
        table = Table("name", "kind", "phase", "release", "source", "url")
        for e in items:
            table.add_row(
                e["name"],
                e["kind"],
                _phase(e["phase"]),
                e["release"],
                f"{e['branch'] or e['ref'] or '-'}@{(e['commit'] or '-')[:8]}",
                e["url"],
            )
        out.print(table)

    @env_app.command("show")
    def env_show(
        name: str,
        app_name: str | None = AppOpt,
        repo: Path | None = RepoOpt,
        as_json: bool = JsonOpt,
    ) -> None:
        """Show one environment: phase, source, build, replicas."""
        app_name_, _ = app_of(repo, app_name)
        e = Client().request("GET", f"/apps/{app_name_}/environments/{name}")
        if as_json:
            out.print_json(json.dumps(e))
        else:
            print_environment(e)

    @env_app.command("destroy")
    def env_destroy(
        name: str,
        wait: bool = typer.Option(True, "--wait/--no-wait"),
        timeout: float = typer.Option(120, "--timeout"),
        app_name: str | None = AppOpt,
        repo: Path | None = RepoOpt,
    ) -> None:
        """Destroy an environment: its processes, ports, files, databases and roles."""
        app_name_, _ = app_of(repo, app_name)
        client = Client()
        client.request("DELETE", f"/apps/{app_name_}/environments/{name}")
        if wait:
            with contextlib.suppress(NotFound):  # gone before we started to follow it
                wait_for(client, app_name_, name, until="deleted", timeout=timeout, after=-1)
            out.print(f"[green]✓[/] {name} destroyed")
        else:
            out.print(f"{name} is being destroyed")

    @app.command()
    def releases(
        environment: str = typer.Argument(..., help="Environment name."),
        release: str | None = typer.Argument(None, help="One release (e.g. v3) in full."),
        app_name: str | None = AppOpt,
        repo: Path | None = RepoOpt,
        as_json: bool = JsonOpt,
    ) -> None:
        """List an environment's releases, newest first; or show one with its config and its
        release hook's output."""
        name, _ = app_of(repo, app_name)
        path = f"/apps/{name}/environments/{environment}/releases"
        if release is not None:
            digits = release.removeprefix("v")
            if not digits.isdigit():
                raise InvalidInput(f"release {release!r}: expected a release such as v3")
            item = Client().request("GET", f"{path}/{int(digits)}")
            if as_json:
                out.print_json(json.dumps(item))
            else:
                print_release(item)
            return
        items = Client().request("GET", path)
        if as_json:
            out.print_json(json.dumps(items))
            return
        table = Table("release", "state", "build", "commit", "by", "created", "what")
        for r in items:
            what = r["description"] + (
                f" (hotfix: {r['hotfix_reason']})" if r["hotfix_reason"] else ""
            )
            if r["message"]:
                what += f": {r['message'].splitlines()[0]}"
            table.add_row(
                r["name"],
                _phase(r["state"]) if r["state"] != "live" else "[green]live[/]",
                (r["build"] or "-")[:19],
                (r["commit"] or "-")[:12],
                r["created_by"],
                r["created_at"][:19],
                what,
            )
        out.print(table)

    @app.command()
    def logs(
        environment: str = typer.Argument(..., help="Environment name."),
        service: str | None = typer.Argument(None, help="Only this service (or `release`)."),
        follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines."),
        tail: int = typer.Option(100, "--tail", "-n", help="Lines of history per file."),
        app_name: str | None = AppOpt,
        repo: Path | None = RepoOpt,
    ) -> None:
        """Print an environment's logs, labelled per service replica."""
        app_name_, _ = app_of(repo, app_name)
        params: dict[str, str] = {"tail": str(tail), "follow": str(follow).lower()}
        if service:
            params["service"] = service
        path = f"/apps/{app_name_}/environments/{environment}/logs"
        for line in Client().stream("GET", path, params=params):
            print(line, flush=True)
