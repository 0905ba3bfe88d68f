"""HOST:PORT addresses, parsed in one place: the settings (LANEWAY_API, LANEWAY_ROUTER,
LANEWAY_FLAGS_SYNC, checked by pydantic in `settings.py`) and the router's `--listen`.

Standard library only: the router process imports it at start and must stay light.
"""

from __future__ import annotations

from typing import NamedTuple

EXPECTED = "HOST:PORT such as 127.0.0.1:8080"


class Address(NamedTuple):
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(text: str, *, any_port: bool = False) -> Address:
    """`127.0.0.1:8080`, `[::1]:8080`, `localhost:8080` -> Address. Port 0 (the kernel picks
    a free one) only with `any_port`. A ValueError says what was expected and what came."""
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    lowest = 0 if any_port else 1
    if not (sep and host and port.isascii() and port.isdigit() and lowest <= int(port) <= 65535):
        raise ValueError(f"expected {EXPECTED}, got {text!r}")
    return Address(host, int(port))
