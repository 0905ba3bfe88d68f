"""Which app a command works on, and the options every app command shares.

The app is `--app` (or LANEWAY_APP), else the `app:` of laneway.yaml in the git repository
around the current directory (or `--repo`).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from laneway.errors import InvalidInput

if TYPE_CHECKING:
    from laneway.cli.client import Client

AppOpt = typer.Option(
    None, "--app", envvar="LANEWAY_APP", help="App name (default: laneway.yaml's)."
)
RepoOpt = typer.Option(None, "--repo", help="The app's git repository (default: the current one).")
JsonOpt = typer.Option(False, "--json", help="Print JSON.")


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
    from laneway.workspace import load_spec  # pydantic and YAML, only where a spec is read

    return load_spec(spec_path).app, root


def which_app(repo: Path | None, app: str | None) -> str:
    """The app a command works on where it needs no repository (reading, deploying a build):
    `--app` as given, with no git run, else laneway.yaml's as `app_of` finds it."""
    if app and repo is None:
        return app
    return app_of(repo, app)[0]


def register_app(client: Client, app: str, repo: Path) -> None:
    client.request("PUT", f"/apps/{app}", json={"repo": str(repo)})
