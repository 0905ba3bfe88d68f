"""Commands that run laneway on this machine, without the API: server, demo, halt, up.

Each imports the server side (the control plane, the runtime) when it runs, not before, so
that the client commands and `laneway --help` start without it.
"""

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from laneway.cli import output
from laneway.cli.options import AppOpt
from laneway.errors import Conflict, InvalidInput

if TYPE_CHECKING:
    from laneway.settings import Settings

commands = typer.Typer()
"""Top-level commands, merged into `laneway` by main.py."""


@commands.command()
def server(
    api: str | None = typer.Option(
        None,
        "--api",
        envvar="LANEWAY_API",
        help="HOST:PORT of the API (default 127.0.0.1:7070).",
    ),
    router: str | None = typer.Option(
        None,
        "--router",
        envvar="LANEWAY_ROUTER",
        help="HOST:PORT of the router (default 127.0.0.1:8080).",
    ),
    flags_sync: str | None = typer.Option(
        None,
        "--flags-sync",
        envvar="LANEWAY_FLAGS_SYNC",
        help="HOST:PORT of flagd sync for in-process flag providers (default "
        "127.0.0.1:8015), or `off`.",
    ),
) -> None:
    """Run the control plane (API and controllers) and the built-in router."""
    import asyncio
    import logging

    from laneway import server as control_plane
    from laneway.settings import load_settings

    settings = load_settings(api=api, router=router, flags_sync=flags_sync)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its two lines at every start
    host, port = settings.api
    rhost, rport = settings.router
    sync = settings.flags_sync_address or "off"
    err = output.err()
    err.print(
        f"laneway server: API http://{host}:{port}  router http://{rhost}:{rport}  "
        f"flags sync {sync}  home {settings.home}"
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(control_plane.serve(settings))
    err.print(
        "control plane stopped; app processes and the router keep running (`laneway halt` stops them)"
    )


@commands.command()
def demo(
    api: str | None = typer.Option(
        None, "--api", envvar="LANEWAY_API", help="HOST:PORT of the API."
    ),
    router: str | None = typer.Option(
        None, "--router", envvar="LANEWAY_ROUTER", help="HOST:PORT of the router."
    ),
    flags_sync: str | None = typer.Option(
        None,
        "--flags-sync",
        envvar="LANEWAY_FLAGS_SYNC",
        help="HOST:PORT of flagd sync, or `off`.",
    ),
) -> None:
    """Run the example app: a server, `staging` from main and preview `feature-x`, URLs
    printed. A default port that is taken is replaced by a free one, and said so."""
    import logging

    from laneway.cli import demo as example
    from laneway.settings import load_settings

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    given = {"api": api, "router": router, "flags_sync": flags_sync}
    settings = load_settings(api=api, router=router, flags_sync=flags_sync)
    console = output.out()
    settings = example.with_free_ports(
        settings, given={name for name, value in given.items() if value}, console=console
    )
    example.main(settings, console)


@commands.command()
def halt(
    force: bool = typer.Option(False, "--force", help="Even while the server runs."),
) -> None:
    """Stop every app process and the router that this LANEWAY_HOME started."""
    from laneway import server as control_plane
    from laneway.settings import load_settings

    settings = load_settings()
    running = None if force else control_plane.running_api(settings)
    if running:
        raise Conflict(
            f"laneway server is running on {running}: its "
            "controllers would start everything again at once",
            hint="stop the server first (Ctrl-C), or destroy environments with "
            "`laneway env destroy`; --force halts anyway",
        )
    stopped = control_plane.halt(settings)
    for line in stopped:
        output.out().print(f"stopped {line}")
    if not stopped:
        output.out().print("nothing was running")


@commands.command()
def up(
    repo: Path = typer.Option(Path("."), "--repo", help="The app's work tree."),
    reset: bool = typer.Option(
        False, "--reset", help="Start afresh: remove what `laneway down` removes first."
    ),
) -> None:
    """Run the app from the work tree in the foreground, restarting services on changes.
    Its development database and files are kept between runs (`laneway down` removes them)."""
    import asyncio

    from laneway import dev
    from laneway.settings import load_settings
    from laneway.workspace import load_spec

    settings = load_settings()
    root = repo.resolve()
    if not (root / "laneway.yaml").exists():
        raise InvalidInput(f"no laneway.yaml in {root}", hint="create one with `laneway init`")
    spec = load_spec(root / "laneway.yaml")
    if reset:
        _remove_development(spec.app, settings)
    asyncio.run(dev.run(root, settings))


@commands.command()
def down(
    repo: Path = typer.Option(Path("."), "--repo", help="The app's work tree."),
    app_name: str | None = AppOpt,
) -> None:
    """Remove what `laneway up` keeps between runs: the development database (and the other
    resources), files and record of the app. Refused while `laneway up` runs it."""
    from laneway.cli.options import app_of
    from laneway.settings import load_settings

    app = app_name or app_of(repo, None)[0]
    _remove_development(app, load_settings())


def _remove_development(app: str, settings: "Settings") -> None:
    import asyncio

    from laneway import dev

    if asyncio.run(dev.remove(app, settings)):
        output.out().print(f"removed the development environment of {app}: database, files, record")
    else:
        output.out().print(f"{app} has no development environment to remove")
