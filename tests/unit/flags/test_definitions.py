from __future__ import annotations

import copy
import json

import pytest
from openfeature.contrib.tools.flagd.core import FlagdCore
from openfeature.contrib.tools.flagd.core.model.flag_store import FlagStore
from openfeature.exception import ParseError

import laneway.flags
from laneway import errors
from laneway.flags import (
    FlagDefinitionError,
    State,
    VariantType,
    definitions,
    export_flag_set,
    parse_flag_set,
)

BOOLEAN = {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off"}

FULL = {
    "$schema": "https://flagd.dev/schema/v0/flags.json",
    "metadata": {"flagSetId": "shop/staging", "version": "7", "public": True, "weight": 1.5},
    "$evaluators": {
        "staff": {"ends_with": [{"var": "email"}, "@example.com"]},
        "modern": {"sem_ver": [{"var": "appVersion"}, ">=", "2.1.0"]},
    },
    "flags": {
        "new-checkout": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
            "targeting": {
                "if": [{"$ref": "staff"}, "on", {"fractional": [["on", 10], ["off", 90]]}]
            },
            "metadata": {"owner": "payments", "version": "8"},
        },
        "header-color": {
            "state": "ENABLED",
            "variants": {"red": "#FF0000", "blue": "#0000FF", "green": "#00FF00"},
            "defaultVariant": "red",
            "targeting": {
                "fractional": [
                    {"cat": [{"var": "$flagd.flagKey"}, {"var": "email"}]},
                    ["red", 25],
                    ["blue", 25],
                    ["green", 50],
                ]
            },
        },
        "max-items": {
            "state": "ENABLED",
            "variants": {"few": 3, "many": 12.5},
            "defaultVariant": "few",
        },
        "theme": {
            "state": "ENABLED",
            "variants": {"light": {"bg": "#fff", "fonts": ["a", "b"]}, "dark": {"bg": "#000"}},
            "defaultVariant": "light",
            "targeting": {"if": [{"$ref": "modern"}, "dark", None]},
        },
        "kill-switch": {
            "state": "DISABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "on",
        },
        "code-default": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": None,
        },
        "no-default": {"state": "ENABLED", "variants": {"on": True, "off": False}},
        "empty-default": {"state": "ENABLED", "variants": {"a": "x"}, "defaultVariant": ""},
        "empty-rule": {**BOOLEAN, "targeting": {}},
        "synced": {**BOOLEAN, "source": "laneway", "selector": "shop"},
    },
}


def flags_doc(**flags: object) -> dict:
    return {"flags": flags}


def test_full_document_parses_into_laneways_form():
    flag_set = parse_flag_set(FULL)
    assert list(flag_set.flags) == list(FULL["flags"])
    assert dict(flag_set.metadata) == FULL["metadata"]
    checkout = flag_set.flags["new-checkout"]
    assert checkout.state is State.ENABLED and checkout.variant_type is VariantType.BOOLEAN
    assert checkout.default_variant == "off"
    # $evaluators are expanded, the way the reference parser expands them
    assert checkout.targeting == {
        "if": [
            {"ends_with": [{"var": "email"}, "@example.com"]},
            "on",
            {"fractional": [["on", 10], ["off", 90]]},
        ]
    }
    # flag metadata overlays the set's
    assert dict(checkout.metadata) == {**FULL["metadata"], "owner": "payments", "version": "8"}
    assert flag_set.flags["max-items"].variant_type is VariantType.NUMBER
    assert flag_set.flags["theme"].variant_type is VariantType.OBJECT
    assert flag_set.flags["header-color"].variant_type is VariantType.STRING
    assert flag_set.flags["kill-switch"].state is State.DISABLED
    for key in ("code-default", "no-default", "empty-default"):
        assert flag_set.flags[key].default_variant is None
    assert flag_set.flags["empty-rule"].targeting is None
    assert not flag_set.uses_timestamp


@pytest.mark.parametrize(
    "document",
    [
        FULL,
        flags_doc(),
        flags_doc(a=BOOLEAN),
        {"flags": {"x": {**BOOLEAN, "targeting": None, "metadata": None}}, "metadata": {}},
        {
            "flags": {
                "ünïcode-ключ": {"state": "ENABLED", "variants": {"é": "ü"}, "defaultVariant": "é"}
            }
        },
    ],
)
def test_round_trip_is_unchanged(document):
    given = copy.deepcopy(document)
    flag_set = parse_flag_set(document)
    assert document == given, "parsing must not touch its input"
    exported = export_flag_set(flag_set)
    assert exported == document
    assert json.dumps(exported) == json.dumps(document)  # same key order too
    again = parse_flag_set(exported)
    assert export_flag_set(again) == document and again.digest == flag_set.digest
    exported["flags"]["mutated"] = BOOLEAN
    assert "mutated" not in export_flag_set(flag_set)


def test_digest_is_the_canonical_json_of_the_document():
    reordered = json.loads(json.dumps(FULL, sort_keys=True))
    assert parse_flag_set(reordered).digest == parse_flag_set(FULL).digest
    changed = copy.deepcopy(FULL)
    changed["flags"]["max-items"]["defaultVariant"] = "many"
    assert parse_flag_set(changed).digest != parse_flag_set(FULL).digest


def test_timestamp_rules_are_noticed():
    doc = flags_doc(
        x={**BOOLEAN, "targeting": {"if": [{">": [{"var": "$flagd.timestamp"}, 100]}, "on", "off"]}}
    )
    assert parse_flag_set(doc).uses_timestamp


def test_accepted_documents_are_accepted_by_the_reference_parser():
    FlagdCore().set_flags(copy.deepcopy(FULL))  # raises if it refuses


@pytest.mark.parametrize(
    ("document", "problems"),
    [
        (
            flags_doc(**{"new-checkout": {**BOOLEAN, "defaultVariant": "blue"}}),
            ["flags.new-checkout.defaultVariant: 'blue' is not one of the variants (on, off)"],
        ),
        (
            flags_doc(
                x={
                    "state": "ENABLED",
                    "variants": {"on": True, "off": "false"},
                    "defaultVariant": "on",
                }
            ),
            [
                "flags.x.variants: mixed variant types (on: boolean, off: string); all variants of a flag have one type"
            ],
        ),
        (
            flags_doc(
                x={"state": "DISABLED", "variants": {"a": 1, "b": "2"}, "defaultVariant": "c"}
            ),
            [
                "flags.x.variants: mixed variant types (a: number, b: string); all variants of a flag have one type",
                "flags.x.defaultVariant: 'c' is not one of the variants (a, b)",
            ],
        ),
        (
            flags_doc(x={"variants": {"on": True}}),
            ["flags.x.state: required (ENABLED or DISABLED)"],
        ),
        (
            flags_doc(x={**BOOLEAN, "state": "ON"}),
            ["flags.x.state: 'ON' is not ENABLED or DISABLED"],
        ),
        (
            flags_doc(x={"state": "ENABLED"}),
            ["flags.x.variants: required (an object of variant name to value)"],
        ),
        (
            flags_doc(x={"state": "ENABLED", "variants": {}}),
            ["flags.x.variants: a flag needs at least one variant"],
        ),
        (
            flags_doc(x={"state": "ENABLED", "variants": ["on", "off"]}),
            ["flags.x.variants: expected an object of variant name to value, got an array"],
        ),
        (
            flags_doc(x={"state": "ENABLED", "variants": {"a": None}}),
            ["flags.x.variants.a: null is not a variant value"],
        ),
        (
            flags_doc(x={"state": "ENABLED", "variants": {"a": [1, 2]}}),
            ["flags.x.variants.a: an array is not a variant value (object flags have objects)"],
        ),
        (
            flags_doc(x={"state": "ENABLED", "variants": {"": 1}}),
            ["flags.x.variants: a variant name must not be empty"],
        ),
        (
            flags_doc(x={**BOOLEAN, "defaultVariant": True}),
            ["flags.x.defaultVariant: expected a variant name or null, got true"],
        ),
        (
            flags_doc(x={**BOOLEAN, "description": "hi"}),
            [
                "flags.x.description: unknown field; a flag has state, variants, defaultVariant, targeting, metadata"
            ],
        ),
        (
            flags_doc(x="on"),
            ["flags.x: expected a flag (an object with state, variants, ...), got a string"],
        ),
        (flags_doc(**{"": BOOLEAN}), ['flags."": a flag key must not be empty']),
        (
            flags_doc(x={**BOOLEAN, "targeting": ["on"]}),
            ["flags.x.targeting: expected a JsonLogic rule (an object), got an array"],
        ),
        (
            flags_doc(x={**BOOLEAN, "metadata": {"owner": None, "n": [1]}}),
            [
                "flags.x.metadata.owner: expected a string, number or boolean, got null",
                "flags.x.metadata.n: expected a string, number or boolean, got an array",
            ],
        ),
        (
            flags_doc(x={**BOOLEAN, "metadata": "team"}),
            [
                "flags.x.metadata: expected an object of string, number or boolean values, got a string"
            ],
        ),
        (
            {"flags": [{"key": "x", **BOOLEAN}]},
            ["flags: expected an object of flag key to flag, got an array"],
        ),
        ({}, ["flags: required (an object of flag key to flag)"]),
        (
            {"flags": {}, "metadata": {"version": None}},
            ["metadata.version: expected a string, number or boolean, got null"],
        ),
        (
            {"flags": {}, "metadata": None},
            ["metadata: expected an object of string, number or boolean values, got null"],
        ),
        (
            {"flags": {}, "$evaluators": []},
            ["$evaluators: expected an object of named rules, got an array"],
        ),
        (
            {"flags": {}, "$evaluators": {"r": "x"}},
            ["$evaluators.r: expected a JsonLogic rule (an object), got a string"],
        ),
        (
            {"flags": {}, "$evaluators": {"r": {"==": [{"var": "city"}, "Zürich"]}}},
            [
                "$evaluators.r: flagd's Python parser cannot paste in a shared rule with a backslash, "
                "a control or a non-ASCII character; write it into the flags' targeting"
            ],
        ),
        ([BOOLEAN], ["document: expected a JSON object, got an array"]),
        (
            {"flags": {"x": {**BOOLEAN, "metadata": {"n": float("nan")}}}},
            ["document: not JSON: Out of range float values are not JSON compliant"],
        ),
    ],
)
def test_invalid_definitions_name_the_flag_and_the_field(document, problems):
    given = copy.deepcopy(document)
    with pytest.raises(FlagDefinitionError) as caught:
        parse_flag_set(document)
    assert caught.value.problems == problems
    assert str(caught.value) == "\n".join(problems)
    assert isinstance(caught.value, errors.InvalidInput) and caught.value.status_code == 400
    if isinstance(document, dict) and "nan" not in repr(document):
        assert document == given


@pytest.mark.parametrize(
    ("document", "warnings"),
    [
        (
            flags_doc(x={**BOOLEAN, "targeting": {"if": [{"$ref": "staff"}, "on", None]}}),
            [
                "flags.x.targeting: $ref 'staff' names no rule in $evaluators (flagd answers PARSE_ERROR)"
            ],
        ),
        (
            flags_doc(x={**BOOLEAN, "targeting": {"iff": [True, "on", "off"]}}),
            ["flags.x.targeting: unknown operation 'iff' (flagd answers PARSE_ERROR)"],
        ),
        (
            flags_doc(
                x={
                    **BOOLEAN,
                    "targeting": {"if": [{"==": [{"var": "$flagd.key"}, "x"]}, "on", None]},
                }
            ),
            [
                "flags.x.targeting: '$flagd.key' is not a flagd property ($flagd.flagKey, $flagd.timestamp; flagd reads it as null)"
            ],
        ),
        (
            flags_doc(x={**BOOLEAN, "targeting": {"fractional": [["on", 50.5], ["off", 49.5]]}}),
            [
                'flags.x.targeting: fractional weight of "on" must be an integer, got 50.5 (flagd evaluates it to null)',
                'flags.x.targeting: fractional weight of "off" must be an integer, got 49.5 (flagd evaluates it to null)',
            ],
        ),
        (
            flags_doc(x={**BOOLEAN, "targeting": {"fractional": [{"var": "email"}]}}),
            [
                "flags.x.targeting: fractional needs at least one [variant, weight] bucket (flagd evaluates it to null)"
            ],
        ),
        (
            flags_doc(x={**BOOLEAN, "targeting": {"fractional": [["on", 1, 2]]}}),
            [
                'flags.x.targeting: a fractional bucket is [variant] or [variant, weight], got ["on", 1, 2] (flagd evaluates it to null)'
            ],
        ),
        (
            flags_doc(
                x={
                    **BOOLEAN,
                    "targeting": {"if": [{"sem_ver": [{"var": "v"}, "=>", "1.0.0"]}, "on", None]},
                }
            ),
            [
                "flags.x.targeting: sem_ver operator '=>' is not one of != < <= = > >= ^ ~ (flagd evaluates it to null)"
            ],
        ),
        (
            flags_doc(
                x={
                    **BOOLEAN,
                    "targeting": {"if": [{"sem_ver": [{"var": "v"}, "1.0.0"]}, "on", None]},
                }
            ),
            [
                "flags.x.targeting: sem_ver takes 3 arguments (version, operator, version), got 2 (flagd evaluates it to null)"
            ],
        ),
        (
            flags_doc(
                x={
                    **BOOLEAN,
                    "targeting": {"if": [{"starts_with": [{"var": "email"}]}, "on", None]},
                }
            ),
            [
                "flags.x.targeting: starts_with takes 2 arguments, got 1 (flagd evaluates it to null)"
            ],
        ),
    ],
)
def test_targeting_flagd_answers_with_an_error_or_null_is_a_warning_or_with_strict_refused(
    document, warnings
):
    flag_set = parse_flag_set(document)
    assert [(w.key, w.message) for w in flag_set.warnings] == [("x", w) for w in warnings]
    assert "x" in flag_set.flags
    with pytest.raises(FlagDefinitionError) as caught:
        parse_flag_set(document, strict=True)
    assert caught.value.problems == warnings


def test_every_bad_flag_is_reported_at_once():
    doc = flags_doc(
        good=BOOLEAN,
        a={**BOOLEAN, "defaultVariant": "maybe"},
        b={**BOOLEAN, "state": "on"},
    )
    with pytest.raises(FlagDefinitionError) as caught:
        parse_flag_set(doc)
    assert [p.split(":")[0] for p in caught.value.problems] == [
        "flags.a.defaultVariant",
        "flags.b.state",
    ]


def test_the_reference_parser_has_the_last_word(monkeypatch):
    class Refusing(FlagStore):
        def update(self, flags_data):
            raise ParseError("Incorrect 'variants' value provided in flag config")

    monkeypatch.setattr(definitions, "FlagStore", Refusing)
    with pytest.raises(FlagDefinitionError) as caught:
        parse_flag_set(flags_doc(x=BOOLEAN))
    assert caught.value.problems == [
        "flags.x: refused by the flagd parser: Incorrect 'variants' value provided in flag config"
    ]


def test_the_whole_document_goes_through_the_reference_parser(monkeypatch):
    class RefusingWhole(FlagStore):
        def update(self, flags_data):
            if len(flags_data["flags"]) > 1:
                raise ParseError("`metadata` key of configuration must be a dictionary")
            return super().update(flags_data)

    monkeypatch.setattr(definitions, "FlagStore", RefusingWhole)
    with pytest.raises(FlagDefinitionError) as caught:
        parse_flag_set(flags_doc(x=BOOLEAN, y=BOOLEAN))
    assert caught.value.problems == [
        "document: refused by the flagd parser: `metadata` key of configuration must be a dictionary"
    ]


def test_variant_values_are_not_shared_with_the_document():
    flag_set = parse_flag_set(FULL)
    value = flag_set.flags["theme"].variants["light"]
    value["bg"] = "#f0f"
    assert export_flag_set(flag_set) == FULL


def test_sync_fields_are_kept_and_ignored():
    doc = flags_doc(x={**BOOLEAN, "source": "laneway", "selector": "shop"})
    flag_set = parse_flag_set(doc)
    assert export_flag_set(flag_set) == doc
    assert flag_set.flags["x"].default_variant == "off"


def test_exports_are_sorted_and_public():
    exported = laneway.flags.__all__
    assert exported == sorted(exported)
    assert all(hasattr(laneway.flags, name) for name in exported)
