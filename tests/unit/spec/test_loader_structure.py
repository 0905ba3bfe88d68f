"""spec/loader.py: one structural problem each, reported at its exact position.

Each case is a spec with one problem and the message (or messages) expected: an unknown key
(with a suggestion and the allowed keys), fields that conflict with each other (a replica
count for no service, PORT set by hand, two resources on one variable), a duplicate key,
YAML that does not parse (tabs, open quotes, bad indentation, two documents), a document
that is not a mapping, and nodes laneway does not take (custom tags, binary, sets).
"""

from __future__ import annotations

import pytest
from tests.unit.spec.loader_support import problems, web

# --- one problem each: unknown keys, conflicts, YAML and documents -------------------------

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
    UNKNOWN_KEY + CONFLICT + DUPLICATE + YAML_SYNTAX + DOCUMENT + NODES,
)
def test_one_problem(text: str, expected: str | list[str]) -> None:
    assert problems(text) == ([expected] if isinstance(expected, str) else expected)
