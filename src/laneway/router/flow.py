"""Backpressure for the built-in router: pause a socket's reading while its bytes cannot go on.

Used by `router.proxy` and `router.relay` (client side) and `router.upstream` (backend
side). A proxied byte stream has a reader and a writer on different sockets; when the
writer's send buffer passes its high-water mark, asyncio calls `pause_writing()` on the
writer's protocol, which pauses the reader here, and `resume_writing()` undoes it. A client
connection may also be paused for reasons of its own (a pipelined request waits for its
turn, a request body waits for a backend connection), so a gate holds a set of reasons and
reads again only when none holds. No I/O of its own beyond `pause_reading`/`resume_reading`.
"""

from __future__ import annotations

import asyncio

# Reasons a gate is shut; bits, so that several may hold at once.
PEER_FULL = 1  # the socket these bytes are forwarded to has a full send buffer
WAITING = 2  # the bytes have nowhere to go yet (pipelined request, backend still connecting)

# How much request body the router holds while a backend connection is being made.
BUFFER_LIMIT = 256 * 1024


class ReadGate:
    """Pauses one transport's reading while any reason holds, resumes it when none does."""

    __slots__ = ("_transport", "reasons")

    def __init__(self, transport: asyncio.ReadTransport) -> None:
        self._transport = transport
        self.reasons = 0

    @property
    def paused(self) -> bool:
        return self.reasons != 0

    def pause(self, reason: int) -> None:
        if not self.reasons and not self._transport.is_closing():
            self._transport.pause_reading()
        self.reasons |= reason

    def resume(self, reason: int) -> None:
        if not self.reasons & reason:
            return
        self.reasons &= ~reason
        if not self.reasons and not self._transport.is_closing():
            self._transport.resume_reading()
