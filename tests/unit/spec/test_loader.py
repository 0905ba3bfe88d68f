"""spec/loader.py: laneway.yaml text -> Spec, or every problem as file:line:col: field: what."""

from __future__ import annotations

import random
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from laneway.errors import SpecError
from laneway.spec.loader import load_spec_text
from laneway.spec.model import Spec
from laneway.workspace import load_spec

SKETCH = (Path(__file__).parent / "design_sketch.yaml").read_text()  # DESIGN.md's sketch

FULL = """\
app: shop-api
build:
  command: pip install -r requirements.txt --target .deps && npm ci
env:
  PYTHONPATH: .deps
  WORKERS: 4
services:
  web:
    command: gunicorn shop.wsgi --bind 0.0.0.0:$PORT
    port: auto
    health: {path: /healthz, timeout: 1, interval: 0.25, grace: 120}
    replicas: 2
    env: {GUNICORN_CMD_ARGS: "--timeout 30"}
  worker:
    command: python -m shop.worker
    port: none
    replicas: 0
  admin:
    command: python -m shop.admin
    health: /ping
resources:
  db: {type: postgres}
  analytics: {type: postgres}
  cache: {type: sqlite}
  uploads: {type: directory, env: MEDIA_ROOT}
hooks:
  release: python -m shop.migrate
pipeline: [staging, canary, production]
environments:
  development: {env: {DEBUG: "1"}}
  preview:
    ttl: 7d
    sleep_after: 90s
    data:
      db: {from: staging, mask: [users.email, users.phone]}
      uploads: {from: staging}
  staging: {env: {LOG_LEVEL: debug}, protected: false}
  production: {protected: true, replicas: {web: 4, worker: 2}}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as raised:
        load_spec_text(text)
    return raised.value.problems


def web(*lines: str) -> str:
    """A valid spec whose `web` service gets `lines` (line 5 on) added."""
    body = "".join(f"    {line}\n" for line in lines)
    return f"app: shop\nservices:\n  web:\n    command: run\n{body}"


# --- valid documents -----------------------------------------------------------------------


def test_design_sketch_loads() -> None:
    spec = load_spec_text(SKETCH)
    assert spec.app == "shop"
    assert spec.routed_service() == "web"
    assert spec.services["web"].health is not None
    assert spec.services["web"].health.path == "/healthz"
    assert not spec.services["worker"].has_port("worker")
    assert spec.replicas_for("web", "production") == 2
    assert spec.replicas_for("web", "preview") == 1
    assert spec.env_for("staging") == {"LOG_LEVEL": "debug"}
    assert spec.resource_env_names() == {"db": "DATABASE_URL"}
    assert spec.hooks.release == "python -m shop.migrate"
    assert spec.environments["preview"].data["db"].from_ == "staging"


def test_full_spec_loads() -> None:
    spec = load_spec_text(FULL)
    assert list(spec.services) == ["web", "worker", "admin"]
    assert spec.services["web"].health is not None
    assert spec.services["web"].health.grace == 120
    assert spec.services["admin"].has_port("admin")
    assert spec.env == {"PYTHONPATH": ".deps", "WORKERS": "4"}
    assert spec.resource_env_names() == {
        "db": "DATABASE_URL",
        "analytics": "ANALYTICS_URL",
        "cache": "CACHE_URL",
        "uploads": "MEDIA_ROOT",
    }
    assert spec.pipeline == ["staging", "canary", "production"]
    assert spec.replicas_for("worker", "production") == 2
    assert spec.environments["production"].protected is True


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1.10", "1.10"),
        ("yes", "yes"),
        ("on", "on"),
        ("true", "true"),
        ("4", "4"),
        ("0x10", "0x10"),
        ("1e3", "1e3"),
        ("2024-01-01", "2024-01-01"),
        ("'quoted: yes'", "quoted: yes"),
        ('""', ""),
        ("!!str 7", "7"),
    ],
)
def test_env_values_are_the_text_that_was_typed(value: str, expected: str) -> None:
    spec = load_spec_text(f"app: shop\nenv:\n  X: {value}\nservices: {{web: {{command: run}}}}\n")
    assert spec.env == {"X": expected}


@pytest.mark.parametrize(
    ("text", "check"),
    [
        pytest.param(
            "\ufeffapp: shop\nservices: {web: {command: run}}\n",
            lambda s: s.app == "shop",
            id="byte-order mark",
        ),
        pytest.param(
            "app: shop\r\nservices:\r\n  web: {command: run}\r\n",
            lambda s: s.services["web"].command == "run",
            id="CRLF",
        ),
        pytest.param(
            "app: shop\nservices:\n  web: &w {command: run, replicas: 2}\n"
            "  api:\n    <<: *w\n    replicas: 3\n",
            lambda s: (s.services["api"].command, s.services["api"].replicas) == ("run", 3),
            id="merge key, written key wins",
        ),
        pytest.param(
            "app: shop\nservices:\n  web: {command: run}\n  api:\n"
            "    <<: [{command: first}, {command: second, replicas: 2}]\n",
            lambda s: (s.services["api"].command, s.services["api"].replicas) == ("first", 2),
            id="merge list, first wins",
        ),
        pytest.param(
            "app: shop\nservices:\n  on: {command: run}\n",
            lambda s: list(s.services) == ["on"],
            id="keys are text, not YAML 1.1 booleans",
        ),
        pytest.param(
            'app: shop\nservices: {"web": {command: "a: b # c"}}\n',
            lambda s: s.services["web"].command == "a: b # c",
            id="quoted",
        ),
        pytest.param(
            "app: shop\nservices:\n  worker: {command: run, health: /up}\n",
            lambda s: s.routed_service() == "worker",
            id="health implies a port",
        ),
        pytest.param(
            "app: shop\nservices:\n  web: {command: run, port: none}\n",
            lambda s: s.routed_service() is None,
            id="no port, no route",
        ),
    ],
)
def test_valid_variants(text: str, check: Callable[[Spec], bool]) -> None:
    assert check(load_spec_text(text))


# --- one problem each: exact position, path and words -------------------------------------

WRONG_TYPE = [
    pytest.param(
        web("replicas: two"),
        "laneway.yaml:5:15: services.web.replicas: expected an integer, got 'two'",
        id="int from text",
    ),
    pytest.param(
        web("replicas: true"),
        "laneway.yaml:5:15: services.web.replicas: expected an integer, got true",
        id="int from bool",
    ),
    pytest.param(
        web("replicas: 2.5"),
        "laneway.yaml:5:15: services.web.replicas: expected an integer, got 2.5",
        id="int from float",
    ),
    pytest.param(
        "app: shop\nservices:\n  web:\n    command: 42\n",
        "laneway.yaml:4:14: services.web.command: expected a string, got 42",
        id="string",
    ),
    pytest.param(
        "app: [shop]\nservices: {web: {command: run}}\n",
        "laneway.yaml:1:6: app: expected a string, got a list",
        id="string from list",
    ),
    pytest.param(
        "app: shop\nservices: [web]\n",
        "laneway.yaml:2:11: services: expected a mapping, got a list",
        id="mapping",
    ),
    pytest.param(
        "app: shop\nbuild: make\nservices: {web: {command: run}}\n",
        "laneway.yaml:2:8: build: expected a mapping, got 'make'",
        id="model",
    ),
    pytest.param(
        web("health: 5"),
        "laneway.yaml:5:13: services.web.health: expected a path like `/healthz` or a mapping "
        "with `path`, got 5",
        id="health shorthand",
    ),
    pytest.param(
        web("health: {path: /x, timeout: fast}"),
        "laneway.yaml:5:33: services.web.health.timeout: expected a number, got 'fast'",
        id="number",
    ),
    pytest.param(
        "app: shop\nservices: {web: {command: run}}\nenvironments:\n"
        "  production: {protected: maybe}\n",
        "laneway.yaml:4:27: environments.production.protected: expected true or false, got 'maybe'",
        id="bool",
    ),
    pytest.param(
        "app: shop\nservices: {web: {command: run}}\nenvironments:\n"
        "  preview: {data: {db: {from: staging, mask: users.email}}}\n",
        "laneway.yaml:4:46: environments.preview.data.db.mask: expected a list, got 'users.email'",
        id="list",
    ),
    pytest.param(
        "app: shop\nservices:\n  web:\n    command: run\n    env: {EMPTY: }\n",
        "laneway.yaml:5:17: services.web.env.EMPTY: expected a string, got null "
        "(write '' for an empty value)",
        id="env null",
    ),
]

MISSING = [
    pytest.param(
        "app: shop\nservices:\n  web:\n    port: auto\n",
        "laneway.yaml:3:3: services.web.command: missing required field",
        id="nested",
    ),
    pytest.param(
        "# my app\nservices: {web: {command: run}}\n",
        "laneway.yaml:2:1: app: missing required field",
        id="top level",
    ),
    pytest.param(
        web("health: {timeout: 1}"),
        "laneway.yaml:5:5: services.web.health.path: missing required field",
        id="health path",
    ),
    pytest.param(
        "app: shop\nservices: {web: {command: run}}\nresources:\n  db: {env: DB}\n",
        "laneway.yaml:4:3: resources.db.type: missing required field",
        id="resource type",
    ),
    pytest.param(
        "app: shop\nservices: {web: {command: run}}\nresources: {db: {type: postgres}}\n"
        "environments:\n  preview:\n    data:\n      db: {mask: [a.b]}\n",
        "laneway.yaml:7:7: environments.preview.data.db.from: missing required field",
        id="data source from",
    ),
]

PATTERN = [
    pytest.param(
        "app: Shop\nservices: {web: {command: run}}\n",
        "laneway.yaml:1:6: app: expected a lowercase DNS label like `web` (a-z, 0-9 and '-', "
        "starting with a letter, at most 40 characters), got 'Shop'",
        id="app",
    ),
    pytest.param(
        "app: shop\nservices:\n  1: {command: run}\n",
        "laneway.yaml:3:3: services.1: invalid name '1'; expected a lowercase DNS label "
        "like `web` (a-z, 0-9 and '-', starting with a letter, at most 40 characters)",
        id="numeric name kept as text",
    ),
    pytest.param(
        "app: shop\nservices:\n  Web_1: {command: run}\n",
        "laneway.yaml:3:3: services.Web_1: invalid name 'Web_1'; expected a lowercase DNS label "
        "like `web` (a-z, 0-9 and '-', starting with a letter, at most 40 characters)",
        id="service name",
    ),
    pytest.param(
        "app: shop\nservices: {web: {command: run}}\nenv:\n  1BAD: x\n",
        "laneway.yaml:4:3: env.1BAD: invalid name '1BAD'; expected a variable name like "
        "`LOG_LEVEL` (letters, digits and '_', not starting with a digit)",
        id="variable name",
    ),
    pytest.param(
        web("health: healthz"),
        "laneway.yaml:5:13: services.web.health: expected a path starting with '/', like "
        "`/healthz`, got 'healthz'",
        id="health shorthand",
    ),
    pytest.param(
        web("health: {path: healthz}"),
        "laneway.yaml:5:20: services.web.health.path: expected a path starting with '/', like "
        "`/healthz`, got 'healthz'",
        id="health path",
    ),
    pytest.param(
        "app: shop\nservices: {web: {command: run}}\nenvironments:\n  preview: {ttl: 3 days}\n",
        "laneway.yaml:4:18: environments.preview.ttl: expected a duration like `30m` or `72h` "
        "(a whole number and s, m, h or d), got '3 days'",
        id="duration",
    ),
    pytest.param(
        "app: shop\nservices: {web: {command: run}}\npipeline: [staging, Prod]\n",
        "laneway.yaml:3:21: pipeline[1]: expected a lowercase DNS label like `web` (a-z, 0-9 "
        "and '-', starting with a letter, at most 40 characters), got 'Prod'",
        id="list item",
    ),
]

CHOICE = [
    pytest.param(
        web("port: 8080"),
        "laneway.yaml:5:11: services.web.port: expected 'auto' or 'none', got 8080",
        id="port number",
    ),
    pytest.param(
        web("port: Auto"),
        "laneway.yaml:5:11: services.web.port: expected 'auto' or 'none', got 'Auto'; "
        "did you mean 'auto'?",
        id="port case",
    ),
    pytest.param(
        "app: shop\nservices: {web: {command: run}}\nresources:\n  db: {type: postgress}\n",
        "laneway.yaml:4:14: resources.db.type: expected 'postgres', 'sqlite' or 'directory', "
        "got 'postgress'; did you mean 'postgres'?",
        id="resource type",
    ),
    pytest.param(
        "app: shop\nservices: {web: {command: run}}\nresources:\n  db: {type: redis}\n",
        "laneway.yaml:4:14: resources.db.type: expected 'postgres', 'sqlite' or 'directory', "
        "got 'redis'",
        id="no near choice",
    ),
]

RANGE = [
    pytest.param(
        web("replicas: 65"),
        "laneway.yaml:5:15: services.web.replicas: expected at most 64, got 65",
        id="above",
    ),
    pytest.param(
        web("replicas: -1"),
        "laneway.yaml:5:15: services.web.replicas: expected at least 0, got -1",
        id="below",
    ),
    pytest.param(
        web("health: {path: /, timeout: 0}"),
        "laneway.yaml:5:32: services.web.health.timeout: expected a number greater than 0, got 0",
        id="exclusive",
    ),
    pytest.param(
        web("health: {path: /, grace: 3600.5}"),
        "laneway.yaml:5:30: services.web.health.grace: expected at most 3600, got 3600.5",
        id="float bound",
    ),
    pytest.param(
        "app: shop\nservices: {web: {command: run}}\nenvironments:\n"
        "  production: {replicas: {web: 100}}\n",
        "laneway.yaml:4:32: environments.production.replicas.web: expected at most 64, got 100",
        id="override",
    ),
    pytest.param(
        "app: shop\nservices: {}\n",
        "laneway.yaml:2:11: services: must not be empty",
        id="no services",
    ),
    pytest.param(
        "app: shop\nservices:\n  web: {command: ''}\n",
        "laneway.yaml:3:18: services.web.command: must not be empty",
        id="empty command",
    ),
]

UNKNOWN_KEY = [
    pytest.param(
        "app: shop\nservices:\n  web:\n    comand: run\n",
        [  # the misspelt key also leaves `command` missing
            "laneway.yaml:3:3: services.web.command: missing required field",
            "laneway.yaml:4:5: services.web.comand: unknown key; did you mean 'command'? "
            "(allowed: command, env, health, port, replicas)",
        ],
        id="service",
    ),
    pytest.param(
        "app: shop\nservics: {web: {command: run}}\nservices: {web: {command: run}}\n",
        "laneway.yaml:2:1: servics: unknown key; did you mean 'services'? (allowed: app, build, "
        "canary, env, environments, hooks, parity, pipeline, resources, services)",
        id="top level",
    ),
    pytest.param(
        web("timeout: 3"),
        "laneway.yaml:5:5: services.web.timeout: unknown key (allowed: command, env, health, "
        "port, replicas)",
        id="nothing near",
    ),
    pytest.param(
        web("health: {paht: /x, path: /}"),
        "laneway.yaml:5:14: services.web.health.paht: unknown key; did you mean 'path'? "
        "(allowed: grace, interval, path, timeout)",
        id="health",
    ),
    pytest.param(
        "app: shop\nservices: {web: {command: run}}\nresources: {db: {type: postgres}}\n"
        "environments:\n  preview: {data: {db: {form: staging, from: staging}}}\n",
        "laneway.yaml:5:25: environments.preview.data.db.form: unknown key; did you mean "
        "'from'? (allowed: from, mask)",
        id="alias",
    ),
    pytest.param(
        "app: shop\nservices: {web: {command: run}}\nenvironments:\n  prod: {}\n",
        "laneway.yaml:4:3: environments.prod: unknown environment kind; did you mean "
        "'production'? (allowed: development, preview, staging, production)",
        id="kind prefix",
    ),
    pytest.param(
        "app: shop\nservices: {web: {command: run}}\nenvironments:\n  stagin: {}\n",
        "laneway.yaml:4:3: environments.stagin: unknown environment kind; did you mean "
        "'staging'? (allowed: development, preview, staging, production)",
        id="kind typo",
    ),
    pytest.param(
        "app: shop\nservices: {web: {command: run}}\nhooks: {deploy: x}\n",
        "laneway.yaml:3:9: hooks.deploy: unknown key (allowed: release)",
        id="hooks",
    ),
]

CONFLICT = [
    pytest.param(
        "app: shop\nservices: {web: {command: run}}\nenvironments:\n"
        "  production: {replicas: {wbe: 2}}\n",
        "laneway.yaml:4:27: environments.production.replicas.wbe: no such service; "
        "did you mean 'web'? (services: web)",
        id="replicas names no service",
    ),
    pytest.param(
        "app: shop\nservices: {web: {command: run}}\nenvironments:\n"
        "  preview: {data: {db: {from: staging}}}\n",
        "laneway.yaml:4:20: environments.preview.data.db: no such resource "
        "(resources: none declared)",
        id="data names no resource",
    ),
    pytest.param(
        web("port: none", "health: /up"),
        "laneway.yaml:6:5: services.web.health: a health check needs a port, but port is none",
        id="health without port",
    ),
    pytest.param(
        web("env: {PORT: '80'}"),
        "laneway.yaml:5:11: services.web.env.PORT: laneway sets PORT itself; choose another name",
        id="PORT",
    ),
    pytest.param(
        "app: shop\nservices: {web: {command: run}}\nenv:\n  LANEWAY_MODE: x\n",
        "laneway.yaml:4:3: env.LANEWAY_MODE: names starting with LANEWAY_ are reserved for laneway",
        id="LANEWAY_ prefix",
    ),
    pytest.param(
        "app: shop\nservices: {web: {command: run}}\nresources:\n  db: {type: postgres}\n"
        "environments:\n  staging: {env: {DATABASE_URL: x}}\n",
        "laneway.yaml:6:19: environments.staging.env.DATABASE_URL: laneway sets DATABASE_URL to "
        "the address of resource db; remove it here or give the resource another `env`",
        id="resource variable",
    ),
    pytest.param(
        "app: shop\nservices: {web: {command: run}}\nresources:\n  db: {type: postgres}\n"
        "  files: {type: directory, env: DATABASE_URL}\n",
        "laneway.yaml:5:28: resources.files.env: DATABASE_URL is already the variable of "
        "resource db",
        id="two resources, one variable",
    ),
]

DUPLICATE = [
    pytest.param(
        "app: shop\napp: other\nservices: {web: {command: run}}\n",
        "laneway.yaml:2:1: app: duplicate key (first at line 1)",
        id="top level",
    ),
    pytest.param(
        "app: shop\nservices:\n  web: {command: run}\n  worker: {command: a}\n"
        "  web: {command: b}\n",
        "laneway.yaml:5:3: services.web: duplicate key (first at line 3)",
        id="service",
    ),
    pytest.param(
        "app: shop\nservices: {web: {command: run}}\nenv: {A: 1, A: 2}\n",
        "laneway.yaml:3:13: env.A: duplicate key (first at line 3)",
        id="flow",
    ),
]

YAML_SYNTAX = [
    pytest.param(
        "app: shop\nservices:\n  web: {command: a: b}\n",
        "laneway.yaml:3:19: invalid YAML: expected ',' or '}', but got ':'",
        id="colon in flow",
    ),
    pytest.param(
        "app: shop: x\n",
        "laneway.yaml:1:10: invalid YAML: unexpected ':'; check the indentation, or quote a "
        "value that contains ': '",
        id="colon",
    ),
    pytest.param(
        "app: shop\nservices:\n\tweb: {command: run}\n",
        "laneway.yaml:3:1: invalid YAML: tab character; indent with spaces",
        id="tab",
    ),
    pytest.param(
        "app: 'shop\nservices: {}\n",
        "laneway.yaml:3:1: invalid YAML: unexpected end of file; is a quote left open?",
        id="open quote",
    ),
    pytest.param(
        "app: shop\nservices:\n  web:\n    command: run\n  replicas: 2\n bad: 1\n",
        "laneway.yaml:6:2: invalid YAML: this line's indentation does not match the lines "
        "before it",
        id="indentation",
    ),
    pytest.param(
        "app: shop\n---\napp: other\n",
        "laneway.yaml:2:1: invalid YAML: only one YAML document is allowed; remove the '---'",
        id="two documents",
    ),
    pytest.param(
        "app: *name\n",
        "laneway.yaml:1:6: invalid YAML: alias (*name) with no anchor (&name) before it",
        id="undefined alias",
    ),
    pytest.param(
        "app: shop\nservices:\n  web: {command: \x07}\n",
        "laneway.yaml:3:18: invalid YAML: character '\\x07' is not allowed",
        id="control character",
    ),
]

DOCUMENT = [
    pytest.param(
        "",
        "laneway.yaml:1:1: the file is empty; a spec needs at least `app` and `services`",
        id="empty",
    ),
    pytest.param(
        "# nothing yet\n\n",
        "laneway.yaml:1:1: the file is empty; a spec needs at least `app` and `services`",
        id="comments only",
    ),
    pytest.param(
        "- app\n- services\n",
        "laneway.yaml:1:1: expected a mapping of settings (app, services, ...) at the top "
        "level, got a list",
        id="list",
    ),
    pytest.param(
        "\n  shop\n",
        "laneway.yaml:2:3: expected a mapping of settings (app, services, ...) at the top "
        "level, got 'shop'",
        id="scalar",
    ),
]

NODES = [
    pytest.param(
        "app: shop\nservices:\n  web: {command: !shell run}\n",
        "laneway.yaml:3:18: services.web.command: unsupported tag !shell",
        id="custom tag",
    ),
    pytest.param(
        "app: shop\nservices:\n  web: {command: !!binary aGk=}\n",
        "laneway.yaml:3:18: services.web.command: unsupported tag !!binary",
        id="binary",
    ),
    pytest.param(
        "app: shop\nservices: !!set {web}\n",
        "laneway.yaml:2:11: services: unsupported tag !!set",
        id="set",
    ),
    pytest.param(
        "app: shop\nservices:\n  web: {command: run, replicas: !!int x}\n",
        "laneway.yaml:3:33: services.web.replicas: not a valid !!int: 'x'",
        id="bad explicit int",
    ),
    pytest.param(
        "app: shop\nservices:\n  web: {command: run}\n  ? [a]\n  : {command: run}\n",
        "laneway.yaml:4:5: services: keys must be plain names, not lists or mappings",
        id="complex key",
    ),
    pytest.param(
        "app: shop\nservices:\n  web: {command: run}\n  api:\n    <<: 5\n    command: x\n",
        "laneway.yaml:5:9: services.api: `<<` needs a mapping or a list of mappings",
        id="bad merge",
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    WRONG_TYPE
    + MISSING
    + PATTERN
    + CHOICE
    + RANGE
    + UNKNOWN_KEY
    + CONFLICT
    + DUPLICATE
    + YAML_SYNTAX
    + DOCUMENT
    + NODES,
)
def test_one_problem(text: str, expected: str | list[str]) -> None:
    assert problems(text) == ([expected] if isinstance(expected, str) else expected)


def test_every_problem_is_reported_sorted_by_position() -> None:
    text = textwrap.dedent(
        """\
        app: Shop
        services:
          web:
            comand: run
            replicas: two
          Worker: {command: 1}
        resources:
          db: {type: postgress}
        environments:
          prod: {}
          preview: {ttl: 3 days}
        """
    )
    assert problems(text) == [
        "laneway.yaml:1:6: app: expected a lowercase DNS label like `web` (a-z, 0-9 and '-', "
        "starting with a letter, at most 40 characters), got 'Shop'",
        "laneway.yaml:3:3: services.web.command: missing required field",
        "laneway.yaml:4:5: services.web.comand: unknown key; did you mean 'command'? "
        "(allowed: command, env, health, port, replicas)",
        "laneway.yaml:5:15: services.web.replicas: expected an integer, got 'two'",
        "laneway.yaml:6:3: services.Worker: invalid name 'Worker'; expected a lowercase DNS "
        "label like `web` (a-z, 0-9 and '-', starting with a letter, at most 40 characters)",
        "laneway.yaml:6:21: services.Worker.command: expected a string, got 1",
        "laneway.yaml:8:14: resources.db.type: expected 'postgres', 'sqlite' or 'directory', "
        "got 'postgress'; did you mean 'postgres'?",
        "laneway.yaml:10:3: environments.prod: unknown environment kind; did you mean "
        "'production'? (allowed: development, preview, staging, production)",
        "laneway.yaml:11:18: environments.preview.ttl: expected a duration like `30m` or `72h` "
        "(a whole number and s, m, h or d), got '3 days'",
    ]


def test_cross_field_problems_are_all_reported() -> None:
    text = (
        "app: shop\nservices:\n  web: {command: run, env: {PORT: '1'}}\n"
        "environments:\n  production: {replicas: {wbe: 2, wrk: 1}}\n"
    )
    assert problems(text) == [
        "laneway.yaml:3:29: services.web.env.PORT: laneway sets PORT itself; choose another name",
        "laneway.yaml:5:27: environments.production.replicas.wbe: no such service; "
        "did you mean 'web'? (services: web)",
        "laneway.yaml:5:35: environments.production.replicas.wrk: no such service (services: web)",
    ]


def test_cross_field_problems_come_with_the_field_problems() -> None:
    text = (
        "app: Shop\nservices:\n  web: {command: run}\n"
        "resources:\n  db: {type: postgres}\n"
        "environments:\n  production: {replicas: {wbe: 2}}\n"
        "  preview: {data: {bd: {from: staging}}}\n"
    )
    assert problems(text) == [
        "laneway.yaml:1:6: app: expected a lowercase DNS label like `web` (a-z, 0-9 and '-', "
        "starting with a letter, at most 40 characters), got 'Shop'",
        "laneway.yaml:7:27: environments.production.replicas.wbe: no such service; "
        "did you mean 'web'? (services: web)",
        "laneway.yaml:8:20: environments.preview.data.bd: no such resource (resources: db)",
    ]


def test_a_cross_field_check_waits_for_its_fields() -> None:
    # `services` is invalid, so whether `wbe` names a service is not asked yet
    text = (
        "app: shop\nservices:\n  web: {command: 1}\n"
        "environments:\n  production: {replicas: {wbe: 2}}\n"
    )
    assert problems(text) == ["laneway.yaml:3:18: services.web.command: expected a string, got 1"]


def test_unknown_key_missing_the_space_after_the_colon() -> None:
    assert problems(web("health: {path:/healthz}")) == [
        "laneway.yaml:5:5: services.web.health.path: missing required field",
        "laneway.yaml:5:14: services.web.health.path:/healthz: unknown key; write a space after "
        "':' (`path: /healthz`) (allowed: grace, interval, path, timeout)",
    ]


def test_a_merged_value_is_reported_where_it_is_written() -> None:
    text = "app: shop\nservices:\n  web: &w {command: run, replicas: x}\n  api: {<<: *w}\n"
    assert problems(text) == [
        "laneway.yaml:3:36: services.api.replicas: expected an integer, got 'x'",
        "laneway.yaml:3:36: services.web.replicas: expected an integer, got 'x'",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "app: &a [*a]\nservices: {web: {command: run}}\n",
            "laneway.yaml:1:6: app[0]: an alias refers to a value that contains it",
        ),
        (
            "app: shop\nservices:\n  web: &w {command: run, <<: *w}\n",
            "laneway.yaml:3:8: services.web: an alias refers to a value that contains it",
        ),
    ],
)
def test_recursive_alias_is_a_problem_not_a_hang(text: str, expected: str) -> None:
    assert expected in problems(text)


def test_alias_bomb_is_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 7):
        below = f"*a{level - 1}"
        lines.append(f"a{level}: &a{level} [{', '.join([below] * 10)}]")
    assert problems("\n".join(lines) + "\n") == [
        "laneway.yaml:1:1: aliases expand to more than 100,000 values, over the limit"
    ]


def test_errors_carry_a_hint_and_the_given_filename() -> None:
    with pytest.raises(SpecError) as raised:
        load_spec_text("app: shop\n", filename="apps/shop/laneway.yaml")
    assert raised.value.problems == ["apps/shop/laneway.yaml:1:1: services: missing required field"]
    assert raised.value.hint
    assert str(raised.value) == raised.value.problems[0]


def test_no_traceback_escapes_on_mangled_input() -> None:
    generator = random.Random(20240601)
    alphabet = list(":-[]{}&*!|>'\"#%@`,? \n\t\\x") + ["<<", "!!int", "\x00", "\ufeff"]
    for _ in range(400):
        chars = list(FULL)
        for _ in range(generator.randint(1, 6)):
            at = generator.randrange(len(chars))
            if generator.random() < 0.5:
                del chars[at]
            else:
                chars.insert(at, generator.choice(alphabet))
        try:
            assert isinstance(load_spec_text("".join(chars)), Spec)
        except SpecError as error:
            assert error.problems
            assert all(problem.startswith("laneway.yaml:") for problem in error.problems)
            assert not any("Input should" in problem for problem in error.problems)


def test_the_complete_example_in_the_docs_loads() -> None:
    docs = (Path(__file__).parents[3] / "docs" / "spec.md").read_text()
    section = docs.split("## A complete example", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    spec = load_spec_text(example, filename="docs/spec.md")
    assert spec.resource_env_names() == {"db": "DATABASE_URL", "uploads": "UPLOADS_DIR"}


# --- load_spec -----------------------------------------------------------------------------


def test_load_spec_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "laneway.yaml"
    path.write_text(SKETCH)
    assert load_spec(path).app == "shop"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(None, "{path}: cannot read: No such file or directory", id="missing"),
        pytest.param(b"app: shop\nservices: \xff\n", "{path}:2:11: not UTF-8 text", id="bytes"),
        pytest.param(b"app: shop\n", "{path}:1:1: services: missing required field", id="spec"),
    ],
)
def test_load_spec_problems(tmp_path: Path, content: bytes | None, expected: str) -> None:
    path = tmp_path / "laneway.yaml"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SpecError) as raised:
        load_spec(path)
    assert raised.value.problems == [expected.format(path=path)]
