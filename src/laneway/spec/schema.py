"""The JSON Schema of laneway.yaml, printed by `laneway spec schema`. Pure: no I/O.

Editors (the YAML language server, for one) check `laneway.yaml` against it as it is
typed. It is generated from `spec.model.Spec`, so the two cannot drift, with two repairs
to what pydantic emits: a name-constrained mapping (`services`, `env`) becomes
`propertyNames` plus `additionalProperties`, so a name that breaks the pattern is rejected
as the model rejects it, and the document carries `$schema`, `title` and `description`.

The schema checks each value on its own. What spans fields (a replica override naming a
missing service, a variable laneway sets itself) only the loader checks.
"""

from __future__ import annotations

from typing import Any

from laneway.spec.model import Spec

DIALECT = "https://json-schema.org/draft/2020-12/schema"
TITLE = "laneway.yaml"
DESCRIPTION = (
    "The laneway spec: one app, its services, resources and per-kind environment "
    "settings. Reference: docs/spec.md."
)


def json_schema() -> dict[str, Any]:
    """The spec's JSON Schema (draft 2020-12); a new dict on every call."""
    generated = _names_as_property_names(Spec.model_json_schema(mode="validation"))
    generated.pop("title", None)
    generated.pop("description", None)
    return {"$schema": DIALECT, "title": TITLE, "description": DESCRIPTION, **generated}


def _names_as_property_names(node: Any) -> Any:
    """Rewrite `patternProperties: {P: S}` (pydantic's form for `dict[Pattern, S]`).

    With patternProperties alone a key that misses P is unconstrained, so `services: {Web: 1}`
    would pass; `propertyNames` rejects it, as the model does.
    """
    if isinstance(node, list):
        return [_names_as_property_names(item) for item in node]
    if not isinstance(node, dict):
        return node
    result = {key: _names_as_property_names(value) for key, value in node.items()}
    patterns = result.get("patternProperties")
    if (
        isinstance(patterns, dict)
        and len(patterns) == 1
        and "additionalProperties" not in result
        and "propertyNames" not in result
    ):
        ((pattern, value_schema),) = patterns.items()
        del result["patternProperties"]
        result["propertyNames"] = {"pattern": pattern}
        result["additionalProperties"] = value_schema
    return result
