"""Flag management over the API of a real server: bad definitions refused naming the flag and
the field with nothing changed, every change in the history with who and when, roles."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.integration

ENV = "/api/v1/apps/shop/environments"
ON_OFF = {"on": True, "off": False}
GOOD = {
    "flags": {
        "new-checkout": {"state": "ENABLED", "variants": ON_OFF, "defaultVariant": "on"},
        "color": {
            "state": "ENABLED",
            "variants": {"a": "blue", "b": "green"},
            "defaultVariant": "a",
        },
    }
}


TESTBED = Path(__file__).parents[1] / "unit" / "flags" / "flagd_testbed"


def nested_if(levels: int) -> dict:
    rule: dict = {"var": "x"}
    for _ in range(levels):
        rule = {"if": [rule, "on", "off"]}
    return rule


def nested_if_json(levels: int) -> str:
    """`nested_if(levels)` as JSON text, written without recursing (json.dumps cannot)."""
    return '{"if": [' * levels + '{"var": "x"}' + ', "on", "off"]}' * levels


def snapshot(world, environment: str) -> tuple[bytes, list]:
    with world.http() as http:
        exported = http.get(f"{ENV}/{environment}/flagset")
        history = http.get(f"{ENV}/{environment}/flag-history", params={"limit": 1000})
    return exported.content, history.json()


@pytest.mark.parametrize(
    ("document", "detail"),
    [
        (
            {
                "flags": {
                    "new-checkout": {
                        "state": "ENABLED",
                        "variants": ON_OFF,
                        "defaultVariant": "blue",
                    }
                }
            },
            "flags.new-checkout.defaultVariant: 'blue' is not one of the variants (on, off)",
        ),
        (
            {"flags": {"x": {"state": "ENABLED", "variants": {"on": True, "off": "no"}}}},
            "flags.x.variants: mixed variant types (on: boolean, off: string)",
        ),
        (
            {"flags": {"x": {"state": "ON", "variants": ON_OFF}}},
            "flags.x.state: 'ON' is not ENABLED or DISABLED",
        ),
        (
            {"flags": {"x": {"state": "ENABLED", "variants": ON_OFF, "colour": 1}}},
            "flags.x.colour: unknown field",
        ),
        ({"flags": []}, "flags: expected an object of flag key to flag"),
        ([1, 2], "document: expected a JSON object"),
    ],
)
def test_a_malformed_import_is_refused_whole_and_changes_nothing(flag_world, document, detail):
    flag_world.load("staging", GOOD)
    before = snapshot(flag_world, "staging")
    with flag_world.http() as http:
        answer = http.put(f"{ENV}/staging/flagset", json=document)
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert detail in answer.json()["detail"]
    assert "Traceback" not in answer.text
    assert snapshot(flag_world, "staging") == before


def test_bad_changes_name_the_flag_and_field_and_change_nothing(flag_world):
    flag_world.load("staging", GOOD)
    flag_world.load("production", GOOD)
    before = [snapshot(flag_world, e) for e in ("staging", "production")]
    cases = [
        ("PATCH", f"{ENV}/staging/flags/color", {"defaultVariant": "red"}, 400,
         "flags.color.defaultVariant: 'red' is not one of the variants (a, b)"),
        ("PATCH", f"{ENV}/staging/flags/color", {"state": "on"}, 400, "state"),
        ("PATCH", f"{ENV}/staging/flags/color", {"targeting": {"nope": [1]}}, 400,
         "flags.color.targeting: unknown operation 'nope'"),
        ("PATCH", f"{ENV}/staging/flags/missing", {"state": "ENABLED"}, 404, "no flag 'missing'"),
        ("PATCH", f"{ENV}/nowhere/flags/color", {"state": "ENABLED"}, 404, "no environment"),
        ("PUT", f"{ENV}/staging/flags/color/rollout", {"percent": 10}, 400,
         "flag 'color' is not an on/off flag (variants: a, b); say which variant with --variant"),
        ("PUT", f"{ENV}/staging/flags/new-checkout/rollout", {"percent": 101}, 400, "percent"),
        ("PUT", f"{ENV}/staging/flags/new-checkout/rollout", {"percent": 10, "variant": "x"}, 400,
         "variant: 'x' is not one of the variants of 'new-checkout'"),
        ("POST", "/api/v1/apps/shop/flags",
         {"key": "banner", "definition": {"variants": {"a": None}}}, 400,
         "flags.banner.variants.a: null is not a variant value"),
        ("POST", "/api/v1/apps/shop/flags", {"key": "bad key"}, 400, "flag key 'bad key'"),
        ("POST", "/api/v1/apps/shop/flags", {"key": "banner", "enabled_in": ["qa"]}, 404,
         "enabled_in: no environment 'qa'"),
        ("POST", "/api/v1/apps/shop/flags", {"key": "color"}, 409,
         "flag 'color' exists already in environment"),
        ("POST", "/api/v1/apps/nope/flags", {"key": "banner"}, 404, "no app named 'nope'"),
    ]  # fmt: skip
    with flag_world.http() as http:
        for method, path, body, status, detail in cases:
            answer = http.request(method, path, json=body)
            assert answer.status_code == status, (method, path, answer.text)
            assert detail in answer.json()["detail"], (method, path, answer.text)
        assert http.get("/api/v1/apps/shop/flags").json()["flags"][-1]["key"] != "banner"
    assert [snapshot(flag_world, e) for e in ("staging", "production")] == before


def test_every_change_is_in_the_history_with_who_and_when(flag_world):
    flag_world.load("staging", GOOD)
    dana = flag_world.add_token("dana", "deployer")
    viewer = flag_world.add_token("vic", "viewer")
    with flag_world.http(dana) as http:
        created = http.post(
            "/api/v1/apps/shop/flags",
            json={"key": "banner-history", "enabled_in": ["production"]},
        )
        assert created.status_code == 201, created.text
        assert created.json()["environments"]["production"]["state"] == "ENABLED"
        assert created.json()["environments"]["staging"]["state"] == "DISABLED"
        assert (
            http.patch(f"{ENV}/staging/flags/banner-history", json={"state": "ENABLED"}).status_code
            == 200
        )
        assert (
            http.put(f"{ENV}/staging/flags/banner-history/rollout", json={"percent": 5}).status_code
            == 200
        )
    with flag_world.http(viewer) as http:
        history = http.get(f"{ENV}/staging/flag-history", params={"key": "banner-history"}).json()
        assert [(c["key"], c["actor"]) for c in history] == [("banner-history", "dana")] * 3 + [
            ("*", "admin")  # a key's history includes the imports that set the whole document
        ] * (len(history) - 3)
        rollout, enabled, created = history[:3]
        assert rollout["version"] == enabled["version"] + 1 == created["version"] + 2
        assert created["before"] is None and created["after"]["state"] == "DISABLED"
        assert (enabled["before"]["state"], enabled["after"]["state"]) == ("DISABLED", "ENABLED")
        assert rollout["after"]["targeting"] == {"fractional": [["on", 5], ["off", 95]]}
        assert rollout["time"] >= enabled["time"] >= created["time"]
        everything = http.get(f"{ENV}/staging/flag-history").json()
        assert any(c["key"] == "*" and c["actor"] == "admin" for c in everything)

        listed = http.get("/api/v1/apps/shop/flags").json()
        banner = next(f for f in listed["flags"] if f["key"] == "banner-history")
        assert banner["app_wide"] is True
        assert banner["environments"]["staging"]["rollout"]["percent"] == 5
        assert banner["environments"]["production"]["rollout"] is None
        one = http.get(f"{ENV}/production/flags/banner-history").json()
        assert one["definition"] == {"state": "ENABLED", "variants": ON_OFF, "defaultVariant": "on"}
        for method, path, where in (
            ("PATCH", f"{ENV}/staging/flags/banner-history", "shop/staging"),
            ("PUT", f"{ENV}/staging/flagset", "shop/staging"),
            ("DELETE", "/api/v1/apps/shop/flags/banner-history", "any environment of shop"),
        ):
            answer = http.request(method, path, json={"state": "DISABLED"})
            assert answer.status_code == 403
            assert f"this needs developer on {where}" in answer.json()["detail"]
    with flag_world.http(dana) as http:
        deleted = http.delete("/api/v1/apps/shop/flags/banner-history")
        assert deleted.status_code == 200
        assert sorted(deleted.json()["removed_from"]) == ["production", "staging"]
        assert http.get(f"{ENV}/staging/flag-history").json()[0]["after"] is None


def test_import_with_a_stale_version_is_a_conflict(flag_world):
    flag_world.load("staging", GOOD)
    with flag_world.http() as http:
        exported = http.get(f"{ENV}/staging/flagset")
        version = int(exported.headers["x-laneway-flags-version"])
        assert exported.json() == GOOD
        stale = http.put(
            f"{ENV}/staging/flagset", params={"version": version - 1}, json={"flags": {}}
        )
        assert stale.status_code == 409 and "changed meanwhile" in stale.json()["detail"]
        fresh = http.put(f"{ENV}/staging/flagset", params={"version": version}, json={"flags": {}})
        assert fresh.status_code == 200 and fresh.json()["version"] == version + 1


@pytest.mark.parametrize("levels", [100, 250])  # 250: 501 levels of JSON, a 500 before
def test_deep_targeting_is_a_400_naming_the_flag_and_the_limit(flag_world, levels):
    flag_world.load("staging", GOOD)
    before = snapshot(flag_world, "staging")
    rule = nested_if_json(levels)
    on_off = '{"on": true, "off": false}'
    requests = [
        ("PATCH", f"{ENV}/staging/flags/new-checkout", '{"targeting": ' + rule + "}"),
        (
            "POST",
            "/api/v1/apps/shop/flags",
            '{"key": "banner", "definition": {"variants": ' + on_off + ', "targeting": '
            + rule + "}}",
        ),
        (
            "PUT",
            f"{ENV}/staging/flagset",
            '{"flags": {"new-checkout": {"state": "ENABLED", "variants": ' + on_off
            + ', "targeting": ' + rule + "}}}",
        ),
    ]  # fmt: skip
    figure = f"nested {2 * levels + 1:,} levels deep, over the limit of 64"
    with flag_world.http() as http:
        keys = ["new-checkout", "banner", "new-checkout"]
        for (method, path, body), key in zip(requests, keys, strict=True):
            answer = http.request(
                method, path, content=body, headers={"Content-Type": "application/json"}
            )
            assert answer.status_code == 400, (method, path, answer.text)
            assert answer.json()["detail"] == f"flags.{key}.targeting: {figure}"
            assert "Traceback" not in answer.text
    assert snapshot(flag_world, "staging") == before


def test_a_deep_ofrep_context_is_an_invalid_context(flag_world):
    flag_world.load("staging", GOOD)
    auth = {"Authorization": f"Bearer {flag_world.key('staging')}"}
    with httpx.Client(base_url=flag_world.server.url, headers=auth) as http:
        for levels in (100, 100_000):
            body = '{"context": {"a": ' + "[" * levels + "]" * levels + "}}"
            answer = http.post("/ofrep/v1/evaluate/flags/color", content=body)
            assert answer.status_code == 400, answer.text
            assert answer.json()["errorCode"] == "INVALID_CONTEXT"
            assert "the limit of 64" in answer.json()["errorDetails"]


def _ofrep(flag_world, key: str, context: dict) -> tuple[int, dict]:
    auth = {"Authorization": f"Bearer {flag_world.key('staging')}"}
    with httpx.Client(base_url=flag_world.server.url, headers=auth) as http:
        answer = http.post(f"/ofrep/v1/evaluate/flags/{key}", json={"context": context})
    return answer.status_code, answer.json()


def test_the_flagd_testbed_file_imports_with_warnings_and_answers_as_flagd(flag_world):
    document = json.loads((TESTBED / "testkit-flags.json").read_text())
    with flag_world.http() as http:
        answer = http.put(f"{ENV}/staging/flagset", json=document)
        listed = http.get(f"{ENV}/staging/flags").json()
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["flags"]) == len(document["flags"])
    warnings = answer.json()["warnings"]
    assert [w["key"] for w in warnings] == [
        "semver-invalid-operator-flag",
        "ref-to-nonexistent-evaluator-flag",
        "starts-with-wrong-args-flag",
        "ends-with-wrong-args-flag",
        "semver-wrong-args-flag",
    ]
    assert all(w["message"].startswith(f"flags.{w['key']}.targeting: ") for w in warnings)
    assert listed["warnings"] == warnings
    # flagd's answers (the testbed's scenarios)
    status, body = _ofrep(flag_world, "ref-to-nonexistent-evaluator-flag", {})
    assert (status, body["errorCode"]) == (400, "PARSE_ERROR")
    for key in ("starts-with-wrong-args-flag", "ends-with-wrong-args-flag"):
        status, body = _ofrep(flag_world, key, {})
        assert (status, body["value"], body["reason"]) == (200, "fallback", "DEFAULT")
    for key in ("semver-wrong-args-flag", "semver-invalid-operator-flag"):
        status, body = _ofrep(flag_world, key, {"version": "1.0.0"})
        assert (status, body["value"], body["reason"]) == (200, "fallback", "DEFAULT")
    status, body = _ofrep(flag_world, "equal-greater-lesser-version-flag", {"version": "2.1.0"})
    assert (status, body["value"], body["reason"]) == (200, "greater", "TARGETING_MATCH")


def test_a_strict_import_refuses_what_would_be_warnings(flag_world):
    flag_world.load("staging", GOOD)
    before = snapshot(flag_world, "staging")
    document = json.loads((TESTBED / "testkit-flags.json").read_text())
    with flag_world.http() as http:
        answer = http.put(f"{ENV}/staging/flagset", params={"strict": "true"}, json=document)
    assert answer.status_code == 400, answer.text
    problem = answer.json()
    assert problem["detail"].splitlines()[0] == (
        "flags.semver-invalid-operator-flag.targeting: sem_ver operator '===' is not one of "
        "!= < <= = > >= ^ ~ (flagd evaluates it to null)"
    )
    assert len(problem["detail"].splitlines()) == 5
    assert "an import that is not strict takes them" in problem["hint"]
    assert snapshot(flag_world, "staging") == before


def test_a_change_to_a_flag_must_not_draw_a_warning(flag_world):
    flag_world.load("staging", GOOD)
    before = snapshot(flag_world, "staging")
    with flag_world.http() as http:
        answer = http.patch(
            f"{ENV}/staging/flags/new-checkout",
            json={"targeting": {"if": [{"starts_with": [{"var": "email"}]}, "on", "off"]}},
        )
    assert answer.status_code == 400, answer.text
    assert answer.json()["detail"] == (
        "flags.new-checkout.targeting: starts_with takes 2 arguments, got 1 "
        "(flagd evaluates it to null)"
    )
    assert snapshot(flag_world, "staging") == before
