"""spec/loader.py: one bad field value each, reported at its exact position with its path.

Each case is a spec with one problem and the one message expected, `file:line:col: field:
what`: a value of the wrong type (with a hint for an empty env value), a required field
missing, a name, path or duration that does not match its pattern, a choice that is not one
of the allowed (with the nearest as a suggestion), a number out of its range, and explicit
tags, complex keys and merges that cannot be read.
"""

from __future__ import annotations

import pytest
from tests.unit.spec.loader_support import problems, web

# --- one problem each: exact position, path and words --------------------------------------

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


@pytest.mark.parametrize(
    ("text", "expected"),
    WRONG_TYPE + MISSING + PATTERN + CHOICE + RANGE,
)
def test_one_problem(text: str, expected: str | list[str]) -> None:
    assert problems(text) == ([expected] if isinstance(expected, str) else expected)
