"""Flags served by a real laneway server: read through the published OpenFeature SDK with the
published OFREP provider, bulk ETags, flagd JSON for flagd's HTTP sync, client keys that
reach one environment only, and a rollout that keeps users in their bucket across restarts."""

from __future__ import annotations

import copy
import signal
import socket
from urllib.parse import urlsplit

import httpx
import pytest
from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.contrib.tools.flagd.core import FlagdCore
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

pytestmark = pytest.mark.integration

ON_OFF = {"on": True, "off": False}
DOCUMENT = {
    "$schema": "https://flagd.dev/schema/v0/flags.json",
    "metadata": {"flagSetId": "shop/staging"},
    "flags": {
        "new-checkout": {"state": "ENABLED", "variants": ON_OFF, "defaultVariant": "on"},
        "color": {
            "state": "ENABLED",
            "variants": {"red": "#f00", "blue": "#00f"},
            "defaultVariant": "red",
            "targeting": {"if": [{"==": [{"var": "tier"}, "gold"]}, "blue", None]},
        },
        "ratio": {
            "state": "ENABLED",
            "variants": {"low": 0.25, "high": 2.5},
            "defaultVariant": "high",
        },
        "retries": {"state": "ENABLED", "variants": {"few": 2, "many": 5}, "defaultVariant": "few"},
        "theme": {
            "state": "ENABLED",
            "variants": {"dark": {"bg": "#000"}, "light": {"bg": "#fff"}},
            "defaultVariant": "dark",
            "metadata": {"owner": "web"},
        },
        "kill-switch": {"state": "DISABLED", "variants": ON_OFF, "defaultVariant": "on"},
    },
}


def ofrep_client(world, environment: str, *, header: str = "authorization"):
    key = world.key(environment)
    headers = (
        {"Authorization": f"Bearer {key}"} if header == "authorization" else {"X-API-Key": key}
    )
    domain = f"laneway-{environment}-{header}"
    api.set_provider(OFREPProvider(world.server.url, headers_factory=lambda: headers), domain)
    return api.get_client(domain)


@pytest.fixture(autouse=True)
def _providers():
    yield
    api.clear_providers()


def test_the_published_sdk_resolves_every_kind_of_flag(flag_world):
    flag_world.load("staging", DOCUMENT)
    client = ofrep_client(flag_world, "staging")
    gold = EvaluationContext("user-1", {"tier": "gold"})

    details = client.get_boolean_details("new-checkout", False)
    assert (details.value, details.variant, details.reason) == (True, "on", Reason.STATIC)
    assert details.flag_metadata == {"flagSetId": "shop/staging"}
    details = client.get_string_details("color", "", gold)
    assert (details.value, details.variant, details.reason) == ("#00f", "blue", "TARGETING_MATCH")
    details = client.get_string_details("color", "", EvaluationContext("user-2", {"tier": "x"}))
    assert (details.value, details.variant, details.reason) == ("#f00", "red", Reason.DEFAULT)
    assert client.get_float_value("ratio", 0.0) == 2.5
    assert client.get_integer_value("retries", 0) == 2
    theme = client.get_object_details("theme", {})
    assert theme.value == {"bg": "#000"} and theme.flag_metadata["owner"] == "web"

    disabled = client.get_boolean_details("kill-switch", False)
    assert (disabled.value, disabled.variant, disabled.reason) == (False, None, Reason.DISABLED)
    missing = client.get_boolean_details("nope", True)
    assert (missing.value, missing.error_code) == (True, ErrorCode.FLAG_NOT_FOUND)
    mismatch = client.get_string_details("new-checkout", "x")
    assert (mismatch.value, mismatch.error_code) == ("x", ErrorCode.TYPE_MISMATCH)

    by_api_key = ofrep_client(flag_world, "staging", header="x-api-key")
    assert by_api_key.get_string_value("color", "", gold) == "#00f"


def test_a_change_takes_effect_for_the_next_evaluation(flag_world):
    flag_world.load("staging", DOCUMENT)
    client = ofrep_client(flag_world, "staging")
    path = "/api/v1/apps/shop/environments/staging/flags/new-checkout"
    assert client.get_boolean_value("new-checkout", False) is True
    with flag_world.http() as http:
        assert http.patch(path, json={"state": "DISABLED"}).status_code == 200
        assert client.get_boolean_details("new-checkout", True).reason == Reason.DISABLED
        assert (
            http.patch(path, json={"state": "ENABLED", "defaultVariant": "off"}).status_code == 200
        )
        assert client.get_boolean_details("new-checkout", True).variant == "off"


def test_bulk_evaluation_answers_304_while_nothing_changed(flag_world):
    flag_world.load("staging", DOCUMENT)
    url = "/ofrep/v1/evaluate/flags"
    auth = {"Authorization": f"Bearer {flag_world.key('staging')}"}
    with httpx.Client(base_url=flag_world.server.url, headers=auth) as http:
        first = http.post(url, json={"context": {"targetingKey": "u", "tier": "gold"}})
        assert first.status_code == 200
        etag = first.headers["etag"]
        answers = {f["key"]: f for f in first.json()["flags"]}
        assert set(answers) == set(DOCUMENT["flags"])
        assert answers["color"]["value"] == "#00f"
        assert answers["kill-switch"] == {
            "key": "kill-switch",
            "reason": "DISABLED",
            "variant": None,
            "metadata": {"flagSetId": "shop/staging"},
        }
        again = http.post(
            url,
            json={"context": {"targetingKey": "u", "tier": "gold"}},
            headers={"If-None-Match": etag},
        )
        assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
        other_context = http.post(
            url, json={"context": {"targetingKey": "v"}}, headers={"If-None-Match": etag}
        )
        assert other_context.status_code == 200 and other_context.headers["etag"] != etag

        with flag_world.http() as admin:
            admin.patch(
                "/api/v1/apps/shop/environments/staging/flags/color", json={"targeting": None}
            )
        changed = http.post(
            url,
            json={"context": {"targetingKey": "u", "tier": "gold"}},
            headers={"If-None-Match": etag},
        )
        assert changed.status_code == 200
        assert {f["key"]: f for f in changed.json()["flags"]}["color"]["value"] == "#f00"

        bad = http.post(url, content=b"{nope")
        assert bad.status_code == 400 and bad.json()["errorCode"] == "INVALID_CONTEXT"
        bad = http.post(url + "/color", json={"context": {"targetingKey": 7}})
        assert bad.status_code == 400 and bad.json() == {
            "key": "color",
            "errorCode": "INVALID_CONTEXT",
            "errorDetails": "context.targetingKey: expected a string",
        }


def test_a_client_key_reads_its_own_environment_only(flag_world):
    flag_world.load("staging", DOCUMENT)
    flag_world.load(
        "production",
        {"flags": {"prod-only": {"state": "ENABLED", "variants": ON_OFF, "defaultVariant": "on"}}},
    )
    staging_key, production_key = flag_world.key("staging"), flag_world.key("production")
    forged = f"lwf_{flag_world.environments['production']}_{staging_key.rsplit('_', 1)[1]}"
    tokens = {role: flag_world.add_token(f"t-{role}", role) for role in ("viewer", "deployer")}
    tokens["admin"] = flag_world.server.token()

    def status(path: str, headers: dict[str, str], method: str = "POST") -> httpx.Response:
        return httpx.request(method, flag_world.server.url + path, headers=headers, json={})

    single = "/ofrep/v1/evaluate/flags/prod-only"
    assert status(single, {"Authorization": f"Bearer {production_key}"}).status_code == 200
    refused = status(single, {"Authorization": f"Bearer {staging_key}"})
    assert refused.status_code == 404 and refused.json()["errorCode"] == "FLAG_NOT_FOUND"
    routes = (
        (single, "POST"),
        ("/ofrep/v1/evaluate/flags", "POST"),
        ("/flagd/v1/flags.json", "GET"),
    )
    for path, method in routes:
        for headers in (
            {"Authorization": f"Bearer {forged}"},
            {"X-API-Key": forged},
            {"Authorization": "Bearer lwf_nope"},
            {"Authorization": f"Basic {production_key}"},
            {},
        ):
            answer = status(path, headers, method)
            assert answer.status_code == 401, (path, headers, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
        for role, token in tokens.items():
            answer = status(path, {"Authorization": f"Bearer {token}"}, method)
            assert answer.status_code == 403, (path, role, answer.text)
            assert "client key" in answer.json()["detail"]

    with flag_world.http(tokens["viewer"]) as viewer:
        answer = viewer.post("/api/v1/apps/shop/environments/staging/flag-key")
        assert answer.status_code == 403
        assert "this needs developer on shop/staging" in answer.json()["detail"]
    client = ofrep_client(flag_world, "staging")
    assert client.get_boolean_details("prod-only", False).error_code == ErrorCode.FLAG_NOT_FOUND


def test_flagd_json_for_flagds_http_sync(flag_world):
    flag_world.load("staging", DOCUMENT)
    auth = {"Authorization": f"Bearer {flag_world.key('staging')}"}
    with httpx.Client(base_url=flag_world.server.url, headers=auth) as http:
        answer = http.get("/flagd/v1/flags.json")
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/json"
        assert answer.json() == DOCUMENT
        assert list(answer.json()) == list(DOCUMENT)  # as given, keys in order
        etag = answer.headers["etag"]
        assert http.get("/flagd/v1/flags.json", headers={"If-None-Match": etag}).status_code == 304
    core = FlagdCore()
    core.set_flags(copy.deepcopy(answer.json()))
    gold = EvaluationContext("user-1", {"tier": "gold"})
    assert core.resolve_string_value("color", "", gold).value == "#00f"


def rollout_answers(client, users: list[str]) -> dict[str, bool]:
    return {u: client.get_boolean_value("new-checkout", False, EvaluationContext(u)) for u in users}


def test_a_rollout_keeps_users_in_their_bucket_as_flagd_does(flag_world):
    flag_world.load("staging", DOCUMENT)
    path = "/api/v1/apps/shop/environments/staging/flags/new-checkout/rollout"
    users = [f"user-{i}" for i in range(2000)]
    with flag_world.http() as http:
        rolled = http.put(path, json={"percent": 30})
        assert rolled.status_code == 200, rolled.text
        assert rolled.json()["rollout"] == {"variant": "on", "percent": 30.0, "rest": "off"}
        document = http.get("/api/v1/apps/shop/environments/staging/flagset").json()
    client = ofrep_client(flag_world, "staging")
    answers = rollout_answers(client, users)
    share = sum(answers.values()) / len(users)
    assert abs(share - 0.30) < 4 * (0.3 * 0.7 / len(users)) ** 0.5

    core = FlagdCore()  # what flagd's in-process provider runs on this document
    core.set_flags(copy.deepcopy(document))
    for user, value in answers.items():
        assert (
            core.resolve_boolean_value("new-checkout", False, EvaluationContext(user)).value
            == value
        )
    assert rollout_answers(client, users[:300]) == {u: answers[u] for u in users[:300]}

    flag_world.server.kill(signal.SIGTERM)
    flag_world.server.start()
    assert rollout_answers(client, users[:300]) == {u: answers[u] for u in users[:300]}

    with flag_world.http() as http:
        assert http.put(path, json={"percent": 60}).status_code == 200
    raised = rollout_answers(client, users)
    assert {u for u, on in answers.items() if on} < {u for u, on in raised.items() if on}


def test_a_client_that_goes_away_mid_request_leaves_no_traceback(flag_world):
    """It was logged as an unhandled error, with a traceback, twice (laneway's handler and
    uvicorn's): a client going away is nothing wrong."""
    key = flag_world.key("staging")
    address = urlsplit(flag_world.server.url)
    log = flag_world.server.log
    start = log.stat().st_size
    for path in ("/ofrep/v1/evaluate/flags", "/ofrep/v1/evaluate/flags/new-checkout"):
        head = f"POST {path} HTTP/1.1\r\nHost: laneway\r\nAuthorization: Bearer {key}\r\n"
        with socket.create_connection((address.hostname, address.port)) as sock:
            sock.sendall(f"{head}Content-Length: 1000\r\n\r\n".encode() + b'{"context": {')
    # requests after them, served by the same event loop, which has taken in the two that went
    # away before it answers these
    with httpx.Client(base_url=flag_world.server.url, timeout=30) as http:
        for _ in range(3):
            answer = http.post(
                "/ofrep/v1/evaluate/flags", headers={"Authorization": f"Bearer {key}"}, json={}
            )
            assert answer.status_code == 200
    written = log.read_bytes()[start:].decode(errors="replace")
    assert "Traceback" not in written, written
    assert "unhandled error" not in written, written
