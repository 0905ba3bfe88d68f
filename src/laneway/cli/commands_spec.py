"""`laneway init` and `laneway spec check|schema`: write, validate and describe laneway.yaml,
locally. The spec's modules (pydantic, YAML) are imported when one of these runs."""

import json
import re
from pathlib import Path
from typing import Any

import typer

from laneway.cli import output
from laneway.errors import Conflict, InvalidInput, SpecError

spec_app = typer.Typer(
    help="The laneway.yaml spec: check it, print its JSON Schema.", no_args_is_help=True
)
commands = typer.Typer()
"""Top-level commands, merged into `laneway` by main.py."""


@commands.command()
def init(
    path: Path = typer.Argument(Path("."), help="The app's repository."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing laneway.yaml."),
) -> None:
    """Write a commented starter laneway.yaml (services from a Procfile if there is one)."""
    from laneway.spec import starter
    from laneway.workspace import read_repo

    root = path.resolve()
    if not root.is_dir():
        raise InvalidInput(f"{path}: not a directory")
    target = root / "laneway.yaml"
    if target.exists() and not force:
        raise Conflict(f"{target} exists already", hint="use --force to overwrite it")
    target.write_text(starter.starter_spec(read_repo(root)))
    output.out().print(f"wrote {target}")


@spec_app.command("schema")
def spec_schema() -> None:
    """Print the JSON Schema of laneway.yaml."""
    from laneway.spec import schema

    print(json.dumps(schema.json_schema(), indent=2))


@spec_app.command("check")
def spec_check(
    path: Path = typer.Argument(Path("laneway.yaml"), help="The spec file."),
    as_json: bool = typer.Option(
        False, "--json", help="Print the parsed spec, or its problems, as JSON."
    ),
) -> None:
    """Validate a spec file; errors name file, line, column and field. With --json, an
    invalid spec prints {"valid": false, "problems": [...]} and exits 2 as well."""
    from laneway.workspace import load_spec

    try:
        spec = load_spec(path)
    except SpecError as exc:
        if not as_json:
            raise
        problems = [problem_of(p, str(path)) for p in exc.problems]
        print(json.dumps({"valid": False, "file": str(path), "problems": problems}, indent=2))
        raise typer.Exit(2) from None
    if as_json:
        print(spec.model_dump_json(indent=2, by_alias=True))
    else:
        output.out().print(f"{path}: ok (app {spec.app}, services: {', '.join(spec.services)})")


PROBLEM = re.compile(
    r"^(?P<file>.+?):(?P<line>\d+):(?P<column>\d+): "
    r"(?:(?P<field>[A-Za-z0-9_$.\[\]-]+): )?(?P<message>.*)$",
    re.DOTALL,
)
"""A spec problem as the loader words it: `file:line:col: field: what` (field left out for
a problem of the whole file, such as invalid YAML)."""


def problem_of(text: str, file: str) -> dict[str, Any]:
    """One problem of a spec as a JSON object: file, line, column, field and message."""
    match = PROBLEM.match(text)
    if match is None:  # a file that cannot be read: `file: what`
        message = text.removeprefix(f"{file}: ")
        return {"file": file, "line": None, "column": None, "field": None, "message": message}
    found = match.groupdict()
    return {
        "file": found["file"],
        "line": int(found["line"]),
        "column": int(found["column"]),
        "field": found["field"],
        "message": found["message"],
    }
