"""Pydantic's validation errors on a spec, rewritten in plain words and placed on a YAML node.

`spec.loader` validates the data it made from laneway.yaml against `Spec` and passes each
pydantic error to `explain`, with the nodes it recorded for every value and key; `explain`
yields (node, location, message) for the loader to report, e.g.

    services.web.replicas: expected an integer, got 'two'

(the loader adds file, line and column). `is_env_value` is shared with the loader, which
keeps `env` values as they were typed. Pure: no I/O, and nothing here reads YAML.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails
from yaml.nodes import Node

from laneway.spec import canary, model
from laneway.spec.metrics import METRIC_NAME
from laneway.spec.model import Spec

Loc = tuple[str | int, ...]
Problem = tuple[Node | None, Loc, str]
"""Where to report (the node, None for the top of the file), the field's location, what."""

_ENV_MAPS = (("env",), ("services", None, "env"), ("environments", None, "env"))

# What each pattern in the model means, in words.
_PATTERNS = {
    model.DNS_LABEL: "a lowercase DNS label like `web` (a-z, 0-9 and '-', starting with a "
    "letter, at most 40 characters)",
    model.ENV_KEY: "a variable name like `LOG_LEVEL` (letters, digits and '_', not starting "
    "with a digit)",
    model.DURATION: "a duration like `30m` or `72h` (a whole number and s, m, h or d)",
    "^/": "a path starting with '/', like `/healthz`",
    canary.INTERVAL: "a duration like `30s`, `2m` or `1h` (at least 1s)",
    canary.LATENCY: "a time like `500ms` or `2s`",
    canary.WARMUP: "a duration like `0s`, `30s` or `2m`",
    canary.URL: "an http:// or https:// URL",
    METRIC_NAME: "a name like `checkout-errors` (a-z, 0-9, '_' and '-', starting with a "
    "letter, at most 40 characters)",
}


def explain(
    error: ErrorDetails, values: Mapping[Loc, Node], keys: Mapping[Loc, Node]
) -> Iterator[Problem]:
    """The problems one pydantic error stands for (more than one for a `model.CONFLICT`).

    `values` and `keys` map each location to the YAML node of its value and of its key.
    """
    kind = error["type"]
    loc: Loc = tuple(error["loc"])
    ctx: dict[str, Any] = dict(error.get("ctx") or {})

    if kind == model.CONFLICT:
        for where, message in ctx["problems"]:
            where = tuple(where)
            node = keys.get(where) or _nearest_node(values, where)[1]
            yield node, where, message
        return

    if loc and loc[-1] == "[key]":
        yield _explain_key(keys, loc[:-1], error)
        return

    if kind == "missing":
        parent = loc[:-1]
        node = keys.get(parent) or values.get(parent)
        yield node, loc, "missing required field"
        return

    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        key = str(loc[-1])
        name, colon, value = key.partition(":")
        if colon and name in allowed:  # `{path:/x}` is one key in YAML's eyes
            message = f"unknown key; write a space after ':' (`{name}: {value}`)"
        else:
            message = "unknown key" + model.did_you_mean(key, allowed)
        if allowed:
            message += f" (allowed: {', '.join(allowed)})"
        yield keys.get(loc), loc, message
        return

    shown, node = _nearest_node(values, loc)
    yield node, shown, _plain(kind, error, ctx, shown)


def is_env_value(loc: Loc) -> bool:
    """Whether `loc` is a value in one of the spec's `env` mappings."""
    parent = loc[:-1]
    return any(
        len(parent) == len(pattern)
        and all(want is None or want == got for want, got in zip(pattern, parent, strict=True))
        for pattern in _ENV_MAPS
    )


def _explain_key(keys: Mapping[Loc, Node], loc: Loc, error: ErrorDetails) -> Problem:
    node = keys.get(loc)
    key = str(loc[-1])
    if error["type"] == "literal_error":  # environments: the keys are the kinds
        allowed = list(model.KINDS)
        message = "unknown environment kind" + model.did_you_mean(key, allowed)
        return node, loc, f"{message} (allowed: {', '.join(allowed)})"
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    if error["type"] == "string_pattern_mismatch":
        meaning = _PATTERNS.get(ctx.get("pattern", ""), f"a name matching {ctx.get('pattern')}")
        return node, loc, f"invalid name {key!r}; expected {meaning}"
    return node, loc, f"invalid name {key!r}: {error['msg']}"


def _plain(kind: str, error: ErrorDetails, ctx: dict[str, Any], loc: Loc) -> str:
    got = _describe(error["input"])
    if loc and loc[-1] == "health" and kind in ("model_type", "model_attributes_type"):
        return f"expected a path like `/healthz` or a mapping with `path`, got {got}"
    if kind == "string_type" and error["input"] is None and is_env_value(loc):
        return "expected a string, got null (write '' for an empty value)"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {got}"
    if kind == "string_pattern_mismatch":
        pattern = ctx.get("pattern", "")
        return f"expected {_PATTERNS.get(pattern, f'text matching {pattern}')}, got {got}"
    if kind == "literal_error":
        message = f"expected {ctx.get('expected')}, got {got}"
        if isinstance(error["input"], str):
            options = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
            message += model.did_you_mean(error["input"], options)
        return message
    if kind in ("string_too_short", "too_short"):
        return "must not be empty"
    if kind == "too_long":
        return f"at most {ctx.get('max_length')} entries, got {ctx.get('actual_length')}"
    if kind in _BOUNDS:
        word, key = _BOUNDS[kind]
        return f"expected {word} {_describe(ctx.get(key))}, got {got}"
    message = str(error["msg"])
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
}
_BOUNDS = {
    "greater_than": ("a number greater than", "gt"),
    "greater_than_equal": ("at least", "ge"),
    "less_than": ("less than", "lt"),
    "less_than_equal": ("at most", "le"),
}


def _nearest_node(values: Mapping[Loc, Node], loc: Loc) -> tuple[Loc, Node | None]:
    """The deepest node on `loc`'s path (a shorthand like `health: /x` has no `path` node)."""
    for end in range(len(loc), -1, -1):
        node = values.get(loc[:end])
        if node is not None:
            return loc[:end], node
    return (), None


def _allowed_keys(loc: Loc) -> list[str]:
    """The field names (aliases where set) of the model that validates the mapping at `loc`."""
    annotation: Any = Spec
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields = {f.alias or name: f for name, f in annotation.model_fields.items()}
            if part not in fields:
                return []
            annotation = fields[part].annotation
        elif typing.get_origin(annotation) is dict:
            annotation = typing.get_args(annotation)[1]
        elif typing.get_origin(annotation) is list:
            annotation = typing.get_args(annotation)[0]
        else:
            return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return sorted(f.alias or name for name, f in annotation.model_fields.items())
    return []


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
