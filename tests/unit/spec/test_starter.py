"""spec/starter.py: a starter laneway.yaml from what a repository holds; it always loads."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from laneway.errors import SpecError
from laneway.spec.loader import load_spec_text
from laneway.spec.model import Spec
from laneway.spec.starter import PLACEHOLDER_COMMAND, dns_label, starter_spec
from laneway.workspace import read_repo

PIP_REQUIREMENTS = "pip install -r requirements.txt --target .deps"
PIP_PROJECT = "pip install . --target .deps"
PACKAGE_JSON = '{"name": "shop", "scripts": {"start": "node server.js", "build": "vite build"}}'


def make_repo(root: Path, files: dict[str, str], name: str = "shop") -> Path:
    repo = root / name
    repo.mkdir()
    for path, content in files.items():
        (repo / path).write_text(content)
    return repo


def load(repo: Path) -> tuple[str, Spec]:
    text = starter_spec(read_repo(repo))
    return text, load_spec_text(text)


CASES = [
    pytest.param({}, None, {}, {"web": PLACEHOLDER_COMMAND}, id="empty repo"),
    pytest.param(
        {"requirements.txt": "flask\n"},
        PIP_REQUIREMENTS,
        {"PYTHONPATH": ".deps"},
        {"web": PLACEHOLDER_COMMAND},
        id="requirements.txt",
    ),
    pytest.param(
        {"pyproject.toml": "[project]\nname = 'shop'\n"},
        PIP_PROJECT,
        {"PYTHONPATH": ".deps"},
        {"web": PLACEHOLDER_COMMAND},
        id="pyproject.toml",
    ),
    pytest.param(
        {"requirements.txt": "", "pyproject.toml": ""},
        PIP_REQUIREMENTS,
        {"PYTHONPATH": ".deps"},
        {"web": PLACEHOLDER_COMMAND},
        id="requirements.txt wins over pyproject.toml",
    ),
    pytest.param(
        {"package.json": "{}", "package-lock.json": "{}"},
        "npm ci",
        {},
        {"web": PLACEHOLDER_COMMAND},
        id="npm with lockfile",
    ),
    pytest.param(
        {"package.json": "{}"},
        "npm install",
        {},
        {"web": PLACEHOLDER_COMMAND},
        id="npm without lockfile",
    ),
    pytest.param(
        {"package.json": PACKAGE_JSON, "npm-shrinkwrap.json": "{}"},
        "npm ci && npm run build",
        {},
        {"web": "npm start"},
        id="npm scripts: build and start",
    ),
    pytest.param(
        {"package.json": "not json"},
        "npm install",
        {},
        {"web": PLACEHOLDER_COMMAND},
        id="unreadable package.json",
    ),
    pytest.param(
        {"requirements.txt": "", "package.json": PACKAGE_JSON, "package-lock.json": ""},
        f"{PIP_REQUIREMENTS} && npm ci && npm run build",
        {"PYTHONPATH": ".deps"},
        {"web": "npm start"},
        id="python and node",
    ),
    pytest.param(
        {
            "requirements.txt": "",
            "Procfile": "web: gunicorn shop.wsgi --bind 0.0.0.0:$PORT\n"
            "worker: celery -A shop worker\n"
            "release: python manage.py migrate\n",
        },
        PIP_REQUIREMENTS,
        {"PYTHONPATH": ".deps"},
        {"web": "gunicorn shop.wsgi --bind 0.0.0.0:$PORT", "worker": "celery -A shop worker"},
        id="Procfile",
    ),
    pytest.param(
        {"Procfile": "worker: python worker.py\nClock_Job: python clock.py\n"},
        None,
        {},
        {"worker": "python worker.py", "clock-job": "python clock.py"},
        id="Procfile without web, names made DNS labels",
    ),
    pytest.param(
        {"Procfile": "web: run\nweb_2: a\nweb-2: b\n"},
        None,
        {},
        {"web": "run", "web-2": "a", "web-2-2": "b"},
        id="names that collide once sanitized",
    ),
    pytest.param(
        {"Procfile": "release: ./migrate\n", "package.json": PACKAGE_JSON},
        "npm install && npm run build",
        {},
        {"web": "npm start"},
        id="Procfile with only a release line",
    ),
    pytest.param(
        {
            "Procfile": "web: echo 'a: b' # c && {x} [y] \"q\" *z &w !t %p @ `tick`\n"
            "worker: yes\nclock: 1.10\n"
        },
        None,
        {},
        {
            "web": "echo 'a: b' # c && {x} [y] \"q\" *z &w !t %p @ `tick`",
            "worker": "yes",
            "clock": "1.10",
        },
        id="commands that need quoting in YAML",
    ),
]


@pytest.mark.parametrize(("files", "build", "env", "services"), CASES)
def test_starter_loads_and_reflects_the_repo(
    tmp_path: Path,
    files: dict[str, str],
    build: str | None,
    env: dict[str, str],
    services: dict[str, str],
) -> None:
    _, spec = load(make_repo(tmp_path, files))
    assert spec.app == "shop"
    assert spec.build.command == build
    assert spec.env == env
    assert {name: s.command for name, s in spec.services.items()} == services
    # protection, ttl and sleep are planned: shown commented out, not switched on
    assert spec.environments["production"].protected is None
    assert spec.environments["preview"].ttl is None
    assert set(spec.environments) == {"preview", "staging", "production"}
    if "web" in services:
        health = spec.services["web"].health
        assert health is not None
        assert health.path == "/"
        assert spec.replicas_for("web", "production") == 2
        assert spec.routed_service() == "web"
    else:
        assert all(s.health is None for s in spec.services.values())
        assert spec.environments["production"].replicas == {}


@pytest.mark.parametrize(("files", "build", "env", "services"), CASES)
def test_starter_passes_the_json_schema(
    tmp_path: Path, files: dict[str, str], build: object, env: object, services: object
) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from laneway.spec.schema import json_schema

    text = starter_spec(read_repo(make_repo(tmp_path, files)))
    jsonschema.validate(yaml.safe_load(text), json_schema())


def test_release_line_becomes_the_release_hook(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"Procfile": "web: run $PORT\nrelease: ./migrate --all\n"})
    text, spec = load(repo)
    assert spec.hooks.release == "./migrate --all"
    assert "release" not in spec.services
    assert "\nhooks:\n" in text


def test_no_release_line_no_hooks(tmp_path: Path) -> None:
    text, spec = load(make_repo(tmp_path, {"Procfile": "web: run $PORT\n"}))
    assert spec.hooks.release is None
    assert "\nhooks:" not in text


@pytest.mark.parametrize(
    ("command", "warned"),
    [
        ("gunicorn app --bind 0.0.0.0:$PORT", False),
        ("node server.js --port ${PORT}", False),
        ("python -m http.server", True),
        ("run $PORTAL", True),
    ],
)
def test_web_without_port_gets_a_comment(tmp_path: Path, command: str, warned: bool) -> None:
    text, _ = load(make_repo(tmp_path, {"Procfile": f"web: {command}\n"}))
    assert ("this command must listen on it" in text) is warned


def test_comments_explain_and_show_commented_examples(tmp_path: Path) -> None:
    text, _ = load(make_repo(tmp_path, {}))
    assert "# resources:\n#   db: {type: postgres}\n" in text
    assert "# pipeline: [staging, production]" in text
    assert "    # protected: true   # the default: only builds that ran healthy" in text
    assert "`/` is a guess" in text
    assert "# build:\n#   command: make build" in text
    top_level = [line.split(":")[0] for line in text.split("\n") if line[:1].isalpha()]
    assert top_level == ["app", "services", "environments"]
    assert text.endswith("\n")


def test_commands_round_trip_exactly(tmp_path: Path) -> None:
    command = "sh -c 'echo \"#1: ok\"' # trailing"
    text, spec = load(make_repo(tmp_path, {"Procfile": f"worker: {command}\n"}))
    assert spec.services["worker"].command == command
    assert '"sh -c ' in text


def test_malformed_procfile_is_a_spec_error(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"Procfile": "web: run\nnot a process line\n"})
    with pytest.raises(SpecError) as raised:
        starter_spec(read_repo(repo))
    assert raised.value.problems == [
        f"{repo / 'Procfile'}:2: expected `name: command`, got 'not a process line'"
    ]


def test_writes_nothing(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"requirements.txt": "", "Procfile": "web: run\n"})
    before = sorted(p.name for p in repo.iterdir())
    starter_spec(read_repo(repo))
    assert sorted(p.name for p in repo.iterdir()) == before == ["Procfile", "requirements.txt"]


def test_app_name_comes_from_the_directory(tmp_path: Path) -> None:
    _, spec = load(make_repo(tmp_path, {}, name="My_Shop.v2"))
    assert spec.app == "my-shop-v2"


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("shop", "shop"),
        ("My_Shop.v2", "my-shop-v2"),
        ("shop--api__", "shop-api"),
        ("2048-game", "game"),
        ("---", "app"),
        ("ünïcode", "n-code"),
        ("a" * 50, "a" * 40),
        ("a" * 39 + "-b", "a" * 39),
    ],
)
def test_dns_label(name: str, label: str) -> None:
    assert dns_label(name, fallback="app") == label
    assert load_spec_text(f"app: {label}\nservices: {{web: {{command: run}}}}\n").app == label


def test_django_collects_static_files_in_the_build_and_migrates_on_release(tmp_path: Path) -> None:
    text, spec = load(
        make_repo(
            tmp_path,
            {
                "requirements.txt": "django\ngunicorn\n",
                "manage.py": "",
                "Procfile": "web: gunicorn site.wsgi\n",
            },
        )
    )
    assert spec.build.command is not None
    assert spec.build.command.endswith("&& python manage.py collectstatic --noinput")
    assert spec.hooks.release == "python manage.py migrate --noinput"
    assert spec.build.path == [".deps/bin"] and spec.env["PYTHONPATH"] == ".deps"
