"""settings.py and addresses.py: the variables README's "Settings" lists, their defaults, the
paths derived from them, and one line naming the variable when a value is bad."""

from __future__ import annotations

from pathlib import Path

import pytest

from laneway.addresses import Address, parse_address
from laneway.errors import InvalidInput
from laneway.settings import load_settings


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("127.0.0.1:8080", Address("127.0.0.1", 8080)),
        ("localhost:1", Address("localhost", 1)),
        ("[::1]:65535", Address("::1", 65535)),
        ("0.0.0.0:7070", Address("0.0.0.0", 7070)),
    ],
)
def test_addresses(text: str, address: Address):
    assert parse_address(text) == address
    assert str(address) == text


@pytest.mark.parametrize(
    "text", ["localhost", ":80", "host:", "host:http", "host:65536", "host:-1", "host:８０"]
)
def test_bad_addresses(text: str):
    with pytest.raises(ValueError, match=r"expected HOST:PORT such as 127\.0\.0\.1:8080, got "):
        parse_address(text)


def test_port_zero_only_where_any_port_will_do():
    assert parse_address("127.0.0.1:0", any_port=True) == Address("127.0.0.1", 0)
    with pytest.raises(ValueError):
        parse_address("127.0.0.1:0")


def test_defaults_and_derived_paths(tmp_path: Path):
    settings = load_settings(environ={"LANEWAY_HOME": str(tmp_path)})
    assert settings.home == tmp_path
    assert settings.api == ("127.0.0.1", 7070) and settings.router == ("127.0.0.1", 8080)
    assert settings.api_url == "http://127.0.0.1:7070"
    assert settings.router_url == "http://127.0.0.1:8080"
    assert settings.postgres_url == "postgresql://postgres@127.0.0.1:5432/postgres"
    assert settings.port_range == (20000, 29999)
    assert settings.flags_sync_address == "127.0.0.1:8015"
    assert settings.artifacts == tmp_path / "artifacts"
    assert settings.state_dir == tmp_path / "state"
    assert settings.environments_dir == tmp_path / "environments"
    assert settings.logs_dir == tmp_path / "logs"
    assert settings.client_config == tmp_path / "client.json"
    assert settings.database_url == f"sqlite:///{tmp_path / 'state' / 'laneway.db'}"
    assert settings.domain == "localhost"
    assert len(settings.owner) == 10
    assert load_settings(environ={}).home == Path.home() / ".laneway"


def test_every_variable(tmp_path: Path):
    settings = load_settings(
        environ={
            "LANEWAY_HOME": "~/lw",
            "LANEWAY_API": "0.0.0.0:7000",
            "LANEWAY_ROUTER": "[::1]:8000",
            "LANEWAY_POSTGRES_URL": "postgresql://pg@db/postgres",
            "LANEWAY_ARTIFACTS": str(tmp_path / "artifacts"),
            "LANEWAY_PORTS": "30000-30099",
            "LANEWAY_FLAGS_SYNC": "off",
            "LANEWAY_STORE_URL": "postgresql://pg@db/laneway",
            "LANEWAY_URL": "http://elsewhere:7070",  # the CLI's, not a setting
        }
    )
    assert settings.home == Path.home() / "lw"
    assert settings.api_url == "http://127.0.0.1:7000", "a wildcard is reached on loopback"
    assert settings.router_url == "http://[::1]:8000"
    assert settings.postgres_url == "postgresql://pg@db/postgres"
    assert settings.artifacts == tmp_path / "artifacts"
    assert settings.port_range == (30000, 30099)
    assert settings.flags_sync is None and settings.flags_sync_address is None
    assert settings.database_url == "postgresql://pg@db/laneway"


def test_options_override_their_variables_and_empty_variables_count_as_unset():
    settings = load_settings(
        api="127.0.0.1:1",
        flags_sync="OFF",
        environ={"LANEWAY_API": "127.0.0.1:2", "LANEWAY_ROUTER": "", "LANEWAY_PORTS": ""},
    )
    assert settings.api == ("127.0.0.1", 1) and settings.flags_sync is None
    assert settings.router == ("127.0.0.1", 8080) and settings.port_range == (20000, 29999)


def test_router_limits_are_the_routers_own_defaults_unless_a_variable_sets_them():
    assert load_settings(environ={}).router_limits == {}
    settings = load_settings(
        environ={
            "LANEWAY_ROUTER_MAX_CONNECTIONS": "20000",
            "LANEWAY_ROUTER_HEAD_TIMEOUT": "5",
            "LANEWAY_ROUTER_BODY_TIMEOUT": "30",
            "LANEWAY_ROUTER_SEND_TIMEOUT": "30",
            "LANEWAY_ROUTER_TUNNEL_TIMEOUT": "600",
        }
    )
    assert settings.router_limits == {
        "max_connections": 20000,
        "head_timeout": 5,
        "body_timeout": 30,
        "send_timeout": 30,
        "tunnel_timeout": 600,
    }


def test_the_environment_given_is_the_only_one_read(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LANEWAY_API", "nonsense")
    assert load_settings(environ={}).api == ("127.0.0.1", 7070)
    with pytest.raises(InvalidInput):
        load_settings()


def test_the_owner_tells_homes_and_stores_apart(tmp_path: Path):
    home = {"LANEWAY_HOME": str(tmp_path)}
    owner = load_settings(environ=home).owner
    assert load_settings(environ=home).owner == owner
    assert load_settings(environ={"LANEWAY_HOME": str(tmp_path / "b")}).owner != owner
    assert load_settings(environ=home | {"LANEWAY_STORE_URL": "postgresql://x"}).owner != owner


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"LANEWAY_API": "localhost"},
            "LANEWAY_API (--api): expected HOST:PORT such as 127.0.0.1:8080, got 'localhost'",
        ),
        (
            {"LANEWAY_ROUTER": "127.0.0.1:80800"},
            "LANEWAY_ROUTER (--router): expected HOST:PORT such as 127.0.0.1:8080, "
            "got '127.0.0.1:80800'",
        ),
        (
            {"LANEWAY_FLAGS_SYNC": "on"},
            "LANEWAY_FLAGS_SYNC (--flags-sync): expected HOST:PORT such as 127.0.0.1:8080, "
            "got 'on'",
        ),
        (
            {"LANEWAY_PORTS": "30000-20000"},
            "LANEWAY_PORTS: expected a range like 20000-29999, got '30000-20000'",
        ),
        ({"LANEWAY_PORTS": "80-90"}, "LANEWAY_PORTS: expected a range like 20000-29999"),
        (
            {"LANEWAY_ROUTER_HEAD_TIMEOUT": "0"},
            "LANEWAY_ROUTER_HEAD_TIMEOUT: Input should be greater than 0",
        ),
        (
            {"LANEWAY_ROUTER_MAX_CONNECTIONS": "lots"},
            "LANEWAY_ROUTER_MAX_CONNECTIONS: Input should be a valid integer",
        ),
        (
            {"LANEWAY_PORTS": "x", "LANEWAY_API": "y"},
            "LANEWAY_API (--api): expected HOST:PORT such as 127.0.0.1:8080, got 'y'; "
            "LANEWAY_PORTS: expected a range like 20000-29999, got 'x'",
        ),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(environ: dict[str, str], message: str):
    with pytest.raises(InvalidInput) as caught:
        load_settings(environ=environ)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_prometheus_is_off_unless_its_url_is_set_and_its_token_is_never_shown():
    settings = load_settings(environ={})
    assert (settings.prometheus_url, settings.prometheus_token) == (None, None)
    assert settings.prometheus_timeout == 5.0
    settings = load_settings(
        environ={
            "LANEWAY_PROMETHEUS_URL": "https://prometheus.internal:9090/prom",
            "LANEWAY_PROMETHEUS_TOKEN": "s3cret",
            "LANEWAY_PROMETHEUS_TIMEOUT": "2.5",
        }
    )
    assert settings.prometheus_url == "https://prometheus.internal:9090/prom"
    assert settings.prometheus_token is not None
    assert settings.prometheus_token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings) and settings.prometheus_timeout == 2.5


@pytest.mark.parametrize(
    "url",
    [
        "prometheus:9090",
        "ftp://p",
        "http://",
        "http:///x",
        "http://p:99999",
        "http://[::1",
        "admin:hunter2@p:9090",
    ],
)
def test_a_bad_prometheus_url_is_named_and_not_echoed(url: str):
    with pytest.raises(InvalidInput) as caught:
        load_settings(environ={"LANEWAY_PROMETHEUS_URL": url})
    assert str(caught.value) == (
        "LANEWAY_PROMETHEUS_URL: expected an http:// or https:// URL, like http://prometheus:9090"
    )
