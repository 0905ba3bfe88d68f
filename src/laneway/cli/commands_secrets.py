"""`laneway secrets rotate`: a new key seals every secret at rest (docs/secrets.md)."""

from __future__ import annotations

import typer

from laneway.cli import output
from laneway.cli.client import Client, path
from laneway.cli.options import JsonOpt

secrets_app = typer.Typer(help="Secrets at rest: the key that seals them.", no_args_is_help=True)


@secrets_app.command()
def rotate(as_json: bool = JsonOpt) -> None:
    """Seal every secret at rest (release configs, resources' passwords) with a new key, then
    drop the old one. Nothing restarts; safe to run again if interrupted. Admins only."""
    with output.err().status("re-sealing every secret with a new key"):
        done = Client().request("POST", path("secrets", "rotate"))
    if as_json:
        output.print_json(done)
        return
    output.out().print(
        f"rotated: {done['configs']} release configs and {done['resources']} resources' "
        f"details sealed with the new key; {done['dropped']} old key(s) dropped",
        markup=False,
    )
