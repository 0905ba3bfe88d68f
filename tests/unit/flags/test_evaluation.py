from __future__ import annotations

import copy
import dataclasses
import importlib
import random
import types
from collections import Counter

import cbor2
import mmh3
import pytest
from openfeature.contrib.tools.flagd.core import FlagdCore
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import (
    FlagNotFoundError,
    GeneralError,
    ParseError,
    TypeMismatchError,
)

from laneway.flags import (
    ErrorCode,
    FlagType,
    Reason,
    Resolution,
    evaluate,
    evaluate_all,
    parse_flag_set,
)

NOW = 1_750_000_000.75
ON_OFF = {"on": True, "off": False}

DOC = {
    "metadata": {"flagSetId": "shop/staging"},
    "$evaluators": {"staff": {"ends_with": [{"var": "email"}, "@example.com"]}},
    "flags": {
        "static": {
            "state": "ENABLED",
            "variants": ON_OFF,
            "defaultVariant": "on",
            "metadata": {"owner": "web"},
        },
        "disabled": {"state": "DISABLED", "variants": ON_OFF, "defaultVariant": "on"},
        "disabled-targeted": {
            "state": "DISABLED",
            "variants": ON_OFF,
            "defaultVariant": "on",
            "targeting": {"if": [True, "off", None]},
        },
        "no-default": {"state": "ENABLED", "variants": ON_OFF},
        "null-default": {"state": "ENABLED", "variants": ON_OFF, "defaultVariant": None},
        "staff-only": {
            "state": "ENABLED",
            "variants": {"staff": "internal", "public": "external"},
            "defaultVariant": "public",
            "targeting": {"if": [{"$ref": "staff"}, "staff", None]},
        },
        "staff-or-code-default": {
            "state": "ENABLED",
            "variants": ON_OFF,
            "defaultVariant": None,
            "targeting": {"if": [{"$ref": "staff"}, "on", None]},
        },
        "from-context": {
            "state": "ENABLED",
            "variants": ON_OFF,
            "defaultVariant": "off",
            "targeting": {"var": "pick"},
        },
        "boolean-result": {
            "state": "ENABLED",
            "variants": {"true": 1, "false": 0},
            "defaultVariant": "false",
            "targeting": {"==": [{"var": "tier"}, "gold"]},
        },
        "rollout": {
            "state": "ENABLED",
            "variants": ON_OFF,
            "defaultVariant": "off",
            "targeting": {"fractional": [["on", 50], ["off", 50]]},
        },
        "divide": {
            "state": "ENABLED",
            "variants": {"1": 1},
            "defaultVariant": "1",
            "targeting": {"if": [{"/": [1, {"var": "zero"}]}, "1", None]},
        },
        "versions": {
            "state": "ENABLED",
            "variants": {"new": "v2", "old": "v1"},
            "defaultVariant": "old",
            "targeting": {"if": [{"sem_ver": [{"var": "appVersion"}, "^", "2.0.0"]}, "new", None]},
        },
        "prefix": {
            "state": "ENABLED",
            "variants": ON_OFF,
            "defaultVariant": "off",
            "targeting": {"if": [{"starts_with": [{"var": "path"}, "/beta/"]}, "on", None]},
        },
        "own-key": {
            "state": "ENABLED",
            "variants": ON_OFF,
            "defaultVariant": "off",
            "targeting": {"if": [{"==": [{"var": "$flagd.flagKey"}, "own-key"]}, "on", None]},
        },
        "after-launch": {
            "state": "ENABLED",
            "variants": ON_OFF,
            "defaultVariant": "off",
            "targeting": {
                "if": [{">=": [{"var": "$flagd.timestamp"}, 1_750_000_000]}, "on", "off"]
            },
        },
        "logged": {
            "state": "ENABLED",
            "variants": ON_OFF,
            "defaultVariant": "off",
            "targeting": {"log": "on"},
        },
        "number": {
            "state": "ENABLED",
            "variants": {"one": 1, "half": 0.5},
            "defaultVariant": "one",
        },
        "object": {"state": "ENABLED", "variants": {"a": {"k": [1, 2]}}, "defaultVariant": "a"},
    },
}
FLAGS = parse_flag_set(DOC)
SET_METADATA = {"flagSetId": "shop/staging"}


@pytest.mark.parametrize(
    ("key", "context", "value", "variant", "reason", "error_code"),
    [
        ("static", {}, True, "on", Reason.STATIC, None),
        ("disabled", {}, None, None, Reason.DISABLED, None),
        ("disabled-targeted", {"targetingKey": "u"}, None, None, Reason.DISABLED, None),
        ("no-default", {}, None, None, Reason.DEFAULT, None),
        ("null-default", {}, None, None, Reason.DEFAULT, None),
        (
            "staff-only",
            {"email": "ann@example.com"},
            "internal",
            "staff",
            Reason.TARGETING_MATCH,
            None,
        ),
        ("staff-only", {"email": "bob@elsewhere.org"}, "external", "public", Reason.DEFAULT, None),
        ("staff-only", None, "external", "public", Reason.DEFAULT, None),
        (
            "staff-or-code-default",
            {"email": "ann@example.com"},
            True,
            "on",
            Reason.TARGETING_MATCH,
            None,
        ),
        ("staff-or-code-default", {"email": "bob@elsewhere.org"}, None, None, Reason.DEFAULT, None),
        ("from-context", {"pick": "on"}, True, "on", Reason.TARGETING_MATCH, None),
        ("from-context", {"pick": "blue"}, None, None, Reason.ERROR, ErrorCode.GENERAL),
        ("from-context", {}, False, "off", Reason.DEFAULT, None),
        ("boolean-result", {"tier": "gold"}, 1, "true", Reason.TARGETING_MATCH, None),
        ("boolean-result", {"tier": "tin"}, 0, "false", Reason.TARGETING_MATCH, None),
        ("rollout", {"targetingKey": "user-2"}, True, "on", Reason.TARGETING_MATCH, None),
        # no targeting key: fractional resolves nothing, the flag its default (not an error)
        ("rollout", {}, False, "off", Reason.DEFAULT, None),
        ("rollout", {"targetingKey": ""}, False, "off", Reason.DEFAULT, None),
        ("divide", {"zero": 0}, None, None, Reason.ERROR, ErrorCode.GENERAL),
        ("versions", {"appVersion": "2.4.1"}, "v2", "new", Reason.TARGETING_MATCH, None),
        ("versions", {"appVersion": "v2"}, "v2", "new", Reason.TARGETING_MATCH, None),
        ("versions", {"appVersion": "1.9.9"}, "v1", "old", Reason.DEFAULT, None),
        ("versions", {"appVersion": "not a version"}, "v1", "old", Reason.DEFAULT, None),
        ("prefix", {"path": "/beta/cart"}, True, "on", Reason.TARGETING_MATCH, None),
        ("prefix", {"path": "/cart"}, False, "off", Reason.DEFAULT, None),
        ("own-key", {}, True, "on", Reason.TARGETING_MATCH, None),
        ("own-key", {"$flagd": {"flagKey": "spoofed"}}, True, "on", Reason.TARGETING_MATCH, None),
        ("after-launch", {}, True, "on", Reason.TARGETING_MATCH, None),
        ("number", {}, 1, "one", Reason.STATIC, None),
        ("object", {}, {"k": [1, 2]}, "a", Reason.STATIC, None),
        ("missing", {}, None, None, Reason.ERROR, ErrorCode.FLAG_NOT_FOUND),
    ],
)
def test_reasons_and_error_codes(key, context, value, variant, reason, error_code):
    given = copy.deepcopy(context)
    resolution = evaluate(FLAGS, key, context, now=NOW)
    assert (resolution.value, resolution.variant, resolution.reason, resolution.error_code) == (
        value,
        variant,
        reason,
        error_code,
    )
    assert resolution.is_error == (error_code is not None)
    assert (resolution.error_message is not None) == (error_code is not None)
    assert resolution.uses_code_default == (value is None and error_code is None)
    assert context == given, "evaluation must not touch the context"


def test_error_messages_name_the_flag():
    unknown = evaluate(FLAGS, "from-context", {"pick": "blue"}, now=NOW)
    assert (
        unknown.error_message
        == "flag 'from-context': targeting returned 'blue', which is not one of the variants (on, off)"
    )
    assert evaluate(FLAGS, "missing", {}, now=NOW).error_message == "flag 'missing' is not defined"
    assert "ZeroDivisionError" in evaluate(FLAGS, "divide", {"zero": 0}, now=NOW).error_message


def test_an_unknown_operation_is_a_parse_error():
    # laneway refuses such definitions; a set built around that check still answers PARSE_ERROR
    flag_set = parse_flag_set(
        {
            "flags": {
                "x": {
                    "state": "ENABLED",
                    "variants": ON_OFF,
                    "defaultVariant": "off",
                    "targeting": {"if": [True, "on", None]},
                }
            }
        }
    )
    broken = dataclasses.replace(flag_set.flags["x"], targeting={"nope": [1]})
    flag_set = dataclasses.replace(flag_set, flags={"x": broken})
    resolution = evaluate(flag_set, "x", {}, now=NOW)
    assert (resolution.reason, resolution.error_code) == (Reason.ERROR, ErrorCode.PARSE_ERROR)
    assert resolution.error_message == "flag 'x': invalid targeting: Unrecognized operation: 'nope'"


def test_timestamp_is_now_in_whole_seconds():
    assert evaluate(FLAGS, "after-launch", {}, now=1_750_000_000.0).variant == "on"
    assert evaluate(FLAGS, "after-launch", {}, now=1_749_999_999.99).variant == "off"


def test_metadata_is_the_sets_overlaid_with_the_flags():
    assert dict(evaluate(FLAGS, "static", {}, now=NOW).metadata) == {**SET_METADATA, "owner": "web"}
    for key in ("disabled", "no-default", "rollout", "missing"):
        assert dict(evaluate(FLAGS, key, {"targetingKey": "u"}, now=NOW).metadata) == SET_METADATA
    assert dict(evaluate(FLAGS, "from-context", {"pick": "x"}, now=NOW).metadata) == SET_METADATA


def test_the_log_operation_prints_nothing(capsys):
    assert evaluate(FLAGS, "logged", {}, now=NOW).variant == "on"
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("key", "expected", "ok"),
    [
        ("static", FlagType.BOOLEAN, True),
        ("static", FlagType.STRING, False),
        ("static", FlagType.INTEGER, False),
        ("static", FlagType.FLOAT, False),
        ("staff-only", FlagType.STRING, True),
        ("staff-only", FlagType.OBJECT, False),
        ("number", FlagType.INTEGER, True),
        ("number", FlagType.FLOAT, True),
        ("number", FlagType.BOOLEAN, False),
        ("object", FlagType.OBJECT, True),
        ("object", FlagType.STRING, False),
        ("disabled", FlagType.STRING, True),  # no value, nothing to check
        ("no-default", FlagType.STRING, True),
    ],
)
def test_type_mismatch(key, expected, ok):
    plain = evaluate(FLAGS, key, {"email": "a@example.com"}, now=NOW)
    typed = evaluate(FLAGS, key, {"email": "a@example.com"}, now=NOW, expected=expected)
    if ok:
        assert typed == plain
    else:
        assert (typed.value, typed.reason, typed.error_code) == (
            None,
            Reason.ERROR,
            ErrorCode.TYPE_MISMATCH,
        )
        assert typed.error_message.startswith(f"flag {key!r}: expected {expected}, got ")


def test_resolutions_are_frozen():
    resolution = evaluate(FLAGS, "static", {}, now=NOW)
    with pytest.raises(dataclasses.FrozenInstanceError):
        resolution.value = False  # type: ignore[misc]
    with pytest.raises(TypeError):
        resolution.metadata["owner"] = "me"  # type: ignore[index]


def test_evaluate_all_answers_every_flag_in_order():
    answers = evaluate_all(FLAGS, {"targetingKey": "user-2"}, now=NOW)
    assert list(answers) == list(DOC["flags"])
    assert answers["rollout"] == evaluate(FLAGS, "rollout", {"targetingKey": "user-2"}, now=NOW)
    assert all(isinstance(answer, Resolution) for answer in answers.values())


# fractional: which hashing, how it spreads, how it sticks

USERS = [f"user-{i}" for i in range(10_000)]


def rollout(*buckets: list, bucket_by: dict | None = None) -> object:
    rule = [bucket_by, *buckets] if bucket_by else list(buckets)
    return parse_flag_set(
        {
            "flags": {
                "rollout": {
                    "state": "ENABLED",
                    "variants": {"on": True, "off": False, "third": False},
                    "defaultVariant": "off",
                    "targeting": {"fractional": rule},
                }
            }
        }
    )


def variants_of(flag_set, users=USERS) -> list[str]:
    return [
        evaluate(flag_set, "rollout", {"targetingKey": user}, now=NOW).variant for user in users
    ]


def test_golden_buckets_stay_put():
    """Pinned answers: a change of openfeature-flagd-core that re-buckets users fails here."""
    assert dict(zip(USERS[:12], variants_of(FLAGS, USERS[:12]), strict=True)) == {
        "user-0": "off",
        "user-1": "off",
        "user-2": "on",
        "user-3": "on",
        "user-4": "off",
        "user-5": "on",
        "user-6": "on",
        "user-7": "on",
        "user-8": "off",
        "user-9": "off",
        "user-10": "off",
        "user-11": "off",
    }


def test_buckets_hash_the_cbor_encoding_of_flag_key_and_targeting_key():
    """2.x bucketing: murmur3 of CBOR([flagKey, targetingKey]), not of flagKey + targetingKey."""

    def bucket(data: bytes | str) -> str:
        return "on" if (mmh3.hash(data, signed=False) * 100) >> 32 < 50 else "off"

    served = variants_of(FLAGS)
    assert served == [bucket(cbor2.dumps(["rollout", user], canonical=True)) for user in USERS]
    plain_string = [bucket("rollout" + user) for user in USERS]
    differing = sum(a != b for a, b in zip(served, plain_string, strict=True))
    assert 4_000 < differing < 6_000  # the 1.x buckets are unrelated to these


def test_rollout_share_is_within_bounds():
    served = Counter(variants_of(rollout(["on", 10], ["off", 90])))
    # 10% of 10,000: sd = sqrt(10000 * 0.1 * 0.9) = 30; allow 4 sd
    assert abs(served["on"] - 1_000) <= 120, served
    assert served["on"] + served["off"] == 10_000


def test_three_way_split_passes_chi_square():
    served = Counter(variants_of(rollout(["on", 25], ["third", 25], ["off", 50])))
    expected = {"on": 2_500, "third": 2_500, "off": 5_000}
    chi2 = sum((served[v] - e) ** 2 / e for v, e in expected.items())
    assert chi2 < 13.82, (served, chi2)  # p = 0.001 at 2 degrees of freedom


def test_buckets_are_sticky_and_grow_monotonically():
    ten = rollout(["on", 10], ["off", 90])
    first = variants_of(ten)
    assert variants_of(ten) == first
    assert (
        variants_of(rollout(["on", 10], ["off", 90])) == first
    )  # a fresh parse, as after a restart
    # raising the share only moves users from off to on
    twenty = variants_of(rollout(["on", 20], ["off", 80]))
    assert all(b == "on" for a, b in zip(first, twenty, strict=True) if a == "on")


def test_bucketing_by_an_attribute_including_numbers():
    by_email = rollout(["on", 50], ["off", 50], bucket_by={"var": "email"})
    one = evaluate(by_email, "rollout", {"email": "ann@example.com", "targetingKey": "x"}, now=NOW)
    two = evaluate(by_email, "rollout", {"email": "ann@example.com", "targetingKey": "y"}, now=NOW)
    assert one == two
    by_id = rollout(["on", 50], ["off", 50], bucket_by={"var": "id"})
    # 2.x encodes numbers as numbers: 7 and 7.0 are one bucket, "7" another hash
    assert evaluate(by_id, "rollout", {"id": 7}, now=NOW) == evaluate(
        by_id, "rollout", {"id": 7.0}, now=NOW
    )
    ids = Counter(evaluate(by_id, "rollout", {"id": i}, now=NOW).variant for i in range(10_000))
    assert abs(ids["on"] - 5_000) <= 200


# differential: laneway's answers are the reference evaluator's, on generated flags and contexts

VARIANT_SETS = [
    {"on": True, "off": False},
    {"red": "#f00", "green": "#0f0", "blue": "#00f"},
    {"one": 1, "two": 2.5, "zero": 0},
    {"a": {"x": 1}, "b": {"x": [2]}},
]


def generated_rule(rng: random.Random, names: list[str], key: str) -> dict | None:
    pick = rng.choice(names)
    other = rng.choice([*names, None])
    buckets = [[name, rng.randint(0, 5)] for name in names]
    return rng.choice(
        [
            None,
            {},
            {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, pick, other]},
            {"if": [{"starts_with": [{"var": "email"}, "a"]}, pick, other]},
            {"if": [{"in": [{"var": "tier"}, ["gold", "silver"]]}, pick, other]},
            {
                "if": [
                    {"==": [{"var": "tier"}, "gold"]},
                    pick,
                    {"==": [{"var": "tier"}, "tin"]},
                    other,
                    None,
                ]
            },
            {
                "if": [
                    {
                        "sem_ver": [
                            {"var": "version"},
                            rng.choice(["<", ">=", "~", "^", "="]),
                            "1.4.0",
                        ]
                    },
                    pick,
                    other,
                ]
            },
            {
                "if": [
                    {
                        ">": [
                            {"var": "$flagd.timestamp"},
                            rng.choice([1_700_000_000, 1_800_000_000]),
                        ]
                    },
                    pick,
                    other,
                ]
            },
            {"if": [{"==": [{"var": "$flagd.flagKey"}, rng.choice([key, "other"])]}, pick, other]},
            {"fractional": buckets},
            {"fractional": [{"var": "email"}, *buckets]},
            {"fractional": [{"cat": [{"var": "$flagd.flagKey"}, {"var": "tier"}]}, *buckets]},
            {"fractional": [{"var": "age"}, *buckets]},
            {"var": "variant"},
            {"/": [{"var": "age"}, {"var": "zero"}]},
            {"if": [{"<": [{"var": "age"}, 30]}, True, False]},
        ]
    )


def generated_flags(rng: random.Random, count: int) -> dict:
    flags = {}
    for index in range(count):
        key = f"flag-{index}"
        variants = rng.choice(VARIANT_SETS)
        names = list(variants)
        flag = {"state": rng.choice(["ENABLED"] * 4 + ["DISABLED"]), "variants": variants}
        default = rng.choice([*names, None, "", "omit"])
        if default != "omit":
            flag["defaultVariant"] = default
        rule = generated_rule(rng, names, key)
        if rule is not None:
            flag["targeting"] = rule
        if rng.random() < 0.3:
            flag["metadata"] = {"owner": rng.choice(["web", "ops"]), "n": rng.randint(0, 9)}
        flags[key] = flag
    return {"metadata": {"flagSetId": "generated"}, "flags": flags}


def generated_context(rng: random.Random) -> dict:
    context = {}
    if rng.random() < 0.8:
        context["targetingKey"] = f"user-{rng.randint(0, 10**6)}"
    for name, values in {
        "email": ["ann@example.com", "bob@elsewhere.org", "al@example.com", 7],
        "tier": ["gold", "silver", "tin", None],
        "version": ["1.4.0", "1.3.9", "2.0.0", "v1.4.2", "junk"],
        "age": [18, 30, 45.5, 0],
        "zero": [0, 1],
        "variant": ["on", "red", "two", "a", "nope", True],
    }.items():
        if rng.random() < 0.7:
            context[name] = rng.choice(values)
    return context


RESOLVERS = {
    bool: "resolve_boolean_value",
    str: "resolve_string_value",
    int: "resolve_float_value",
    float: "resolve_float_value",
    dict: "resolve_object_value",
}


def reference_answer(core: FlagdCore, key: str, example: object, context: dict) -> tuple:
    """The reference's answer as (value, variant, reason, error code); value None = code default."""
    sentinel = object()
    attributes = {k: v for k, v in context.items() if k != "targetingKey"}
    evaluation_context = EvaluationContext(context.get("targetingKey"), attributes)
    resolve = getattr(core, RESOLVERS[type(example)])
    try:
        details = resolve(key, sentinel, evaluation_context)
    except FlagNotFoundError:
        return None, None, "ERROR", "FLAG_NOT_FOUND"
    except ParseError:
        return None, None, "ERROR", "PARSE_ERROR"
    except TypeMismatchError:
        return None, None, "ERROR", "TYPE_MISMATCH"
    except GeneralError:
        return None, None, "ERROR", "GENERAL"
    except Exception:  # the SDK's client turns anything else into GENERAL
        return None, None, "ERROR", "GENERAL"
    value = None if details.value is sentinel else details.value
    return value, details.variant, str(details.reason), None


@pytest.fixture
def frozen_reference_clock(monkeypatch):
    """The reference reads time.time() for $flagd.timestamp; give it laneway's `now`."""
    module = importlib.import_module("openfeature.contrib.tools.flagd.core.targeting.targeting")
    monkeypatch.setattr(module, "time", types.SimpleNamespace(time=lambda: NOW))


@pytest.mark.parametrize("seed", range(8))
def test_answers_equal_the_reference_evaluators(seed, frozen_reference_clock):
    rng = random.Random(seed)
    document = generated_flags(rng, 40)
    flag_set = parse_flag_set(document)
    core = FlagdCore()
    core.set_flags(copy.deepcopy(document))
    compared = Counter()
    for _ in range(60):
        context = generated_context(rng)
        for key, flag in [*document["flags"].items(), ("missing", {"variants": {"x": True}})]:
            example = next(iter(flag["variants"].values()))
            ours = evaluate(flag_set, key, context, now=NOW)
            theirs = reference_answer(core, key, example, context)
            assert (ours.value, ours.variant, str(ours.reason), ours.error_code) == theirs, (
                key,
                flag,
                context,
            )
            compared[str(ours.reason)] += 1
    assert {"STATIC", "DEFAULT", "DISABLED", "TARGETING_MATCH", "ERROR"} <= set(compared)


def test_ten_thousand_users_land_where_the_in_process_provider_puts_them(frozen_reference_clock):
    """What openfeature-provider-flagd (in-process) runs is FlagdCore: same bucket for each user."""
    document = {
        "flags": {
            "rollout": {
                "state": "ENABLED",
                "variants": {"a": "A", "b": "B", "c": "C"},
                "defaultVariant": "a",
                "targeting": {"fractional": [["a", 10], ["b", 30], ["c", 60]]},
            }
        }
    }
    core = FlagdCore()
    core.set_flags(copy.deepcopy(document))
    flag_set = parse_flag_set(document)
    for user in USERS:
        theirs = core.resolve_string_value("rollout", "", EvaluationContext(user))
        assert (
            evaluate(flag_set, "rollout", {"targetingKey": user}, now=NOW).variant == theirs.variant
        )
