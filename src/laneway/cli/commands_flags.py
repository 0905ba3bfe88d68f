"""`laneway flags ...`: define feature flags, switch and roll them out per environment, import
and export flagd documents, read the history, print an environment's client key."""

import json
import sys
from pathlib import Path
from typing import Any

import typer

from laneway.cli import output
from laneway.cli.client import ApiPath, Client, path
from laneway.cli.options import AppOpt, JsonOpt, RepoOpt, check_name, which_app
from laneway.cli.output import escape
from laneway.errors import InvalidInput

flags_app = typer.Typer(
    help="Feature flags (flagd definitions, served over OFREP): define, switch, roll out.",
    no_args_is_help=True,
)

EnvOpt = typer.Option(..., "--env", "-e", help="Environment name.", callback=check_name)
TYPES = ("boolean", "string", "number", "object")
ON_OFF: dict[str, Any] = {"variants": {"on": True, "off": False}}


def _app(client: Client, app_name: str | None, repo: Path | None) -> str:
    """--app, else the app of the repository here, else the server's only app."""
    if app_name:
        return app_name
    try:
        return which_app(repo, app_name)
    except InvalidInput:
        if repo is not None:
            raise
    apps = [a["name"] for a in client.request("GET", path("apps"))]
    if len(apps) == 1:
        return str(apps[0])
    raise InvalidInput(
        "which app? not in an app's repository, and the server has "
        + (f"{len(apps)} apps ({', '.join(apps)})" if apps else "no apps"),
        hint="pass --app NAME, or run laneway in the app's repository",
    )


def _env_path(app: str, env: str, *tail: str) -> ApiPath:
    return path("apps", app, "environments", env, *tail)


def _describe(flag: dict[str, Any]) -> str:
    """A flag's state in one environment, in a few words."""
    if flag["state"] == "DISABLED":
        return "[dim]off[/]"
    rollout = flag.get("rollout")
    if rollout:
        return f"[yellow]{rollout['percent']:g}% {escape(rollout['variant'])}[/]"
    default = flag.get("defaultVariant")
    shown = f"on: {escape(default)}" if default else "on: code default"
    return f"[green]{shown}[/]" + (" +targeting" if flag.get("targeting") else "")


def _variant_value(kind: str, text: str, where: str) -> Any:
    if kind == "string":
        return text
    if kind == "boolean":
        if text.lower() not in ("true", "false"):
            raise InvalidInput(f"{where}: a boolean flag's value is true or false, got {text!r}")
        return text.lower() == "true"
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if kind == "number" and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise InvalidInput(f"{where}: expected a number, got {text!r}")
    if kind == "object" and not isinstance(value, dict):
        raise InvalidInput(f'{where}: expected a JSON object such as {{"a": 1}}, got {text!r}')
    return value


def _definition(
    key: str, kind: str, variants: list[str], default: str | None, file: Path | None
) -> dict[str, Any] | None:
    if file is not None:
        if variants:
            raise InvalidInput("give either --file or --variant, not both")
        document = _read_json(file)
        if isinstance(document, dict) and isinstance(document.get("flags"), dict):
            if key not in document["flags"]:
                raise InvalidInput(f"{file}: has no flag {key!r} under flags")
            extra = set(document) - {"flags", "$schema"}
            if extra or len(document["flags"]) != 1:
                raise InvalidInput(
                    f"{file}: a fragment for `flags create` holds one flag and nothing else; "
                    "use `laneway flags import` for whole documents ($evaluators, metadata)"
                )
            document = document["flags"][key]
        if not isinstance(document, dict):
            raise InvalidInput(f"{file}: expected a flagd flag (a JSON object)")
        return document
    if kind not in TYPES:
        raise InvalidInput(f"--type: expected one of {', '.join(TYPES)}, got {kind!r}")
    if not variants:
        if kind != "boolean":
            raise InvalidInput(f"a {kind} flag needs its variants: --variant NAME=VALUE (twice)")
        if default not in (None, "on", "off"):
            raise InvalidInput(
                f"--default: an on/off flag's variants are on and off, got {default!r}"
            )
        return None if default is None else {**ON_OFF, "defaultVariant": default}
    values: dict[str, Any] = {}
    for item in variants:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise InvalidInput(f"--variant: expected NAME=VALUE, got {item!r}")
        if name in values:
            raise InvalidInput(f"--variant: {name!r} is given twice")
        values[name] = _variant_value(kind, text, f"--variant {name}")
    chosen = default if default is not None else next(iter(values))
    if chosen not in values:
        raise InvalidInput(
            f"--default: {chosen!r} is not one of the variants ({', '.join(values)})"
        )
    return {"variants": values, "defaultVariant": chosen}


def _read_json(file: Path) -> Any:
    try:
        text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"{file}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{file}: not UTF-8 text") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"{file}: not JSON: {exc}") from None
    except RecursionError:
        raise InvalidInput(f"{file}: nested too deeply to read") from None


@flags_app.command("list")
def list_flags(
    env: str | None = typer.Option(
        None, "--env", "-e", help="Only this environment.", callback=check_name
    ),
    app_name: str | None = AppOpt,
    repo: Path | None = RepoOpt,
    as_json: bool = JsonOpt,
) -> None:
    """The app's flags and their state in each environment (or in one, with --env)."""
    client = Client()
    app = _app(client, app_name, repo)
    if env is not None:
        data = client.request("GET", _env_path(app, env, "flags"))
        if as_json:
            output.print_json(data)
            return
        table = output.table("flag", "type", "state", "default", "targeting")
        for f in data["flags"]:
            rollout = f["rollout"]
            targeting = (
                f"{rollout['percent']:g}% {rollout['variant']}, rest {rollout['rest']}"
                if rollout
                else ("rule" if f["targeting"] else "-")
            )
            table.add_row(
                escape(f["key"]), f["type"], f["state"], f["defaultVariant"] or "-", targeting
            )
        output.out().print(table)
        output.out().print(f"[dim]{env}: version {data['version']}[/]")
        return
    data = client.request("GET", path("apps", app, "flags"))
    if as_json:
        output.print_json(data)
        return
    table = output.table("flag", "type", *data["environments"])
    for f in data["flags"]:
        cells = [
            _describe(f["environments"][e]) if e in f["environments"] else "[dim]-[/]"
            for e in data["environments"]
        ]
        table.add_row(escape(f["key"]), f["type"] or "-", *cells)
    output.out().print(table)


@flags_app.command("create")
def create(
    key: str = typer.Argument(..., help="Flag key, e.g. new-checkout."),
    kind: str = typer.Option("boolean", "--type", help="boolean, string, number or object."),
    variants: list[str] = typer.Option(
        [], "--variant", help="NAME=VALUE, once per variant (default: on=true, off=false)."
    ),
    default: str | None = typer.Option(
        None, "--default", help="Default variant (default: on, or the first --variant)."
    ),
    file: Path | None = typer.Option(None, "--file", help="A flagd flag definition (JSON)."),
    enabled: bool = typer.Option(
        False, "--enabled", help="ENABLED in every environment (default: DISABLED)."
    ),
    enable_in: list[str] = typer.Option(
        [], "--enable-in", help="ENABLED in this environment only (repeatable)."
    ),
    app_name: str | None = AppOpt,
    repo: Path | None = RepoOpt,
) -> None:
    """Define a flag for the app: every environment gets it, disabled unless you say so."""
    definition = _definition(key, kind, variants, default, file)
    if enabled:
        definition = {**(definition or {**ON_OFF, "defaultVariant": "on"}), "state": "ENABLED"}
    client = Client()
    app = _app(client, app_name, repo)
    body: dict[str, Any] = {"key": key, "enabled_in": enable_in}
    if definition is not None:
        body["definition"] = definition
    created = client.request("POST", path("apps", app, "flags"), json=body)
    output.out().print(f"[green]✓[/] flag [bold]{escape(key)}[/] created in app {app}")
    for name, flag in created["environments"].items():
        output.out().print(f"  {name}: {_describe(flag)}")


@flags_app.command("set")
def set_flag(
    key: str = typer.Argument(..., help="Flag key."),
    state: str | None = typer.Argument(None, help="on (ENABLED) or off (DISABLED)."),
    env: str = EnvOpt,
    variant: str | None = typer.Option(None, "--variant", help="Make this the default variant."),
    no_targeting: bool = typer.Option(
        False, "--no-targeting", help="Remove the flag's targeting (and rollout) here."
    ),
    app_name: str | None = AppOpt,
    repo: Path | None = RepoOpt,
) -> None:
    """Switch a flag on or off in one environment, or choose the variant it serves."""
    body: dict[str, Any] = {}
    if state is not None:
        if state.lower() not in ("on", "off"):
            raise InvalidInput(f"state: expected on or off, got {state!r}")
        body["state"] = "ENABLED" if state.lower() == "on" else "DISABLED"
    if variant is not None:
        body["defaultVariant"] = variant
    if no_targeting:
        body["targeting"] = None
    if not body:
        raise InvalidInput("say what to set: on, off, --variant V or --no-targeting")
    client = Client()
    app = _app(client, app_name, repo)
    flag = client.request("PATCH", _env_path(app, env, "flags", key), json=body)
    output.out().print(f"[green]✓[/] {escape(key)} in {env}: {_describe(flag)}")
    if variant is not None and flag["targeting"]:
        output.out().print("  [dim]its targeting still decides for the users it matches[/]")


@flags_app.command("rollout")
def rollout(
    key: str = typer.Argument(..., help="Flag key."),
    percent: float = typer.Argument(..., help="Share of users, 0 to 100."),
    env: str = EnvOpt,
    variant: str | None = typer.Option(
        None, "--variant", help="The variant rolled out (default: the flag's true variant)."
    ),
    rest: str | None = typer.Option(
        None, "--rest", help="What the others get (default: the default variant)."
    ),
    app_name: str | None = AppOpt,
    repo: Path | None = RepoOpt,
) -> None:
    """Serve a flag's variant to PERCENT of users, sticky per targeting key."""
    if not 0 <= percent <= 100:
        raise InvalidInput(f"percent: expected a number from 0 to 100, got {percent:g}")
    client = Client()
    app = _app(client, app_name, repo)
    body = {"percent": percent, "variant": variant, "rest": rest}
    flag = client.request(
        "PUT",
        _env_path(app, env, "flags", key, "rollout"),
        json={k: v for k, v in body.items() if v is not None},
    )
    r = flag["rollout"]
    output.out().print(
        f"[green]✓[/] {escape(key)} in {env}: {r['percent']:g}% of users get "
        f"{escape(r['variant'])}, the rest {escape(r['rest'])} (sticky per targetingKey)"
    )


@flags_app.command("delete")
def delete(
    key: str = typer.Argument(..., help="Flag key."),
    app_name: str | None = AppOpt,
    repo: Path | None = RepoOpt,
) -> None:
    """Remove a flag from the app and from every environment."""
    client = Client()
    app = _app(client, app_name, repo)
    result = client.request("DELETE", path("apps", app, "flags", key))
    where = ", ".join(result["removed_from"]) or "no environment"
    output.out().print(f"[green]✓[/] flag {escape(key)} deleted (from {where})")


@flags_app.command("import")
def import_flags(
    file: Path = typer.Argument(..., help="A flagd flag-definition document (JSON), or -."),
    env: str = EnvOpt,
    strict: bool = typer.Option(
        False,
        "--strict",
        help="Refuse targeting that flagd loads but answers with an error or null "
        "(by default it is imported, as flagd answers it, with a warning).",
    ),
    app_name: str | None = AppOpt,
    repo: Path | None = RepoOpt,
) -> None:
    """Replace an environment's flags with a flagd document, whole (or change nothing)."""
    document = _read_json(file)
    client = Client()
    app = _app(client, app_name, repo)
    params = {"strict": "true"} if strict else {}
    data = client.request("PUT", _env_path(app, env, "flagset"), json=document, params=params)
    warnings = data.get("warnings") or []
    noted = f", {len(warnings)} with warnings" if warnings else ""
    output.out().print(
        f"[green]✓[/] {len(data['flags'])} flags imported into {env} "
        f"(version {data['version']}){noted}"
    )
    err = output.err()
    for warning in warnings:
        err.print(f"[yellow]warning:[/] {escape(warning['message'])}")
    if warnings:
        err.print("[dim]--strict refuses such a file instead[/]")


@flags_app.command("export")
def export(
    file: Path | None = typer.Argument(None, help="Write here (default: standard output)."),
    env: str = EnvOpt,
    app_name: str | None = AppOpt,
    repo: Path | None = RepoOpt,
) -> None:
    """An environment's flags as a flagd document, as flagd reads it."""
    client = Client()
    app = _app(client, app_name, repo)
    document = client.request("GET", _env_path(app, env, "flagset"))
    text = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
    if file is None or str(file) == "-":
        sys.stdout.write(text)
        return
    try:
        file.write_text(text)
    except OSError as exc:
        raise InvalidInput(f"{file}: cannot write: {exc.strerror}") from None
    output.out().print(f"[green]✓[/] {env}'s flags written to {file}")


@flags_app.command("history")
def history(
    key: str | None = typer.Argument(None, help="Only this flag (and whole imports)."),
    env: str = EnvOpt,
    limit: int = typer.Option(50, "--limit", "-n", min=1, max=1000, help="Newest N changes."),
    app_name: str | None = AppOpt,
    repo: Path | None = RepoOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Who changed which flag in an environment, when, from what to what."""
    client = Client()
    app = _app(client, app_name, repo)
    params: dict[str, Any] = {"limit": limit}
    if key is not None:
        params["key"] = key
    items = client.request("GET", _env_path(app, env, "flag-history"), params=params)
    if as_json:
        output.print_json(items)
        return
    table = output.table("when", "version", "who", "flag", "change")
    for c in items:
        table.add_row(
            c["time"][:19], str(c["version"]), escape(c["actor"]), escape(c["key"]), _change(c)
        )
    output.out().print(table)


def _change(change: dict[str, Any]) -> str:
    before, after = change["before"], change["after"]
    if change["key"] == "*":
        return f"import ({len((after or {}).get('flags', {}))} flags)"
    if before is None:
        return "created"
    if after is None:
        return "deleted"
    parts = []
    for field in ("state", "defaultVariant", "targeting", "variants", "metadata"):
        if before.get(field) != after.get(field):
            old, new = before.get(field), after.get(field)
            parts.append(f"{field}: {_short(old)} → {_short(new)}")
    return escape("; ".join(parts) or "changed")


def _short(value: Any) -> str:
    text = "-" if value is None else json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


@flags_app.command("key")
def client_key(
    env: str = EnvOpt,
    app_name: str | None = AppOpt,
    repo: Path | None = RepoOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Print an environment's client key and flags URL (it reads that environment's flags only)."""
    client = Client()
    app = _app(client, app_name, repo)
    data = client.request("POST", _env_path(app, env, "flag-key"))
    if as_json:
        output.print_json(data)
        return
    output.out().print(f"LANEWAY_FLAGS_URL={data['url']}")
    output.out().print(f"LANEWAY_FLAGS_KEY={data['key']}")
