"""Everything that differs between two laneway instances on one machine, read from the environment.

Tests and benchmarks run several instances side by side, each with its own LANEWAY_HOME and
addresses; nothing else is global.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from laneway.errors import InvalidInput

DEFAULT_API = "127.0.0.1:7070"
DEFAULT_ROUTER = "127.0.0.1:8080"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_FLAGS_SYNC = "127.0.0.1:8015"
"""flagd's sync service for in-process providers (their default port); `off` disables it."""


def parse_address(text: str, *, what: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidInput(f"{what}: expected HOST:PORT such as 127.0.0.1:8080, got {text!r}")
    return host.strip("[]"), int(port)


@dataclass(frozen=True)
class Settings:
    home: Path
    api: tuple[str, int]
    router: tuple[str, int]
    postgres_url: str
    artifacts: Path
    port_range: tuple[int, int] = (20000, 29999)
    domain: str = "localhost"
    env: dict[str, str] = field(default_factory=dict)
    flags_sync: tuple[str, int] | None = ("127.0.0.1", 8015)
    """flagd sync (gRPC) address, or None when LANEWAY_FLAGS_SYNC is `off`."""

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
        return self.env.get("LANEWAY_STORE_URL") or f"sqlite:///{self.state_dir / 'laneway.db'}"

    @property
    def client_config(self) -> Path:
        return self.home / "client.json"

    @property
    def flags_sync_address(self) -> str | None:
        """`HOST:PORT` of flagd sync, or None when it is off."""
        if self.flags_sync is None:
            return None
        host, port = self.flags_sync
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    @property
    def api_url(self) -> str:
        """The API's base URL as processes on this machine reach it (a wildcard listen
        address is reached on loopback)."""
        host, port = self.api
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    @property
    def owner(self) -> str:
        """A short id of this instance, stamped on every process and database it creates.

        It covers the store too: a new, empty store never mistakes another store's
        environments for orphans of its own."""
        identity = f"{self.home.resolve()}\n{self.database_url}"
        return hashlib.sha256(identity.encode()).hexdigest()[:10]

    @property
    def router_url(self) -> str:
        host, port = self.router
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def make_dirs(self) -> None:
        """The state directories, readable by this user only: they hold database passwords,
        the instance secret and every environment's logs."""
        for path in (self.home, self.state_dir, self.environments_dir, self.logs_dir):
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o700)


def load_settings(
    *,
    api: str | None = None,
    router: str | None = None,
    flags_sync: str | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    env = dict(os.environ if environ is None else environ)
    home = Path(env.get("LANEWAY_HOME") or Path.home() / ".laneway").expanduser()
    low, _, high = env.get("LANEWAY_PORTS", "20000-29999").partition("-")
    if not (low.isdigit() and high.isdigit() and 1024 <= int(low) < int(high) < 65536):
        raise InvalidInput(
            f"LANEWAY_PORTS: expected a range like 20000-29999, got {env['LANEWAY_PORTS']!r}"
        )
    return Settings(
        home=home,
        api=parse_address(api or env.get("LANEWAY_API") or DEFAULT_API, what="API address"),
        router=parse_address(
            router or env.get("LANEWAY_ROUTER") or DEFAULT_ROUTER, what="router address"
        ),
        postgres_url=env.get("LANEWAY_POSTGRES_URL") or DEFAULT_POSTGRES,
        artifacts=Path(env.get("LANEWAY_ARTIFACTS") or home / "artifacts").expanduser(),
        port_range=(int(low), int(high)),
        env=env,
        flags_sync=_flags_sync(flags_sync or env.get("LANEWAY_FLAGS_SYNC") or DEFAULT_FLAGS_SYNC),
    )


def _flags_sync(text: str) -> tuple[str, int] | None:
    if text.strip().lower() == "off":
        return None
    return parse_address(text, what="flags sync address (LANEWAY_FLAGS_SYNC)")
