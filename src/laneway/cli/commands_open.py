"""`laneway open ENV`: the environment's URL in a browser, or printed where there is none."""

from pathlib import Path

import typer

from laneway.cli import output
from laneway.cli.client import Client, path
from laneway.cli.options import AppOpt, JsonOpt, RepoOpt, env_arg, which_app

commands = typer.Typer()
"""Top-level commands, merged into `laneway` by main.py."""


def open_in_browser(url: str) -> bool:
    """Whether a browser took `url`: Python's webbrowser, which honours $BROWSER and finds
    none on a machine without a display or a text browser."""
    import webbrowser

    try:
        return webbrowser.get().open(url)
    except webbrowser.Error:
        return False


@commands.command("open")
def open_environment(
    environment: str = env_arg(),
    print_only: bool = typer.Option(False, "--print", help="Print the URL, open nothing."),
    as_json: bool = JsonOpt,
    app_name: str | None = AppOpt,
    repo: Path | None = RepoOpt,
) -> None:
    """Open the environment's URL in a browser; print it with --print or --json, or where no
    browser is found."""
    app = which_app(repo, app_name)
    found = Client().request("GET", path("apps", app, "environments", environment))
    url = found["url"]
    if as_json:
        output.print_json({"environment": found["name"], "url": url, "phase": found["phase"]})
        return
    if print_only or not open_in_browser(url):
        print(url)
        return
    output.err().print(f"opened {url}", markup=False)
