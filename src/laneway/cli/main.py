"""The `laneway` command. Every command but `server`, `up`, `demo`, `halt`, `init` and `spec`
talks to the HTTP API; errors are printed as one message (and a hint), never a traceback.

Exit status: 0 ok, 1 failure, 2 bad usage or input.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from laneway.cli import commands_env, commands_flags, commands_local, commands_pipeline
from laneway.errors import LanewayError

app = typer.Typer(
    name="laneway",
    help="Environments per branch, staging and production for web apps, on one machine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
env_app = typer.Typer(help="Create, list, show and destroy environments.", no_args_is_help=True)
spec_app = typer.Typer(
    help="The laneway.yaml spec: check it, print its JSON Schema.", no_args_is_help=True
)
config_app = typer.Typer(
    help="Config per environment: each change is a new release.", no_args_is_help=True
)
app.add_typer(env_app, name="env")
app.add_typer(spec_app, name="spec")
app.add_typer(config_app, name="config")
app.add_typer(commands_flags.flags_app, name="flags")

commands_env.register(app, env_app)
commands_local.register(app, spec_app)
commands_pipeline.register(app, config_app)

err = Console(stderr=True, soft_wrap=True)


def main() -> None:
    try:
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)  # typer.Exit(code) comes back as a value without standalone mode
    except LanewayError as exc:
        err.print(
            f"[bold red]error:[/] {exc.message}", highlight=False, markup=True, soft_wrap=True
        )
        if exc.hint:
            err.print(f"[dim]hint:[/] {exc.hint}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(1)
    except Exception as exc:  # click's usage errors and anything unforeseen: no traceback
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        err.print(f"[bold red]error:[/] unexpected {exc.__class__.__name__}: {escape(str(exc))}")
        sys.exit(1)
