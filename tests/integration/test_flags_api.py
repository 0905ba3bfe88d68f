"""Flag management over the API of a real server: bad definitions refused naming the flag and
the field with nothing changed, every change in the history with who and when, roles."""

from __future__ import annotations

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
            {
                "flags": {
                    "x": {"state": "ENABLED", "variants": ON_OFF, "targeting": {"$ref": "staff"}}
                }
            },
            "flags.x.targeting: $ref 'staff' names no rule in $evaluators",
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
        for method, path in (
            ("PATCH", f"{ENV}/staging/flags/banner-history"),
            ("PUT", f"{ENV}/staging/flagset"),
            ("DELETE", "/api/v1/apps/shop/flags/banner-history"),
        ):
            answer = http.request(method, path, json={"state": "DISABLED"})
            assert answer.status_code == 403 and "needs deployer" in answer.json()["detail"]
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
