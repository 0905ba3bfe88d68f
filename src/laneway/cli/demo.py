"""`laneway demo`: the embedded example app, a control plane, and two environments of it.

Makes a git repository of the example (branches `main` and `feature-x`) under LANEWAY_HOME,
runs the server in this process, creates `staging` from main and the preview `feature-x`,
prints their URLs and serves until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
from importlib import resources
from pathlib import Path

from rich.console import Console

from laneway import server
from laneway.addresses import Address
from laneway.api.auth import write_client_config
from laneway.cli.client import Client, path
from laneway.cli.commands_env import wait_for
from laneway.errors import Conflict, LanewayError
from laneway.settings import Settings

ENVIRONMENTS = (("staging", "staging", "main"), ("feature-x", "preview", "feature-x"))


def example_source() -> Path:
    return Path(str(resources.files("laneway") / "examples" / "shop"))


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        [
            "git",
            "-C",
            str(repo),
            "-c",
            "user.name=laneway demo",
            "-c",
            "user.email=demo@laneway.invalid",
            *args,
        ],
        check=True,
        capture_output=True,
    )


def make_demo_repo(target: Path) -> Path:
    """The example as a git repo with `main` and `feature-x`; kept if it exists already."""
    if (target / ".git").is_dir():
        return target
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(example_source(), tmp, ignore=shutil.ignore_patterns("__pycache__", ".deps"))
    _git(tmp, "init", "-q", "-b", "main")
    _git(tmp, "add", "-A")
    _git(tmp, "commit", "-q", "-m", "shop: the example app")
    _git(tmp, "checkout", "-q", "-b", "feature-x")
    readme = tmp / "README.md"
    readme.write_text(
        readme.read_text() + "\nfeature-x: a change on a branch, previewed on its own.\n"
    )
    _git(tmp, "commit", "-q", "-am", "feature-x: describe the branch")
    _git(tmp, "checkout", "-q", "main")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(target)
    return target


def create_environments(
    settings: Settings, repo: Path, console: Console
) -> list[dict[str, object]]:
    client = Client(server.api_url(settings), _token(settings))
    client.request("PUT", path("apps", "shop"), json={"repo": str(repo)})
    results = []
    for name, kind, branch in ENVIRONMENTS:
        console.print(f"creating [bold]{name}[/] ({kind}) from branch {branch}")
        created = client.request(
            "POST",
            path("apps", "shop", "environments"),
            json={"name": name, "kind": kind, "branch": branch},
        )
        after = 0 if created["phase"] == "pending" else -1  # an earlier demo's: from now on
        results.append(wait_for(client, "shop", name, until="running", timeout=600, after=after))
    return results


def _token(settings: Settings) -> str:
    return str(json.loads(settings.client_config.read_text())["token"])


def print_urls(
    settings: Settings, repo: Path, results: list[dict[str, object]], console: Console
) -> None:
    console.print("\n[bold]laneway demo[/]: the example app `shop` runs in two environments")
    for e in results:
        source = f"{e['kind']}, branch {e['branch']} @ commit {str(e['commit'])[:12]}"
        console.print(f"  {e['name']:<10} {source:<40} {e['url']}")
    host, port = settings.router
    console.print(
        f"\ntry: curl -H 'Host: feature-x.shop.localhost' http://{host}:{port}/\n"
        f"     cd {repo} && laneway env list\n"
        "Ctrl-C stops the control plane; the environments keep running (`laneway halt` stops them)."
    )


def with_free_ports(settings: Settings, *, given: set[str], console: Console) -> Settings:
    """The settings with each default address that is taken moved to a free port on the
    same host, said so. An address given (an option or its variable) stays, for the server
    to refuse naming its option; the router this home started may hold its own address."""
    if running := server.running_api(settings):
        raise Conflict(
            f"a laneway server of {settings.home} runs at {running}; the demo runs its own",
            hint="stop that server first (Ctrl-C), or give the demo another LANEWAY_HOME",
        )
    moved: dict[str, Address] = {}
    for field, what in (("api", "API"), ("router", "router"), ("flags_sync", "flags sync")):
        address: Address | None = getattr(settings, field)
        if field in given or address is None or server.port_is_free(*address) is None:
            continue
        if field == "router" and server.our_router_runs(settings):
            continue
        moved[field] = Address(address.host, free_port(address.host))
        console.print(
            f"the {what}'s port {address.port} is taken: the demo uses {moved[field]} "
            f"instead (choose with {server.PORT_OPTIONS[what]})"
        )
    return settings.model_copy(update=moved)


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


async def run_demo(settings: Settings, console: Console) -> None:
    """Serve until the server stops (uvicorn turns Ctrl-C and SIGTERM into a clean stop)."""
    repo = make_demo_repo(settings.home / "demo" / "shop")
    console.print(f"example app repository: {repo}")
    serving = asyncio.create_task(server.serve(settings))
    await _wait_for_api(settings, serving)
    _point_client_config(settings)
    creating = asyncio.create_task(asyncio.to_thread(create_environments, settings, repo, console))
    done, _ = await asyncio.wait({serving, creating}, return_when=asyncio.FIRST_COMPLETED)
    if creating in done:
        try:
            print_urls(settings, repo, creating.result(), console)
        except LanewayError as exc:
            console.print(f"[red]the demo's environments did not come up:[/] {exc.message}")
            console.print("the server keeps running so that you can look (`laneway env show`)")
    await serving
    with contextlib.suppress(LanewayError):
        await creating  # a create still waiting ends as soon as the server is gone


async def _wait_for_api(settings: Settings, serving: asyncio.Task[None]) -> None:
    while not settings.client_config.exists() or not await asyncio.to_thread(_api_up, settings):
        if serving.done():
            serving.result()
        await asyncio.sleep(0.05)


def _point_client_config(settings: Settings) -> None:
    """The client config names the API where this demo serves it (a moved port included),
    so that `laneway env list` afterwards reaches it."""
    config = json.loads(settings.client_config.read_text())
    if config.get("url") != server.api_url(settings):
        url = server.api_url(settings)
        write_client_config(settings.client_config, url=url, token=str(config["token"]))


def _api_up(settings: Settings) -> bool:
    client = Client(server.api_url(settings), _token(settings))
    try:
        client.request("GET", path("status"))
        return True
    except LanewayError:
        return False
    finally:
        client.close()


def main(settings: Settings, console: Console) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_demo(settings, console))
    console.print(
        "control plane stopped; the environments keep running (`laneway halt` stops them)"
    )
