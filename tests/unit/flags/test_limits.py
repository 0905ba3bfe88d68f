"""flags/limits.py: a flag document's nesting, size, flag count and `$evaluators` expansion are
capped before anything recurses on it; each refusal names the flag (or rule) and the limit."""

from __future__ import annotations

import json

import pytest
from openfeature.contrib.tools.flagd.core.model.flag_store import FlagStore

from laneway.flags import FlagDefinitionError, editing, evaluate, limits, ofrep, parse_flag_set

ON_OFF = {"on": True, "off": False}


def nested_if(levels: int) -> dict:
    """`levels` nested `if`s: 2 levels of JSON each (an object and its array), plus the `var`."""
    rule: dict = {"var": "x"}
    for _ in range(levels):
        rule = {"if": [rule, "on", "off"]}
    return rule


def flag(**fields: object) -> dict:
    return {"state": "ENABLED", "variants": ON_OFF, "defaultVariant": "off", **fields}


def refused(document: object) -> list[str]:
    with pytest.raises(FlagDefinitionError) as caught:
        parse_flag_set(document)
    return caught.value.problems


def test_nesting_is_measured_without_recursion() -> None:
    assert limits.nesting(1) == 0
    assert limits.nesting({}) == 1
    assert limits.nesting([[1], {"a": [2]}]) == 3
    assert limits.nesting(nested_if(100_000)) == 200_001


@pytest.mark.parametrize("levels", [500, 100_000])
def test_deep_targeting_is_refused_naming_the_flag_and_the_limit(levels: int) -> None:
    document = {"flags": {"new-checkout": flag(targeting=nested_if(levels))}}
    assert refused(document) == [
        f"flags.new-checkout.targeting: nested {2 * levels + 1:,} levels deep, over the limit of 64"
    ]


def test_targeting_at_the_limit_is_taken_and_evaluated() -> None:
    targeting = nested_if(31)  # 63 levels
    assert limits.nesting(targeting) == 63
    flag_set = parse_flag_set({"flags": {"x": flag(targeting=targeting)}})
    assert evaluate(flag_set, "x", {"x": True}, now=0).variant == "on"


def test_deep_variants_rules_and_metadata_are_refused() -> None:
    deep: object = "leaf"
    for _ in range(70):
        deep = {"a": deep}
    document = {
        "metadata": {"deep": deep},
        "$evaluators": {"staff": {"==": [deep, 1]}},
        "flags": {"config": {"state": "ENABLED", "variants": {"a": deep}, "defaultVariant": "a"}},
    }
    assert refused(document) == [
        "metadata: nested 71 levels deep, over the limit of 64",
        "$evaluators.staff: nested 72 levels deep, over the limit of 64",
        "flags.config.variants: nested 71 levels deep, over the limit of 64",
    ]


def test_targeting_deep_once_shared_rules_are_pasted_in_is_refused() -> None:
    document = {
        "$evaluators": {"deep": nested_if(20)},
        "flags": {"x": flag(targeting=_wrap({"$ref": "deep"}, 20))},
    }
    assert refused(document) == [
        "flags.x.targeting: nested 81 levels deep, over the limit of 64 "
        "(with $evaluators pasted in)"
    ]


def _wrap(rule: dict, levels: int) -> dict:
    for _ in range(levels):
        rule = {"if": [rule, "on", "off"]}
    return rule


def test_shared_rules_that_multiply_are_refused_before_they_are_pasted() -> None:
    rules = {f"r{i}": {"or": [{"$ref": f"r{i + 1}"}, {"$ref": f"r{i + 1}"}]} for i in range(18)}
    rules["r18"] = {"==": [{"var": "x"}, 1]}
    document = {"$evaluators": rules, "flags": {"bomb": flag(targeting={"$ref": "r0"})}}
    size = limits.expanded_size({"$ref": "r0"}, rules)
    assert size > 2**18 * 20
    assert refused(document) == [
        f"flags.bomb.targeting: {size:,} bytes of JSON once $evaluators are pasted in, "
        "over the limit of 262,144"
    ]


def test_expanded_size_follows_the_reference_parsers_order() -> None:
    # a rule's reference to an earlier rule is not expanded by the reference parser
    rules = {"a": {"==": [1, 1]}, "b": {"and": [{"$ref": "a"}, {"$ref": "a"}]}}
    for targeting in ({"$ref": "a"}, {"$ref": "b"}, {"if": [{"$ref": "b"}, {"$ref": "a"}, "x"]}):
        store = FlagStore()
        store.update({"flags": {"x": flag(targeting=targeting)}, "$evaluators": rules})
        pasted = len(json.dumps(store.flags["x"].targeting))
        assert pasted <= limits.expanded_size(targeting, rules) <= pasted + 64


def test_a_document_over_the_size_limit_is_refused() -> None:
    document = {"flags": {"x": flag(metadata={"note": "n" * limits.MAX_BYTES})}}
    (problem,) = refused(document)
    assert problem.startswith("document: 1,048,")
    assert problem.endswith("bytes of JSON, over the limit of 1,048,576 (1 MiB)")


def test_too_many_flags_are_refused() -> None:
    document = {"flags": {f"f{i}": flag() for i in range(limits.MAX_FLAGS + 1)}}
    assert refused(document) == ["flags: 5,001 flags, over the limit of 5,000"]


@pytest.mark.parametrize("levels", [500, 100_000])
def test_edits_refuse_deep_targeting_before_copying_it(levels: int) -> None:
    document = editing.with_flag(editing.empty_document(), "f", editing.boolean_flag())
    expected = [f"flags.f.targeting: nested {2 * levels + 1:,} levels deep, over the limit of 64"]
    with pytest.raises(FlagDefinitionError) as caught:
        editing.set_fields(document, "f", targeting=nested_if(levels))
    assert caught.value.problems == expected
    with pytest.raises(FlagDefinitionError) as caught:
        editing.with_flag(document, "g", flag(targeting=nested_if(levels)))
    assert caught.value.problems == [expected[0].replace("flags.f.", "flags.g.")]


def test_a_deep_evaluation_context_is_an_invalid_context() -> None:
    context: object = 1
    for _ in range(100):
        context = {"a": context}
    with pytest.raises(ofrep.InvalidContext) as caught:
        ofrep.read_context({"context": context})
    assert caught.value.message == "context: nested 100 levels deep, over the limit of 64"
