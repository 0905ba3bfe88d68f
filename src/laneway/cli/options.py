"""Which app a command works on, and the options every app command shares.

The app is `--app` (or LANEWAY_APP), else the `app:` of laneway.yaml in the git repository
around the current directory (or `--repo`).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import typer

from laneway.cli.client import Client, path
from laneway.errors import InvalidInput, SpecError
from laneway.spec import names


def check_name(value: str | None) -> str | None:
    """A typer callback: an app or environment name must be a DNS label, checked before any
    request (it becomes part of a hostname and of API paths); click names the argument."""
    if value is not None and (problem := names.label_problem(value)):
        raise typer.BadParameter(f"{value!r}: {problem}")
    return value


def check_build(value: str | None) -> str | None:
    if value is not None and (problem := names.build_problem(value)):
        raise typer.BadParameter(f"{value!r}: {problem} (`laneway builds` lists them)")
    return value


def env_arg(help: str = "Environment name.", metavar: str = "ENV") -> Any:
    """A required environment-name argument, checked by `check_name`."""
    return typer.Argument(..., help=help, metavar=metavar, callback=check_name)


AppOpt = typer.Option(
    None,
    "--app",
    envvar="LANEWAY_APP",
    help="App name (default: laneway.yaml's).",
    callback=check_name,
)
RepoOpt = typer.Option(None, "--repo", help="The app's git repository (default: the current one).")
JsonOpt = typer.Option(False, "--json", help="Print JSON.")

APP_NAME = re.compile(names.DNS_LABEL)
APP_LINE = re.compile(r"""^app:[ \t]*(['"]?)([a-z][a-z0-9-]*)\1[ \t]*(?:#.*)?$""", re.M)
"""A top-level `app: NAME` line, for a laneway.yaml that is not valid YAML: a command that
reads the server (`env list`) needs only the name, and `spec check` explains the rest."""


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
    name = app_in_spec(spec_path)
    if name is None:  # the spec loader says what is wrong, with line and column
        from laneway.workspace import load_spec

        try:
            name = load_spec(spec_path).app
        except SpecError as exc:
            exc.hint = f"{spec_path} names no app that can be read; pass --app NAME"
            raise
    return name, root


def app_in_spec(path: Path) -> str | None:
    """The `app:` of a laneway.yaml, read without loading the whole spec: a command that
    needs only the app's name does not pay for the spec's models (pydantic), and the spec is
    validated where it is used (`spec check`, `up`, and the server at each build). None where
    the name is not plainly there, for the spec loader to explain."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, ValueError):
        return None
    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        root = yaml.compose(text, Loader=loader)
    except yaml.YAMLError:  # the name may still stand plainly on a line of its own
        lines = [m.group(2) for m in APP_LINE.finditer(text)]
        return lines[0] if len(lines) == 1 and APP_NAME.fullmatch(lines[0]) else None
    if not isinstance(root, yaml.MappingNode):
        return None
    found = [v for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == "app"]
    if len(found) != 1 or not isinstance(found[0], yaml.ScalarNode):
        return None
    if found[0].tag != "tag:yaml.org,2002:str" or not APP_NAME.fullmatch(found[0].value):
        return None
    return str(found[0].value)


def which_app(repo: Path | None, app: str | None) -> str:
    """The app a command works on where it needs no repository (reading, deploying a build):
    `--app` as given, with no git run, else laneway.yaml's as `app_of` finds it."""
    if app and repo is None:
        return app
    return app_of(repo, app)[0]


def register_app(client: Client, app: str, repo: Path) -> None:
    client.request("PUT", path("apps", app), json={"repo": str(repo)})
