"""flagd's sync protocol served by a real laneway server, read by the published
openfeature-provider-flagd in in-process mode (and by the schema's generated stubs): flags
resolve locally, changes arrive on the stream, a client key reaches its own environment only,
and OFREP and the in-process provider put each of 10,000 users in the same bucket."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import httpx
import pytest
from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason
from openfeature.provider import ProviderStatus
from openfeature.schemas.protobuf.flagd.sync.v1 import sync_pb2, sync_pb2_grpc

from laneway.testing import wait_until

pytestmark = pytest.mark.integration

ON_OFF = {"on": True, "off": False}


def document(flag_set_id: str, default: str = "on") -> dict:
    return {
        "metadata": {"flagSetId": flag_set_id},
        "flags": {
            "new-checkout": {"state": "ENABLED", "variants": ON_OFF, "defaultVariant": default},
            "color": {
                "state": "ENABLED",
                "variants": {"red": "#f00", "blue": "#00f"},
                "defaultVariant": "red",
                "targeting": {"if": [{"==": [{"var": "tier"}, "gold"]}, "blue", None]},
            },
            "retries": {
                "state": "ENABLED",
                "variants": {"few": 2, "many": 5},
                "defaultVariant": "few",
            },
            "kill-switch": {"state": "DISABLED", "variants": ON_OFF, "defaultVariant": "on"},
        },
    }


class Providers:
    """In-process providers pointed at the server's sync port, each under its own domain."""

    def __init__(self, world) -> None:
        self.world = world
        self.made: list[FlagdProvider] = []

    def provider(self, key: str | None, **options) -> FlagdProvider:
        host, port = self.world.server.flags_sync
        options.setdefault("deadline_ms", 10_000)
        provider = FlagdProvider(
            resolver_type=ResolverType.IN_PROCESS,
            host=host,
            port=port,
            selector=key,
            retry_backoff_ms=200,
            retry_backoff_max_ms=500,
            **options,
        )
        self.made.append(provider)
        return provider

    def client(self, key: str | None, domain: str, **options):
        """A client whose provider has synced (its initialization waited for)."""
        api.set_provider_and_wait(self.provider(key, **options), domain)
        return api.get_client(domain)

    def refused(self, key: str | None, domain: str, **options):
        """A client whose provider's initialization is expected to fail."""
        api.set_provider(self.provider(key, **options), domain)
        client = api.get_client(domain)
        wait_until(
            lambda: client.get_provider_status() != ProviderStatus.NOT_READY,
            timeout=10,
            what="the provider's initialization to fail",
        )
        return client

    def close(self) -> None:
        api.clear_providers()
        for provider in self.made:
            provider.shutdown()


@pytest.fixture
def providers(flag_world) -> Iterator[Providers]:
    made = Providers(flag_world)
    try:
        yield made
    finally:
        made.close()


def stub(world) -> tuple[grpc.Channel, sync_pb2_grpc.FlagSyncServiceStub]:
    host, port = world.server.flags_sync
    channel = grpc.insecure_channel(f"{host}:{port}")
    return channel, sync_pb2_grpc.FlagSyncServiceStub(channel)


def test_an_in_process_provider_resolves_flags_synced_from_laneway(flag_world, providers):
    flag_world.load("staging", document("shop/staging"))
    client = providers.client(flag_world.key("staging"), "sync-staging")
    assert client.get_provider_status() == ProviderStatus.READY

    details = client.get_boolean_details("new-checkout", False)
    assert (details.value, details.variant, details.reason) == (True, "on", Reason.STATIC)
    gold = client.get_string_details("color", "", EvaluationContext("u1", {"tier": "gold"}))
    assert (gold.value, gold.variant, gold.reason) == ("#00f", "blue", Reason.TARGETING_MATCH)
    assert client.get_string_value("color", "", EvaluationContext("u2", {"tier": "x"})) == "#f00"
    assert client.get_integer_value("retries", 0) == 2
    disabled = client.get_boolean_details("kill-switch", False)
    assert (disabled.value, disabled.reason) == (False, Reason.DISABLED)
    missing = client.get_boolean_details("nope", True)
    assert (missing.value, missing.error_code) == (True, ErrorCode.FLAG_NOT_FOUND)


def test_a_change_reaches_the_in_process_provider_as_it_happens(flag_world, providers):
    flag_world.load("staging", document("shop/staging"))
    client = providers.client(flag_world.key("staging"), "sync-change")
    assert client.get_boolean_value("new-checkout", False) is True
    path = "/api/v1/apps/shop/environments/staging/flags/new-checkout"
    with flag_world.http() as http:
        assert http.patch(path, json={"defaultVariant": "off"}).status_code == 200
    wait_until(
        lambda: client.get_boolean_details("new-checkout", True).variant == "off",
        timeout=5,
        what="the change on the sync stream",
    )
    flag_world.server.cli(
        "flags", "set", "new-checkout", "--app", "shop", "--env", "staging", "off"
    )
    wait_until(
        lambda: client.get_boolean_details("new-checkout", True).reason == Reason.DISABLED,
        timeout=5,
        what="the CLI's change on the sync stream",
    )


def test_a_bad_or_missing_key_is_refused(flag_world, providers):
    channel, sync = stub(flag_world)
    with channel:
        for metadata in ((), (("flagd-selector", "lwf_nope_" + "A" * 43),)):
            with pytest.raises(grpc.RpcError) as refused:
                sync.FetchAllFlags(sync_pb2.FetchAllFlagsRequest(), metadata=metadata, timeout=5)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            stream = sync.SyncFlags(sync_pb2.SyncFlagsRequest(), metadata=metadata, timeout=5)
            with pytest.raises(grpc.RpcError) as refused:
                next(iter(stream))
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        forged = flag_world.key("staging")[:-4] + "AAAA"
        with pytest.raises(grpc.RpcError) as refused:
            sync.FetchAllFlags(sync_pb2.FetchAllFlagsRequest(selector=forged), timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED

    fatal = providers.refused(forged, "sync-fatal", fatal_status_codes=["UNAUTHENTICATED"])
    assert fatal.get_provider_status() == ProviderStatus.FATAL
    not_ready = providers.refused(forged, "sync-bad", deadline_ms=1500)
    assert not_ready.get_provider_status() == ProviderStatus.ERROR
    details = not_ready.get_boolean_details("new-checkout", False)
    assert details.value is False and details.error_code is not None


def test_one_environments_key_does_not_get_anothers_flags(flag_world, providers):
    flag_world.load("staging", document("shop/staging", default="on"))
    flag_world.load("production", document("shop/production", default="off"))
    staging_key, production_key = flag_world.key("staging"), flag_world.key("production")
    channel, sync = stub(flag_world)
    with channel, httpx.Client(base_url=flag_world.server.url, timeout=30) as http:
        for key, flag_set_id in (
            (staging_key, "shop/staging"),
            (production_key, "shop/production"),
        ):
            fetched = sync.FetchAllFlags(sync_pb2.FetchAllFlagsRequest(selector=key), timeout=5)
            served = json.loads(fetched.flag_configuration)
            assert served["metadata"]["flagSetId"] == flag_set_id
            over_http = http.get("/flagd/v1/flags.json", headers={"Authorization": f"Bearer {key}"})
            assert served == over_http.json()
        # the header wins over the request's field, as in flagd
        fetched = sync.FetchAllFlags(
            sync_pb2.FetchAllFlagsRequest(selector=staging_key),
            metadata=(("flagd-selector", production_key),),
            timeout=5,
        )
        assert json.loads(fetched.flag_configuration)["metadata"]["flagSetId"] == "shop/production"
        assert sync.GetMetadata(sync_pb2.GetMetadataRequest(), timeout=5).metadata == {}

    staging = providers.client(staging_key, "sync-s")
    production = providers.client(production_key, "sync-p")
    assert staging.get_boolean_value("new-checkout", False) is True
    assert production.get_boolean_value("new-checkout", True) is False


def test_ofrep_and_the_in_process_provider_put_10000_users_in_the_same_bucket(
    flag_world, providers
):
    flag_world.load("staging", document("shop/staging"))
    path = "/api/v1/apps/shop/environments/staging/flags/new-checkout/rollout"
    with flag_world.http() as http:
        assert http.put(path, json={"percent": 50}).status_code == 200
    key = flag_world.key("staging")
    client = providers.client(key, "sync-buckets")
    wait_until(
        lambda: (
            client.get_boolean_details("new-checkout", False, EvaluationContext("x")).reason
            == Reason.TARGETING_MATCH
        ),
        timeout=5,
        what="the rollout on the sync stream",
    )
    users = [f"user-{i}" for i in range(10_000)]
    in_process = {
        user: client.get_boolean_details("new-checkout", False, EvaluationContext(user))
        for user in users
    }
    assert {d.reason for d in in_process.values()} == {Reason.TARGETING_MATCH}

    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
    with httpx.Client(
        base_url=flag_world.server.url, headers=headers, limits=limits, timeout=30
    ) as http:

        def single(user: str) -> str:
            response = http.post(
                "/ofrep/v1/evaluate/flags/new-checkout", json={"context": {"targetingKey": user}}
            )
            assert response.status_code == 200, response.text
            return str(response.json()["variant"])

        def bulk(user: str) -> str:
            response = http.post(
                "/ofrep/v1/evaluate/flags", json={"context": {"targetingKey": user}}
            )
            assert response.status_code == 200, response.text
            (flag,) = [f for f in response.json()["flags"] if f["key"] == "new-checkout"]
            return str(flag["variant"])

        with ThreadPoolExecutor(16) as pool:
            over_ofrep = dict(zip(users, pool.map(single, users), strict=True))
            over_bulk = dict(zip(users[:2000], pool.map(bulk, users[:2000]), strict=True))

    assert {u: d.variant for u, d in in_process.items()} == over_ofrep
    assert over_bulk == {u: over_ofrep[u] for u in users[:2000]}
    share = sum(v == "on" for v in over_ofrep.values()) / len(users)
    assert abs(share - 0.5) < 4 * (0.25 / len(users)) ** 0.5
