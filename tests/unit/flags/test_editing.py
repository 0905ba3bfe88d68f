"""Document edits behind `laneway flags create|set|rollout`: pure, validated by parse_flag_set."""

from __future__ import annotations

import pytest

from laneway.errors import Conflict, InvalidInput, NotFound
from laneway.flags import Reason, evaluate, parse_flag_set
from laneway.flags.editing import (
    boolean_flag,
    check_flag_key,
    diff,
    empty_document,
    rollout,
    rollout_of,
    set_fields,
    summarize,
    with_flag,
    without_flag,
)
from laneway.flags.types import State

NOW = 1_750_000_000.0
USERS = [f"user-{i}" for i in range(2000)]


def doc_with(key: str = "new-checkout", flag: dict | None = None) -> dict:
    return with_flag(empty_document(), key, flag or boolean_flag())


def on_users(document: dict, key: str = "new-checkout") -> set[str]:
    flags = parse_flag_set(document)
    return {u for u in USERS if evaluate(flags, key, {"targetingKey": u}, now=NOW).value is True}


def test_a_created_flag_is_an_on_off_flag_disabled_until_switched_on():
    document = doc_with()
    assert document["$schema"].startswith("https://flagd.dev/schema/")
    flags = parse_flag_set(document)
    assert evaluate(flags, "new-checkout", {}, now=NOW).reason is Reason.DISABLED
    enabled = parse_flag_set(set_fields(document, "new-checkout", state="ENABLED"))
    answer = evaluate(enabled, "new-checkout", {}, now=NOW)
    assert (answer.value, answer.variant, answer.reason) == (True, "on", Reason.STATIC)


def test_edits_never_change_their_input():
    document = doc_with()
    before = repr(document)
    set_fields(document, "new-checkout", state="ENABLED", targeting={"==": [1, 1]})
    rollout(document, "new-checkout", 10)
    with_flag(document, "other", boolean_flag())
    without_flag(document, "new-checkout")
    assert repr(document) == before


def test_rollout_is_a_sticky_fractional_rule_on_the_targeting_key():
    document = rollout(doc_with(), "new-checkout", 10)
    flag = document["flags"]["new-checkout"]
    assert flag["state"] == "ENABLED" and flag["defaultVariant"] == "off"
    assert flag["targeting"] == {"fractional": [["on", 10], ["off", 90]]}
    assert rollout_of(flag["targeting"]) == {"variant": "on", "percent": 10.0, "rest": "off"}
    ten = on_users(document)
    assert 140 <= len(ten) <= 260  # 10% of 2000, within 4 standard deviations
    assert on_users(rollout(doc_with(), "new-checkout", 10)) == ten  # the same users again
    twenty = on_users(rollout(document, "new-checkout", 20))
    assert ten < twenty  # raising the share only moves users from off to on
    assert on_users(rollout(document, "new-checkout", 0)) == set()
    assert on_users(rollout(document, "new-checkout", 100)) == set(USERS)
    half = rollout(document, "new-checkout", 12.5)["flags"]["new-checkout"]["targeting"]
    assert half == {"fractional": [["on", 1250], ["off", 8750]]}
    assert rollout_of(half)["percent"] == 12.5
    no_key = evaluate(parse_flag_set(document), "new-checkout", {}, now=NOW)
    assert (no_key.variant, no_key.reason) == ("off", Reason.DEFAULT)


def test_rollout_of_a_string_flag_names_its_variants():
    flag = {"state": "ENABLED", "variants": {"a": "blue", "b": "green"}, "defaultVariant": "a"}
    document = doc_with("color", flag)
    with pytest.raises(InvalidInput, match="not an on/off flag .*--variant"):
        rollout(document, "color", 10)
    rolled = rollout(document, "color", 25, variant="b")["flags"]["color"]
    assert rolled["targeting"] == {"fractional": [["b", 25], ["a", 75]]}
    with pytest.raises(InvalidInput, match="say which variant with --rest"):
        rollout(document, "color", 25, variant="a")  # the default is "a" too
    with pytest.raises(InvalidInput, match="rest: .* another variant"):
        rollout(document, "color", 25, variant="a", rest="a")
    assert (
        rollout(document, "color", 25, variant="a", rest="b")["flags"]["color"]["defaultVariant"]
        == "b"
    )
    with pytest.raises(InvalidInput, match="variant: 'c' is not one of the variants of 'color'"):
        rollout(document, "color", 25, variant="c")


@pytest.mark.parametrize("percent", [-1, 100.5, float("nan"), 12.345, True, "10"])
def test_rollout_refuses_shares_that_are_not_percentages(percent):
    with pytest.raises(InvalidInput, match="percent"):
        rollout(doc_with(), "new-checkout", percent)


def test_unknown_and_existing_flags():
    with pytest.raises(NotFound, match="no flag 'nope'"):
        set_fields(doc_with(), "nope", state="ENABLED")
    with pytest.raises(NotFound):
        rollout(doc_with(), "nope", 5)
    with pytest.raises(Conflict, match="exists already"):
        with_flag(doc_with(), "new-checkout", boolean_flag())
    for bad in ("", "a b", "-x", "x/y", "k" * 129, "Bad_Key", "new_checkout", "Upper", "1x", "x-"):
        with pytest.raises(InvalidInput, match="flag key .*a lowercase key"):
            check_flag_key(bad)
    check_flag_key("new-checkout.v2-beta")
    check_flag_key("k" * 128)


def test_diff_names_each_changed_flag():
    before = with_flag(doc_with(), "b", boolean_flag())
    after = without_flag(set_fields(before, "new-checkout", state="ENABLED"), "b")
    after = with_flag(after, "c", boolean_flag(State.ENABLED))
    changes = diff(before, after)
    assert [(k, b is None, a is None) for k, b, a in changes] == [
        ("new-checkout", False, False),
        ("b", False, True),
        ("c", True, False),
    ]
    assert diff(before, before) == []


def test_summary_shows_state_default_and_rollout():
    document = rollout(with_flag(doc_with(), "plain", boolean_flag()), "new-checkout", 30)
    summary = {f["key"]: f for f in summarize(parse_flag_set(document))}
    assert summary["plain"] == {
        "key": "plain",
        "state": "DISABLED",
        "type": "boolean",
        "variants": ["on", "off"],
        "defaultVariant": "on",
        "targeting": False,
        "rollout": None,
    }
    assert summary["new-checkout"]["rollout"] == {"variant": "on", "percent": 30.0, "rest": "off"}
    assert rollout_of({"if": [True, "on", "off"]}) is None
    assert rollout_of({"fractional": [["on", 10], ["off", 80], ["x", 10]]}) is None
