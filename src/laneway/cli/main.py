"""The `laneway` command. Every command but `server`, `up`, `demo`, `halt`, `init` and `spec`
talks to the HTTP API; errors are printed as one message (and a hint), never a traceback.

Each `commands_*` module registers its commands on its own Typer app; this one puts them
together. Exit status: 0 ok, 1 failure, 2 bad usage or input.

Start-up is part of every command's time (docs/benchmarks.md, B5), so: a command imports what
only it needs inside itself (the server side, the spec's pydantic models), httpx is imported
with the first client, rich with the first thing printed, and help is click's plain help. The
`commands_*` modules leave out `from __future__ import annotations`: typer reads their
signatures on every run, and real annotations spare it compiling each one from a string.
"""

from __future__ import annotations

import sys

import typer

from laneway.cli import (
    commands_access,
    commands_approvals,
    commands_audit,
    commands_builds,
    commands_canary,
    commands_config,
    commands_env,
    commands_flags,
    commands_grants,
    commands_local,
    commands_open,
    commands_ops,
    commands_pipeline,
    commands_releases,
    commands_secrets,
    commands_spec,
    output,
)
from laneway.errors import LanewayError


def _usage_metavar(self: typer.core.TyperArgument, ctx: object, *, usage: bool = False) -> str:
    """An argument as click and most commands write it in a usage line: `NAME`, `[NAME]`
    when optional, `NAME...` for several. typer 0.28 writes a required one as `{name}`,
    which reads as a placeholder to fill in with the braces."""
    var = self.metavar or (self.name or "").upper()
    if self.nargs != 1:
        var += "..."
    return f"[{var}]" if usage and not self.required else var


typer.core.TyperArgument.make_metavar = _usage_metavar  # type: ignore[method-assign]

app = typer.Typer(
    name="laneway",
    help="Environments per branch, staging and production for web apps, on one machine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"max_content_width": 120},
)
# top-level commands first, in this order in `laneway --help`, then the command groups
for module in (
    commands_builds,
    commands_releases,
    commands_env,
    commands_local,
    commands_spec,
    commands_pipeline,
    commands_open,
    commands_ops,
    commands_approvals,
):
    app.add_typer(module.commands)
app.add_typer(commands_env.env_app, name="env")
app.add_typer(commands_spec.spec_app, name="spec")
app.add_typer(commands_config.config_app, name="config")
app.add_typer(commands_flags.flags_app, name="flags")
app.add_typer(commands_canary.canary_app, name="canary")
commands_grants.install(commands_access.access_app)
app.add_typer(commands_access.access_app, name="access")
app.add_typer(commands_secrets.secrets_app, name="secrets")
app.add_typer(commands_audit.audit_app, name="audit")

UNUSED_IMPORTS = ("httpx._main", "trio")
"""Modules the command never runs that its libraries would import on the way: httpx's own
command line (click, pygments, rich's progress bars and syntax), which `import httpx` loads
unless it cannot, and trio, which httpcore loads where it is installed, for async clients
(the CLI's client is sync). Together they were a quarter of `laneway env list`'s
start-up."""


def skip_unused_imports() -> None:
    """A None entry in sys.modules makes an import fail at once; both libraries catch the
    ImportError and go on without the module. Left alone where one is imported already."""
    for name in UNUSED_IMPORTS:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]


def main() -> None:
    skip_unused_imports()
    try:
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)  # typer.Exit(code) comes back as a value without standalone mode
    except LanewayError as exc:
        err = output.err()
        err.print(f"[bold red]error:[/] {exc.message}", markup=True)
        if exc.hint:
            err.print(f"[dim]hint:[/] {exc.hint}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        output.err().print("interrupted")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        output.err().print("aborted")
        sys.exit(1)
    except typer.TyperException as exc:  # click's usage errors, as typer ships its own click
        show = getattr(exc, "show", None)
        if callable(show):
            show()  # the usage line and what is wrong, as click prints it
        else:
            output.err().print(f"error: {exc.format_message()}", markup=False)
        sys.exit(exc.exit_code)
    except Exception as exc:  # anything unforeseen: one line, no traceback
        output.err().print(
            f"[bold red]error:[/] unexpected {exc.__class__.__name__}: {output.escape(str(exc))}",
            highlight=True,
        )
        sys.exit(1)
