"""Everything that differs between two laneway instances on one machine, read from the environment.

Tests and benchmarks run several instances side by side, each with its own LANEWAY_HOME and
addresses; nothing else is global. The variables (README's "Settings") are read and checked by
pydantic-settings; a bad one is an `InvalidInput` of one line naming it, which the CLI prints
before exiting 2.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    ValidationError,
)
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

from laneway.addresses import Address, parse_address
from laneway.errors import InvalidInput

DEFAULT_API = "127.0.0.1:7070"
DEFAULT_ROUTER = "127.0.0.1:8080"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_FLAGS_SYNC = "127.0.0.1:8015"
"""flagd's sync service for in-process providers (their default port); `off` disables it."""


def _address(value: Any) -> Any:
    return parse_address(value) if isinstance(value, str) else value


def _address_or_off(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() == "off":
        return None
    return _address(value)


def _http_url(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        parts = urlsplit(value)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 (raises for a port that is not one)
    except ValueError:
        usable = False
    if not usable:
        # not echoed: the URL may carry a password
        raise ValueError("expected an http:// or https:// URL, like http://prometheus:9090")
    return value


def _port_range(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    low, _, high = value.partition("-")
    if not (low.isdigit() and high.isdigit() and 1024 <= int(low) < int(high) < 65536):
        raise ValueError(f"expected a range like 20000-29999, got {value!r}")
    return int(low), int(high)


# NoDecode: the value is text to parse, not JSON (which pydantic-settings tries for tuples)
AddressSetting = Annotated[Address, NoDecode, BeforeValidator(_address)]
PortRange = Annotated[tuple[int, int], NoDecode, BeforeValidator(_port_range)]


class Settings(BaseSettings):
    """One instance's settings: LANEWAY_<FIELD> (LANEWAY_PORTS for the port range); an empty
    variable counts as unset."""

    model_config = SettingsConfigDict(env_prefix="LANEWAY_", env_ignore_empty=True, frozen=True)

    home: Annotated[Path, AfterValidator(Path.expanduser)] = Field(
        default_factory=lambda: Path.home() / ".laneway"
    )
    api: AddressSetting = parse_address(DEFAULT_API)
    router: AddressSetting = parse_address(DEFAULT_ROUTER)
    postgres_url: str = DEFAULT_POSTGRES
    artifacts_dir: Path | None = Field(None, validation_alias="LANEWAY_ARTIFACTS")
    port_range: PortRange = Field((20000, 29999), validation_alias="LANEWAY_PORTS")
    store_url: str | None = None
    flags_sync: Annotated[Address | None, NoDecode, BeforeValidator(_address_or_off)] = (
        parse_address(DEFAULT_FLAGS_SYNC)
    )
    """flagd sync (gRPC) address, or None when LANEWAY_FLAGS_SYNC is `off`."""
    router_max_connections: PositiveInt | None = None
    router_head_timeout: PositiveFloat | None = None
    router_body_timeout: PositiveFloat | None = None
    router_send_timeout: PositiveFloat | None = None
    router_tunnel_timeout: PositiveFloat | None = None
    """The built-in router's limits (docs/router.md); None leaves the router's default."""
    router_data_plane: Literal["builtin", "haproxy"] = "builtin"
    """What serves the routing table on the router address: laneway's own router, or an
    HAProxy that laneway runs (docs/router.md, "HAProxy as the data plane")."""
    prometheus_url: Annotated[str | None, AfterValidator(_http_url)] = None
    """The team's Prometheus (`http://prometheus:9090`), asked for a canary's `metrics`."""
    prometheus_token: SecretStr | None = None
    """Sent to it as `Authorization: Bearer …`, if set."""
    prometheus_timeout: PositiveFloat = 5.0
    """Seconds one query may take, answer included."""
    api_docs: bool = True
    """`/docs` and `/openapi.json`, to callers with a token; `off` turns both off (404)."""
    domain: ClassVar[str] = "localhost"  # hostnames are <name>.<app>.localhost; no variable

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The arguments, then the environment: the one `load_settings` was given, or
        os.environ. No .env file, no secrets directory."""
        environ = _environ.get()
        if environ is None:
            return init_settings, env_settings
        return init_settings, _Environment(settings_cls, environ)

    @property
    def artifacts(self) -> Path:
        return (self.artifacts_dir or self.home / "artifacts").expanduser()

    @property
    def state_dir(self) -> Path:
        return self.home / "state"

    @property
    def environments_dir(self) -> Path:
        return self.home / "environments"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def database_url(self) -> str:
        return self.store_url or f"sqlite:///{self.state_dir / 'laneway.db'}"

    @property
    def audit_key(self) -> Path:
        """The key that signs the audit log's checkpoint (0600, made on first use): kept
        out of the store, so a copy of the store alone cannot forge it."""
        return self.state_dir / "audit.key"

    @property
    def client_config(self) -> Path:
        return self.home / "client.json"

    @property
    def flags_sync_address(self) -> str | None:
        """`HOST:PORT` of flagd sync, or None when it is off."""
        return None if self.flags_sync is None else str(self.flags_sync)

    @property
    def api_url(self) -> str:
        """The API's base URL as processes on this machine reach it (a wildcard listen
        address is reached on loopback)."""
        host, port = self.api
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return f"http://{Address(host, port)}"

    @property
    def owner(self) -> str:
        """A short id of this instance, stamped on every process and database it creates.

        It covers the store too: a new, empty store never mistakes another store's
        environments for orphans of its own."""
        identity = f"{self.home.resolve()}\n{self.database_url}"
        return hashlib.sha256(identity.encode()).hexdigest()[:10]

    @property
    def router_url(self) -> str:
        return f"http://{self.router}"

    @property
    def router_limits(self) -> dict[str, float]:
        """The router limits set by a variable, by option name (`max_connections`)."""
        limits = {
            "max_connections": self.router_max_connections,
            "head_timeout": self.router_head_timeout,
            "body_timeout": self.router_body_timeout,
            "send_timeout": self.router_send_timeout,
            "tunnel_timeout": self.router_tunnel_timeout,
        }
        return {name: value for name, value in limits.items() if value is not None}

    def make_dirs(self) -> None:
        """The state directories, readable by this user only: they hold database passwords,
        the instance secret and every environment's logs."""
        for path in (self.home, self.state_dir, self.environments_dir, self.logs_dir):
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o700)


_environ: ContextVar[Mapping[str, str] | None] = ContextVar("environ", default=None)


class _Environment(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping instead of os.environ:
    tests and benchmarks read the settings of other instances than their own."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.env_vars = parse_env_vars(
            environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


OPTIONS = {"api": "--api", "router": "--router", "flags_sync": "--flags-sync"}
"""Settings that `laneway server` also takes as an option."""


def load_settings(
    *,
    api: str | None = None,
    router: str | None = None,
    flags_sync: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """The settings from `environ` (default os.environ), the options given overriding their
    variables. Raises InvalidInput naming the variable when a value is bad."""
    given = {"api": api, "router": router, "flags_sync": flags_sync}
    options: dict[str, Any] = {name: value for name, value in given.items() if value}
    token = _environ.set(environ)
    try:
        return Settings(**options)
    except ValidationError as exc:
        raise InvalidInput("; ".join(_problem(error) for error in exc.errors())) from None
    finally:
        _environ.reset(token)


def _problem(error: ErrorDetails) -> str:
    """`LANEWAY_PORTS: expected a range like 20000-29999, got '5'` from a pydantic error."""
    field = str(error["loc"][0]) if error["loc"] else ""
    name = field if field.startswith("LANEWAY_") else f"LANEWAY_{field.upper()}"
    if field in OPTIONS:
        name = f"{name} ({OPTIONS[field]})"
    reason = error.get("ctx", {}).get("error") or error["msg"]
    return f"{name}: {reason}"
