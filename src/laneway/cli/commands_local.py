"""CLI commands that work on this machine without the API: server, halt, init, spec, up, demo."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from pathlib import Path

import typer
from rich.console import Console

from laneway.errors import Conflict, InvalidInput
from laneway.settings import load_settings
from laneway.spec import schema, starter
from laneway.workspace import load_spec, read_repo

# wide when piped, so that tables keep whole URLs and ids
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def register(app: typer.Typer, spec_app: typer.Typer) -> None:
    @app.command()
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
        from laneway import server as control_plane

        settings = load_settings(api=api, router=router, flags_sync=flags_sync)
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        logging.getLogger("httpx").setLevel(logging.WARNING)
        host, port = settings.api
        rhost, rport = settings.router
        sync = settings.flags_sync_address or "off"
        err.print(
            f"laneway server: API http://{host}:{port}  router http://{rhost}:{rport}  "
            f"flags sync {sync}  home {settings.home}"
        )
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(control_plane.serve(settings))
        err.print(
            "control plane stopped; app processes and the router keep running (`laneway halt` stops them)"
        )

    @app.command()
    def demo(
        api: str | None = typer.Option(
            None, "--api", envvar="LANEWAY_API", help="HOST:PORT of the API."
        ),
        router: str | None = typer.Option(
            None, "--router", envvar="LANEWAY_ROUTER", help="HOST:PORT of the router."
        ),
    ) -> None:
        """Run the example app: a server, `staging` from main and preview `feature-x`, URLs printed."""
        from laneway import demo as example

        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
        example.main(load_settings(api=api, router=router), out)

    @app.command()
    def halt(
        force: bool = typer.Option(False, "--force", help="Even while the server runs."),
    ) -> None:
        """Stop every app process and the router that this LANEWAY_HOME started."""
        from laneway import server as control_plane

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
            out.print(f"stopped {line}")
        if not stopped:
            out.print("nothing was running")

    @app.command()
    def up(
        repo: Path = typer.Option(Path("."), "--repo", help="The app's work tree."),
    ) -> None:
        """Run the app from the work tree in the foreground, restarting services on changes."""
        from laneway import dev

        settings = load_settings()
        root = repo.resolve()
        if not (root / "laneway.yaml").exists():
            raise InvalidInput(f"no laneway.yaml in {root}", hint="create one with `laneway init`")
        load_spec(root / "laneway.yaml")
        asyncio.run(dev.run(root, settings))

    @app.command()
    def init(
        path: Path = typer.Argument(Path("."), help="The app's repository."),
        force: bool = typer.Option(False, "--force", help="Overwrite an existing laneway.yaml."),
    ) -> None:
        """Write a commented starter laneway.yaml (services from a Procfile if there is one)."""
        root = path.resolve()
        if not root.is_dir():
            raise InvalidInput(f"{path}: not a directory")
        target = root / "laneway.yaml"
        if target.exists() and not force:
            raise Conflict(f"{target} exists already", hint="use --force to overwrite it")
        target.write_text(starter.starter_spec(read_repo(root)))
        out.print(f"wrote {target}")

    @spec_app.command("schema")
    def spec_schema() -> None:
        """Print the JSON Schema of laneway.yaml."""
        print(json.dumps(schema.json_schema(), indent=2))

    @spec_app.command("check")
    def spec_check(
        path: Path = typer.Argument(Path("laneway.yaml"), help="The spec file."),
        as_json: bool = typer.Option(False, "--json", help="Print the parsed spec as JSON."),
    ) -> None:
        """Validate a spec file; errors name file, line, column and field."""
        spec = load_spec(path)
        if as_json:
            print(spec.model_dump_json(indent=2, by_alias=True))
        else:
            out.print(f"{path}: ok (app {spec.app}, services: {', '.join(spec.services)})")
