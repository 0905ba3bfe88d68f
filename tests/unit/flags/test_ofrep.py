from __future__ import annotations

import json
from pathlib import Path

import pytest

from laneway import errors
from laneway.flags import (
    ErrorCode,
    Reason,
    Resolution,
    evaluate,
    evaluate_all,
    ofrep,
    parse_flag_set,
)

NOW = 1_750_000_000.0
ON_OFF = {"on": True, "off": False}
DOC = json.loads((Path(__file__).parent / "flag_set.json").read_text())
FLAGS = parse_flag_set(DOC)
SET_METADATA = DOC["metadata"]


def answer(key: str, context: dict | None = None) -> tuple[int, dict]:
    return ofrep.evaluation(key, evaluate(FLAGS, key, context, now=NOW))


@pytest.mark.parametrize(
    ("key", "context", "status", "body"),
    [
        (
            "static",
            {},
            200,
            {
                "key": "static",
                "value": True,
                "reason": "STATIC",
                "variant": "on",
                "metadata": {**SET_METADATA, "owner": "web"},
            },
        ),
        (
            "color",
            {"tier": "gold"},
            200,
            {
                "key": "color",
                "value": "#00f",
                "reason": "TARGETING_MATCH",
                "variant": "blue",
                "metadata": SET_METADATA,
            },
        ),
        (
            "color",
            {},
            200,
            {
                "key": "color",
                "value": "#f00",
                "reason": "DEFAULT",
                "variant": "red",
                "metadata": SET_METADATA,
            },
        ),
        (
            "limits",
            {},
            200,
            {
                "key": "limits",
                "value": 2.5,
                "reason": "STATIC",
                "variant": "high",
                "metadata": SET_METADATA,
            },
        ),
        (
            "theme",
            {},
            200,
            {
                "key": "theme",
                "value": {"bg": "#000"},
                "reason": "STATIC",
                "variant": "dark",
                "metadata": SET_METADATA,
            },
        ),
        # no value: the provider uses the code default
        (
            "disabled",
            {},
            200,
            {"key": "disabled", "reason": "DISABLED", "variant": None, "metadata": SET_METADATA},
        ),
        (
            "code-default",
            {},
            200,
            {"key": "code-default", "reason": "DEFAULT", "variant": None, "metadata": SET_METADATA},
        ),
        (
            "missing",
            {},
            404,
            {
                "key": "missing",
                "errorCode": "FLAG_NOT_FOUND",
                "errorDetails": "flag 'missing' is not defined",
                "metadata": SET_METADATA,
            },
        ),
        (
            "from-context",
            {"pick": "maybe"},
            400,
            {
                "key": "from-context",
                "errorCode": "GENERAL",
                "errorDetails": "flag 'from-context': targeting returned 'maybe', which is not one of the variants (on, off)",
                "metadata": SET_METADATA,
            },
        ),
    ],
)
def test_single_evaluation_bodies(key, context, status, body):
    got_status, got_body = answer(key, context)
    assert (got_status, got_body) == (status, body)
    assert list(got_body) == list(body)  # field order as OFREP lists it
    json.dumps(got_body, allow_nan=False)


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (ErrorCode.FLAG_NOT_FOUND, 404),
        (ErrorCode.PARSE_ERROR, 400),
        (ErrorCode.TYPE_MISMATCH, 400),
        (ErrorCode.TARGETING_KEY_MISSING, 400),
        (ErrorCode.INVALID_CONTEXT, 400),
        (ErrorCode.GENERAL, 400),
    ],
)
def test_every_error_code_has_its_status(code, status):
    resolution = Resolution(None, None, Reason.ERROR, code, "why")
    assert ofrep.evaluation("k", resolution) == (
        status,
        {"key": "k", "errorCode": code.value, "errorDetails": "why", "metadata": {}},
    )


def test_bulk_body_lists_every_flag_with_failures_inline():
    body = ofrep.bulk_evaluation(FLAGS, evaluate_all(FLAGS, {"pick": "maybe"}, now=NOW))
    assert body["metadata"] == SET_METADATA
    assert [item["key"] for item in body["flags"]] == list(DOC["flags"])
    by_key = {item["key"]: item for item in body["flags"]}
    assert by_key["static"] == answer("static")[1]
    assert (
        by_key["from-context"]["errorCode"] == "GENERAL" and "value" not in by_key["from-context"]
    )
    assert by_key["disabled"] == {
        "key": "disabled",
        "reason": "DISABLED",
        "variant": None,
        "metadata": SET_METADATA,
    }
    json.dumps(body, allow_nan=False)


def test_etag_is_stable_and_changes_with_flags_and_context():
    context = {"targetingKey": "u1", "tier": "gold"}
    tag = ofrep.etag(FLAGS, context, now=NOW)
    assert tag.startswith('"') and tag.endswith('"') and len(tag) == 34
    assert (
        ofrep.etag(
            parse_flag_set(json.loads(json.dumps(DOC))),
            dict(reversed(context.items())),
            now=NOW + 60,
        )
        == tag
    )
    assert ofrep.etag(FLAGS, {**context, "tier": "tin"}, now=NOW) != tag
    assert ofrep.etag(FLAGS, None, now=NOW) == ofrep.etag(FLAGS, {}, now=NOW) != tag
    changed = json.loads(json.dumps(DOC))
    changed["flags"]["static"]["defaultVariant"] = "off"
    assert ofrep.etag(parse_flag_set(changed), context, now=NOW) != tag


def test_etag_of_a_set_reading_the_clock_changes_every_second():
    timed = parse_flag_set(
        {
            "flags": {
                "x": {
                    "state": "ENABLED",
                    "variants": ON_OFF,
                    "defaultVariant": "off",
                    "targeting": {"if": [{">": [{"var": "$flagd.timestamp"}, NOW]}, "on", None]},
                }
            }
        }
    )
    assert ofrep.etag(timed, {}, now=NOW) == ofrep.etag(timed, {}, now=NOW + 0.5)
    assert ofrep.etag(timed, {}, now=NOW) != ofrep.etag(timed, {}, now=NOW + 1)


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        ("", False),
        ('"abc"', True),
        ('W/"abc"', True),
        ('"x", "abc"', True),
        ("*", True),
        ('"abd"', False),
        ("abc", False),
    ],
)
def test_if_none_match(header, matches):
    assert ofrep.not_modified(header, '"abc"') is matches


@pytest.mark.parametrize(
    ("body", "context"),
    [
        (None, {}),
        ({}, {}),
        ({"context": None}, {}),
        ({"context": {"targetingKey": "u", "tier": "gold"}}, {"targetingKey": "u", "tier": "gold"}),
        ({"context": {"plan": {"seats": 3}}}, {"plan": {"seats": 3}}),
    ],
)
def test_read_context(body, context):
    assert ofrep.read_context(body) == context


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "request body: expected a JSON object with a context object"),
        ({"context": "u1"}, "context: expected a JSON object"),
        ({"context": {"targetingKey": 7}}, "context.targetingKey: expected a string"),
        (
            {"context": {"n": float("nan")}},
            "context: not JSON: Out of range float values are not JSON compliant",
        ),
    ],
)
def test_bad_requests_are_invalid_context(body, message):
    with pytest.raises(ofrep.InvalidContext) as caught:
        ofrep.read_context(body)
    assert str(caught.value) == message and isinstance(caught.value, errors.InvalidInput)
    assert ofrep.invalid_context(message, "k") == (
        400,
        {"key": "k", "errorCode": "INVALID_CONTEXT", "errorDetails": message},
    )
    assert ofrep.invalid_context(message) == (
        400,
        {"errorCode": "INVALID_CONTEXT", "errorDetails": message},
    )
