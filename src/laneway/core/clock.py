"""Time enters the controllers as an argument: `Clock` is any callable returning seconds since
the epoch (`time.time` in production), and `FakeClock` is one that tests move by hand. Pure."""

from __future__ import annotations

from typing import Protocol

START = 1_800_000_000.0


class Clock(Protocol):
    def __call__(self) -> float: ...


class FakeClock:
    def __init__(self, start: float = START) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now
