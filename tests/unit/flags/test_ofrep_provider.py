"""laneway's OFREP bodies read by the published Python OFREP provider (openfeature-provider-ofrep),
its HTTP replaced by a transport adapter that answers from `ofrep.evaluation`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from laneway.flags import evaluate, ofrep, parse_flag_set

requests = pytest.importorskip("requests")
ofrep_provider = pytest.importorskip("openfeature.contrib.provider.ofrep")

NOW = 1_750_000_000.0
ON_OFF = {"on": True, "off": False}
DOC = json.loads((Path(__file__).parent / "flag_set.json").read_text())
FLAGS = parse_flag_set(
    DOC
    | {
        "flags": DOC["flags"]
        | {
            "rollout": {
                "state": "ENABLED",
                "variants": ON_OFF,
                "defaultVariant": "off",
                "targeting": {"fractional": [["on", 50], ["off", 50]]},
            }
        }
    }
)


class LanewayAdapter(requests.adapters.BaseAdapter):
    def send(self, request, **kwargs):
        key = request.path_url.rsplit("/", 1)[-1]
        context = ofrep.read_context(json.loads(request.body or b"{}"))
        status, body = ofrep.evaluation(key, evaluate(FLAGS, key, context, now=NOW))
        response = requests.Response()
        response.status_code = status
        response._content = json.dumps(body).encode()
        response.headers["Content-Type"] = "application/json"
        response.request = request
        response.url = request.url
        return response

    def close(self):
        pass


@pytest.fixture
def client():
    from openfeature import api
    from openfeature.evaluation_context import EvaluationContext

    provider = ofrep_provider.OFREPProvider("http://laneway.test")
    provider.session.mount("http://", LanewayAdapter())
    api.set_provider(provider, "laneway-ofrep-unit")
    yield api.get_client("laneway-ofrep-unit"), EvaluationContext
    api.clear_providers()


@pytest.mark.parametrize(
    ("kind", "key", "attributes", "default", "value", "variant", "reason", "error_code"),
    [
        ("boolean", "static", {}, False, True, "on", "STATIC", None),
        ("string", "color", {"tier": "gold"}, "", "#00f", "blue", "TARGETING_MATCH", None),
        ("string", "color", {}, "", "#f00", "red", "DEFAULT", None),
        ("float", "limits", {}, 0.0, 2.5, "high", "STATIC", None),
        ("object", "theme", {}, {}, {"bg": "#000"}, "dark", "STATIC", None),
        ("boolean", "disabled", {}, False, False, None, "DISABLED", None),
        ("boolean", "code-default", {}, True, True, None, "DEFAULT", None),
        ("boolean", "missing", {}, False, False, None, "ERROR", "FLAG_NOT_FOUND"),
        ("boolean", "from-context", {"pick": "maybe"}, True, True, None, "ERROR", "GENERAL"),
        ("string", "static", {}, "x", "x", None, "ERROR", "TYPE_MISMATCH"),
        ("boolean", "rollout", {}, False, True, "on", "TARGETING_MATCH", None),  # user-2 is "on"
    ],
)
def test_the_published_ofrep_provider_reads_these_bodies(
    client, kind, key, attributes, default, value, variant, reason, error_code
):
    openfeature_client, EvaluationContext = client
    details = getattr(openfeature_client, f"get_{kind}_details")(
        key, default, EvaluationContext("user-2", attributes)
    )
    assert (details.value, details.variant, str(details.reason)) == (value, variant, reason)
    assert (details.error_code and str(details.error_code)) == error_code
