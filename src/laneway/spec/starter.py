"""A commented starter laneway.yaml for a repository, for `laneway init`.

Reads what the repository holds (Procfile, requirements.txt, pyproject.toml, package.json
and its lockfile) and returns the text; it writes nothing, the CLI decides where the text
goes. The result always loads with `spec.loader.load_spec_text` (tests check each case).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import yaml

from laneway.errors import SpecError
from laneway.spec import procfile

PLACEHOLDER_COMMAND = "echo 'set services.web.command in laneway.yaml' >&2; exit 1"
_NPM_LOCKFILES = ("package-lock.json", "npm-shrinkwrap.json")


@dataclass
class _Repo:
    """What the starter needs to know about a repository."""

    app: str
    services: dict[str, str] = field(default_factory=dict)  # service name -> command
    from_procfile: bool = False
    release: str | None = None
    build: list[str] = field(default_factory=list)  # commands joined with &&
    path: list[str] = field(default_factory=list)
    python: bool = False


@dataclass(frozen=True)
class RepoFiles:
    """What the starter reads of a repository, read by `laneway.workspace.read_repo`: its
    directory's name and path (for messages), the names of the files at its top that the
    starter looks for, and the text of those it reads (None when unreadable)."""

    name: str
    root: str
    present: frozenset[str]
    texts: dict[str, str | None] = field(default_factory=dict)


LOOKED_FOR = (
    "requirements.txt",
    "pyproject.toml",
    "manage.py",
    "package.json",
    "Procfile",
    *_NPM_LOCKFILES,
)
READ = ("Procfile", "package.json")


def starter_spec(repo: RepoFiles) -> str:
    """The starter laneway.yaml text for `repo`; SpecError if its Procfile is malformed."""
    return _render(_inspect(repo))


def _inspect(repo: RepoFiles) -> _Repo:
    found = _Repo(app=dns_label(repo.name, fallback="app"))
    has = repo.present.__contains__

    if has("requirements.txt"):
        found.build.append("pip install -r requirements.txt --target .deps")
        found.path.append(".deps/bin")
        found.python = True
    elif has("pyproject.toml"):
        found.build.append("pip install . --target .deps")
        found.path.append(".deps/bin")
        found.python = True

    if found.python and has("manage.py"):
        # Django, as Heroku's Python buildpack treats it: static files collected in the build
        found.build.append("python manage.py collectstatic --noinput")

    scripts: dict[str, object] = {}
    if has("package.json"):
        locked = any(has(name) for name in _NPM_LOCKFILES)
        found.build.append("npm ci" if locked else "npm install")
        found.path.append("node_modules/.bin")
        scripts = _npm_scripts(repo.texts.get("package.json"))
        if "build" in scripts:
            found.build.append("npm run build")

    if has("Procfile"):
        path = f"{repo.root.rstrip('/')}/Procfile"
        text = repo.texts.get("Procfile")
        if text is None:
            raise SpecError([f"{path}: cannot read it as UTF-8 text"])
        parsed = procfile.parse_procfile(text, filename=path)
        found.release = parsed.release
        for name, command in parsed.services.items():
            service = dns_label(name, fallback="service")
            unique, number = service, 2
            while unique in found.services:
                unique, number = f"{service}-{number}", number + 1
            found.services[unique] = command
        found.from_procfile = bool(found.services)
    if found.release is None and found.python and has("manage.py"):
        found.release = "python manage.py migrate --noinput"

    if not found.services:
        found.services["web"] = "npm start" if "start" in scripts else PLACEHOLDER_COMMAND
    return found


def dns_label(text: str, *, fallback: str) -> str:
    """`My_Shop.v2` -> `my-shop-v2`: lowercase, '-' for the rest, a letter first, 40 at most."""
    label = re.sub(r"[^a-z0-9]+", "-", text.lower())
    label = re.sub(r"^[^a-z]+", "", label)[:40].strip("-")
    return label or fallback


def _npm_scripts(text: str | None) -> dict[str, object]:
    try:
        scripts = json.loads(text or "").get("scripts", {})
    except (ValueError, AttributeError):
        return {}
    return scripts if isinstance(scripts, dict) else {}


def _render(repo: _Repo) -> str:
    out: list[str] = [
        "# laneway.yaml: how laneway builds and runs this app, in every environment.",
        "# Reference: docs/spec.md. Editors can check this file against the JSON Schema",
        "# that `laneway spec schema` prints.",
        "",
        f"# The app's name; hostnames are <environment>.{repo.app}.localhost.",
        f"app: {repo.app}",
        "",
        "# Runs once per commit in a clean copy of the repository; what it leaves there is",
        "# the build, and every environment runs that same build, unchanged.",
    ]
    if repo.build:
        out += ["build:", f"  command: {_scalar(' && '.join(repo.build))}"]
        if repo.path:
            out += [
                "  # put in front of PATH for every service, so installed tools run by name",
                f"  path: [{', '.join(repo.path)}]",
            ]
    else:
        out += ["# (nothing to build was detected)", "# build:", "#   command: make build"]
    out.append("")

    if repo.python:
        out += [
            "# Variables for every service, in every environment. Dependencies live in .deps;",
            "# their console scripts in .deps/bin, which build.path puts on PATH.",
            "env:",
            "  PYTHONPATH: .deps",
        ]
    else:
        out += [
            "# Variables for every service, in every environment.",
            "# env:",
            "#   LOG_LEVEL: info",
        ]
    out.append("")

    source = "from the Procfile" if repo.from_procfile else "a placeholder to edit"
    out += [
        f"# The app's processes ({source}). The one named `web` gets a port, passed",
        "# as $PORT, and receives the environment's HTTP traffic; others get no port unless",
        "# they set `port: auto`. Each may also set `replicas` and its own `env`.",
        "services:",
    ]
    for name, command in repo.services.items():
        out.append(f"  {name}:")
        if command == PLACEHOLDER_COMMAND:
            out.append("    # The command that starts your web server, listening on $PORT.")
        elif name == "web" and not re.search(r"\$(PORT\b|\{PORT\})", command):
            out.append("    # laneway passes the port in $PORT; this command must listen on it.")
        out.append(f"    command: {_scalar(command)}")
        if name == "web":
            out += [
                "    # A new release takes traffic only once this path answers 2xx or 3xx.",
                "    # `/` is a guess: point it at a cheap endpoint such as /healthz.",
                "    health: /",
            ]
    out.append("")

    if repo.release:
        out += [
            "# Runs once per release, before the release takes traffic (migrations go here);",
            "# if it fails, the deployment stops and traffic stays where it was.",
            "hooks:",
            f"  release: {_scalar(repo.release)}",
            "",
        ]

    out += [
        "# Backing services; every environment gets its own instance, and its address in a",
        "# variable: the first postgres one in DATABASE_URL, others in <NAME>_URL (postgres,",
        "# sqlite) or <NAME>_DIR (directory); `env:` picks another name.",
        "# resources:",
        "#   db: {type: postgres}",
        "#   uploads: {type: directory}",
        "",
        "# Environments a build is promoted through, in order (this is the default).",
        "# pipeline: [staging, production]",
        "",
        "# Settings per kind of environment: development (`laneway up`), preview (one per",
        "# branch), staging and production. `env` here wins over the top-level `env`.",
        "environments:",
        "  preview:",
        "    env: {LOG_LEVEL: debug}",
        "    # ttl: 72h          # (planned) destroyed 72 hours after its last deploy",
        "    # sleep_after: 30m  # (planned) stopped after 30 idle minutes; a request wakes it",
        "    # Seed each preview's `db` with a masked copy of staging's data:",
        "    # data: {db: {from: staging, mask: [users.email]}}",
        "  staging:",
        "    # Staging mirrors production: keep what differs here small.",
        "    # protected: false  # true: takes only builds that ran in the environment before it",
        "    env: {LOG_LEVEL: info}",
        "  production:",
        "    # protected: true   # the default: only builds that ran healthy in staging first",
    ]
    if "web" in repo.services:
        out += ["    replicas:", "      web: 2          # processes of `web` in production"]
    else:
        out += ["    env: {LOG_LEVEL: warning}"]
    return "\n".join(out) + "\n"


def _scalar(text: str) -> str:
    """`text` as a YAML scalar: plain when it reads back unchanged, else double-quoted."""
    try:
        plain = yaml.safe_load(f"key: {text}\n") == {"key": text}
    except yaml.YAMLError:
        plain = False
    if plain and "#" not in text and text == text.strip():
        return text
    return json.dumps(text, ensure_ascii=False)
