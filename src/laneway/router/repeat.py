"""A keep-alive client's last request head, kept so that the next one can repeat it cheaply.

Clients on a keep-alive connection mostly send the same headers request after request (a
browser for resources of one kind, an API client or a poller always; a load balancer in
front that multiplexes clients does not). `router.proxy` keeps what the last head came to
here: the header block the backend got (`router.headers.rewrite_headers`), the host, the
framing flags, and the routing decision made in the table that was current. When the next
request's headers compare equal (one list comparison, in C), only its request line is
built and, in the same table, the decision is taken again: the same pool, or a fresh draw
for a client of a split route that brought no bucket. Anything else (another table, an
absolute-form target, an upgrade, an error) is worked out in full, as without it. A
connection whose heads keep differing (`GIVE_UP` in a row) is not watched any more: it
then costs nothing.
Deciding only: no I/O.
"""

from __future__ import annotations

from laneway.router.headers import LINE_PARTS
from laneway.router.table import PoolTarget, RouteMap, Target

GIVE_UP = 16
"""Heads in a row that did not repeat the last, after which a connection stops keeping them."""


class LastHead:
    """What the connection's last routed request head came to (one per connection)."""

    __slots__ = (
        "headers",
        "parts",
        "_block",
        "host",
        "has_body",
        "chunked",
        "routes",
        "target",
        "pool",
        "drew",
        "misses",
    )

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] | None = None
        """The request's headers as parsed; None when nothing is kept."""
        self.parts: list[bytes] = []
        self._block: bytes | None = None
        self.host: bytes | None = None
        self.has_body = False
        self.chunked = False
        self.routes: RouteMap | None = None
        """The table the decision below was made in; another table decides afresh."""
        self.target: Target | None = None
        self.pool: PoolTarget | None = None
        self.drew = False
        """Whether the client's bucket was drawn: it brought none, so each repeat draws."""
        self.misses = 0
        """Heads kept since the last repeat."""

    @property
    def block(self) -> bytes:
        """The header block, joined when a repeat first needs it: a head that is never
        repeated costs no more than keeping a reference to its parts."""
        block = self._block
        if block is None:
            block = self._block = b"".join(self.parts[LINE_PARTS:])
        return block

    def keep(
        self,
        headers: list[tuple[bytes, bytes]],
        parts: list[bytes],
        host: bytes | None,
        has_body: bool,
        chunked: bool,
    ) -> None:
        self.headers = headers
        self.parts = parts
        self._block = None
        self.misses += 1
        self.host = host
        self.has_body = has_body
        self.chunked = chunked
        self.routes = None

    def decided(
        self, routes: RouteMap, target: Target, pool: PoolTarget | None, drew: bool
    ) -> None:
        self.routes = routes
        self.target = target
        self.pool = pool
        self.drew = drew
