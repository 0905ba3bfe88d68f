"""flagd-testbed's flag files (flagd_testbed/, Apache-2.0 test data, see its README): laneway
takes them as flagd does, listing the targeting flagd answers with an error or null as warnings,
and answers every flag as flagd's reference evaluator does (issue 10, item 12)."""

from __future__ import annotations

import copy
import importlib
import json
import types
from pathlib import Path
from typing import Any

import pytest
from openfeature.contrib.tools.flagd.core import FlagdCore
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import OpenFeatureError

from laneway.flags import FlagDefinitionError, evaluate, parse_flag_set

HERE = Path(__file__).parent / "flagd_testbed"
NOW = 1_780_000_000.0
NULL = "(flagd evaluates it to null)"
PARSE_ERROR = "(flagd answers PARSE_ERROR)"

TESTKIT_WARNINGS = [
    (
        "semver-invalid-operator-flag",
        "flags.semver-invalid-operator-flag.targeting: sem_ver operator '===' is not one of "
        f"!= < <= = > >= ^ ~ {NULL}",
    ),
    (
        "ref-to-nonexistent-evaluator-flag",
        "flags.ref-to-nonexistent-evaluator-flag.targeting: $ref 'nonexistent_evaluator' names "
        f"no rule in $evaluators {PARSE_ERROR}",
    ),
    (
        "starts-with-wrong-args-flag",
        f"flags.starts-with-wrong-args-flag.targeting: starts_with takes 2 arguments, got 1 {NULL}",
    ),
    (
        "ends-with-wrong-args-flag",
        f"flags.ends-with-wrong-args-flag.targeting: ends_with takes 2 arguments, got 1 {NULL}",
    ),
    (
        "semver-wrong-args-flag",
        "flags.semver-wrong-args-flag.targeting: sem_ver takes 3 arguments (version, operator, "
        f"version), got 2 {NULL}",
    ),
]

# Contexts from the testbed's scenarios, and a few more.
CONTEXTS: list[dict[str, Any]] = [
    {},
    {"targetingKey": "5c3d8535-f81a-4478-a6d3-afaa4d51199e"},
    {"targetingKey": "f20bd32d-703b-48b6-bc8e-79d53c85134a"},
    {"email": "ballmer@macrosoft.com"},
    {"email": "user@example.com", "targetingKey": "u1"},
    {"version": "1.0.0"},
    {"version": "2.1.0"},
    {"version": "v1.0.0"},
    {"version": "not-a-version"},
    {"version": 1.2},
    {"id": "abcdef"},
    {"id": "uvwxyz"},
    {"num": 123},
    {"user": {"name": "jack"}, "targetingKey": "jack"},
    {"user": {"name": "queen"}, "targetingKey": "queen", "locale": "de-DE"},
]


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((HERE / name).read_text())
    return document


@pytest.fixture
def frozen_reference_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reference reads time.time() for $flagd.timestamp; give it laneway's `now`."""
    module = importlib.import_module("openfeature.contrib.tools.flagd.core.targeting.targeting")
    monkeypatch.setattr(module, "time", types.SimpleNamespace(time=lambda: NOW))


def test_the_testkit_file_imports_with_a_warning_for_each_flag_flagd_cannot_evaluate() -> None:
    document = load("testkit-flags.json")
    flag_set = parse_flag_set(document)
    assert set(flag_set.flags) == set(document["flags"])
    assert [(w.key, w.message) for w in flag_set.warnings] == TESTKIT_WARNINGS


def test_strict_refuses_the_testkit_file_for_those_flags() -> None:
    with pytest.raises(FlagDefinitionError) as refused:
        parse_flag_set(load("testkit-flags.json"), strict=True)
    assert refused.value.problems == [message for _, message in TESTKIT_WARNINGS]


def test_the_edge_case_file_warns_of_an_unknown_operation() -> None:
    flag_set = parse_flag_set(load("edge-case-flags.json"))
    assert [w.key for w in flag_set.warnings] == [
        "error-targeting-flag",
        "semver-invalid-operator-flag",
        "starts-with-wrong-args-flag",
        "ends-with-wrong-args-flag",
        "semver-wrong-args-flag",
    ]
    assert flag_set.warnings[0].message == (
        f"flags.error-targeting-flag.targeting: unknown operation 'invalid' {PARSE_ERROR}"
    )


def reference_answer(core: FlagdCore, key: str, context: dict[str, Any]) -> tuple[Any, ...]:
    """FlagdCore's answer as (value, variant, reason, error code); value None = code default."""
    sentinel = object()
    attributes = {k: v for k, v in context.items() if k != "targetingKey"}
    try:
        details = core._resolve(
            key, sentinel, EvaluationContext(context.get("targetingKey"), attributes)
        )
    except OpenFeatureError as error:
        return None, None, "ERROR", str(error.error_code.value)
    value = None if details.value is sentinel else details.value
    return value, details.variant, str(details.reason), None


@pytest.mark.parametrize("name", ["testkit-flags.json", "edge-case-flags.json"])
def test_every_flag_is_answered_as_the_reference_evaluator_answers_it(
    name: str, frozen_reference_clock: None
) -> None:
    document = load(name)
    flag_set = parse_flag_set(document)
    core = FlagdCore()
    core.set_flags(copy.deepcopy(document))
    for key in document["flags"]:
        for context in CONTEXTS:
            ours = evaluate(flag_set, key, context, now=NOW)
            theirs = reference_answer(core, key, context)
            code = ours.error_code.value if ours.error_code else None
            assert (ours.value, ours.variant, str(ours.reason), code) == theirs, (key, context)


@pytest.mark.parametrize(
    ("key", "context", "reason", "error_code"),
    [
        # the testbed's scenarios: value "fallback" is the default variant's, None the caller's
        ("ref-to-nonexistent-evaluator-flag", {}, "ERROR", "PARSE_ERROR"),
        ("semver-invalid-operator-flag", {"version": "1.0.0"}, "DEFAULT", None),
        ("semver-wrong-args-flag", {"version": "1.0.0"}, "DEFAULT", None),
        ("starts-with-wrong-args-flag", {}, "DEFAULT", None),
        ("ends-with-wrong-args-flag", {}, "DEFAULT", None),
    ],
)
def test_the_warned_flags_answer_as_the_testbed_says(
    key: str, context: dict[str, Any], reason: str, error_code: str | None
) -> None:
    resolution = evaluate(parse_flag_set(load("testkit-flags.json")), key, context, now=NOW)
    assert str(resolution.reason) == reason
    if error_code:
        assert resolution.error_code is not None and resolution.error_code.value == error_code
        assert resolution.value is None  # the caller's code default
    else:
        assert (resolution.value, resolution.variant) == ("fallback", "fallback")


def test_the_edge_cases_unknown_operation_is_a_parse_error() -> None:
    resolution = evaluate(
        parse_flag_set(load("edge-case-flags.json")), "error-targeting-flag", {}, now=NOW
    )
    assert resolution.error_code is not None and resolution.error_code.value == "PARSE_ERROR"
    assert resolution.value is None
