"""spec/schema.py: the published JSON Schema accepts and rejects what the model does."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from laneway.spec.model import Spec
from laneway.spec.schema import DIALECT, json_schema

SKETCH = (Path(__file__).parent / "design_sketch.yaml").read_text()  # DESIGN.md's sketch

MINIMAL: dict[str, Any] = {"app": "shop", "services": {"web": {"command": "run"}}}


def with_(path: str, value: object, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """A copy of `base` (MINIMAL) with `value` at the dotted `path`; `...` deletes it."""
    document = copy.deepcopy(MINIMAL if base is None else base)
    *parents, last = path.split(".")
    node = document
    for part in parents:
        node = node.setdefault(part, {})
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return document


ACCEPTED = [
    pytest.param(MINIMAL, id="minimal"),
    pytest.param(yaml.safe_load(SKETCH), id="design sketch"),
    pytest.param(with_("services.web.health", "/healthz"), id="health shorthand"),
    pytest.param(
        with_("services.web.health", {"path": "/", "timeout": 1, "grace": 90.5}),
        id="health mapping",
    ),
    pytest.param(with_("env", {"A": 1, "B": True, "C": 1.5, "D": "x"}), id="env scalars"),
    pytest.param(with_("services.web.port", "none"), id="port none"),
    pytest.param(with_("services.web.replicas", 0), id="zero replicas"),
    pytest.param(with_("resources", {"files": {"type": "directory", "env": "FILES"}}), id="res"),
    pytest.param(with_("pipeline", ["staging", "canary", "production"]), id="pipeline"),
    pytest.param(with_("build", {"command": None}), id="null build command"),
    pytest.param(with_("environments", {"development": {}}), id="empty overrides"),
]

REJECTED = [
    pytest.param(with_("app", ...), id="no app"),
    pytest.param(with_("services", ...), id="no services"),
    pytest.param(with_("services", {}), id="empty services"),
    pytest.param(with_("services", {"Web": {"command": "run"}}), id="service name"),
    pytest.param(with_("services.web.comand", "x"), id="unknown key"),
    pytest.param(with_("extra", 1), id="unknown top-level key"),
    pytest.param(with_("app", "Shop"), id="app pattern"),
    pytest.param(with_("services.web.port", 8080), id="port number"),
    pytest.param(with_("services.web.replicas", "two"), id="replicas text"),
    pytest.param(with_("services.web.replicas", True), id="replicas bool"),
    pytest.param(with_("services.web.replicas", 65), id="replicas range"),
    pytest.param(with_("services.web.health", "healthz"), id="health shorthand pattern"),
    pytest.param(with_("services.web.health", {"timeout": 1}), id="health no path"),
    pytest.param(with_("services.web.health", {"path": "/", "timeout": 0}), id="timeout 0"),
    pytest.param(with_("services.web.health", 5), id="health number"),
    pytest.param(with_("env", {"A": None}), id="env null"),
    pytest.param(with_("env", {"A": ["x"]}), id="env list"),
    pytest.param(with_("env", {"1BAD": "x"}), id="env key"),
    pytest.param(with_("environments", {"prod": {}}), id="kind"),
    pytest.param(with_("environments", {"preview": {"ttl": "3 days"}}), id="duration"),
    pytest.param(with_("environments", {"staging": {"protected": "yes"}}), id="bool"),
    pytest.param(with_("resources", {"db": {"type": "redis"}}), id="resource type"),
    pytest.param(
        with_("environments", {"preview": {"data": {"db": {"mask": []}}}}), id="data no from"
    ),
    pytest.param(with_("build", {"command": ""}), id="empty build command"),
    pytest.param(with_("pipeline", ["Prod"]), id="pipeline item"),
]

# Checks that span fields are the loader's alone (docs/spec.md says so).
MODEL_ONLY = [
    pytest.param(
        with_("environments", {"production": {"replicas": {"wbe": 2}}}), id="replicas service"
    ),
    pytest.param(with_("services.web.env", {"PORT": "80"}), id="reserved variable"),
    pytest.param(
        with_("services.web", {"command": "run", "port": "none", "health": "/"}),
        id="health without port",
    ),
]


def model_accepts(document: dict[str, Any]) -> bool:
    try:
        Spec.model_validate(document)
    except ValidationError:
        return False
    return True


def schema_accepts(document: dict[str, Any]) -> bool:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(json_schema())
    return validator.is_valid(document)


@pytest.mark.parametrize("document", ACCEPTED)
def test_both_accept(document: dict[str, Any]) -> None:
    assert model_accepts(document)
    assert schema_accepts(document)


@pytest.mark.parametrize("document", REJECTED)
def test_both_reject(document: dict[str, Any]) -> None:
    assert not model_accepts(document)
    assert not schema_accepts(document)


@pytest.mark.parametrize("document", MODEL_ONLY)
def test_cross_field_checks_are_the_models_alone(document: dict[str, Any]) -> None:
    assert not model_accepts(document)
    assert schema_accepts(document)


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(json_schema())


def test_header() -> None:
    schema = json_schema()
    assert list(schema)[:3] == ["$schema", "title", "description"]
    assert schema["$schema"] == DIALECT == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "laneway.yaml"
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["app", "services"]


def test_every_field_is_described() -> None:
    schema = json_schema()
    models = {"Spec": schema, **schema["$defs"]}
    for name, definition in models.items():
        assert definition.get("description"), name
        for field, body in definition["properties"].items():
            assert body.get("description"), f"{name}.{field}"


def test_shorthands_are_in_the_schema() -> None:
    defs = json_schema()["$defs"]
    health = defs["Service"]["properties"]["health"]["anyOf"]
    assert {"type": "string", "pattern": "^/", "description": "Short for {path: ...}."} in health
    env = defs["Service"]["properties"]["env"]
    assert env["additionalProperties"] == {"type": ["string", "number", "boolean"]}
    assert env["propertyNames"] == {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}


def test_names_are_property_names_not_pattern_properties() -> None:
    text = json.dumps(json_schema())
    assert "patternProperties" not in text
    services = json_schema()["properties"]["services"]
    assert services["propertyNames"]["pattern"].startswith("^[a-z]")
    assert services["additionalProperties"] == {"$ref": "#/$defs/Service"}
    assert services["minProperties"] == 1


def test_each_call_returns_a_fresh_dict() -> None:
    first = json_schema()
    first["title"] = "changed"
    assert json_schema()["title"] == "laneway.yaml"


def test_schema_is_json() -> None:
    assert json.loads(json.dumps(json_schema())) == json_schema()
