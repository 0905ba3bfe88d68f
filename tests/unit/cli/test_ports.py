"""The ports laneway listens on by default: a taken one is named with the option that
moves it, and `laneway demo` moves a taken default to a free port and says so."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from laneway import server
from laneway.addresses import Address
from laneway.cli import demo
from laneway.errors import Unavailable
from laneway.settings import load_settings


@pytest.fixture
def taken() -> Iterator[int]:
    """A port on 127.0.0.1 that something listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def free() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("what", "option"),
    [
        ("API", "--api HOST:PORT (LANEWAY_API)"),
        ("router", "--router HOST:PORT (LANEWAY_ROUTER)"),
        ("flags sync", "--flags-sync HOST:PORT or `off` (LANEWAY_FLAGS_SYNC)"),
    ],
)
def test_a_taken_port_is_named_with_the_option_that_moves_it(
    taken: int, what: str, option: str
) -> None:
    with pytest.raises(Unavailable) as raised:
        server.check_port_free("127.0.0.1", taken, what=what)
    assert raised.value.message.startswith(f"{what} address 127.0.0.1:{taken} is not available")
    assert raised.value.hint is not None and raised.value.hint.endswith(f"with {option}")


def settings_with(tmp_path: Path, **addresses: str):  # type: ignore[no-untyped-def]
    environ = {"LANEWAY_HOME": str(tmp_path)}
    environ.update({f"LANEWAY_{k.upper()}": v for k, v in addresses.items()})
    return load_settings(environ=environ)


def test_the_demo_moves_a_taken_default_port_and_says_so(tmp_path: Path, taken: int) -> None:
    settings = settings_with(
        tmp_path,
        api=f"127.0.0.1:{free()}",
        router=f"127.0.0.1:{free()}",
        flags_sync=f"127.0.0.1:{taken}",
    )
    said = io.StringIO()
    moved = demo.with_free_ports(
        settings, given={"api", "router"}, console=Console(file=said, width=200)
    )
    assert moved.api == settings.api and moved.router == settings.router
    assert moved.flags_sync is not None and moved.flags_sync.port != taken
    assert server.port_is_free(*moved.flags_sync) is None
    assert said.getvalue() == (
        f"the flags sync's port {taken} is taken: the demo uses {moved.flags_sync} instead "
        "(choose with --flags-sync HOST:PORT or `off` (LANEWAY_FLAGS_SYNC))\n"
    )


def test_the_demo_keeps_an_address_it_was_given(tmp_path: Path, taken: int) -> None:
    """Given one (an option or its variable), the server refuses it, naming the option."""
    settings = settings_with(tmp_path, api=f"127.0.0.1:{taken}", router=f"127.0.0.1:{free()}")
    said = io.StringIO()
    kept = demo.with_free_ports(settings, given={"api"}, console=Console(file=said))
    assert kept.api == Address("127.0.0.1", taken)
    assert "API" not in said.getvalue()
