"""From a parsed request head to what the built-in router does with it: the head the backend
gets and the pool it is sent to, or the answer the router gives itself.

`router.proxy` calls `dispatch` once per request, from `on_headers_complete`. The head is
rewritten by `router.headers`; the host is matched in the current `RouteMap` and the pool
picked (`router.table`: a route of one pool takes it, a split decides by the client's
bucket); a head whose headers repeat the connection's last one reuses what that came to
(`router.repeat`). Deciding only: no I/O, no forwarding.
"""

from __future__ import annotations

from random import random

from laneway.core.routing import WEIGHT_SCALE
from laneway.router.exchange import Exchange
from laneway.router.headers import request_line, rewrite_request
from laneway.router.repeat import GIVE_UP, LastHead
from laneway.router.table import RouteMap

Headers = list[tuple[bytes, bytes]]


def dispatch(
    ex: Exchange,
    url: bytes,
    authority: bytes | None,
    headers: Headers,
    client_ip: bytes,
    routes: RouteMap,
    last: LastHead,
) -> None:
    """Set `ex.head` and `ex.pool` (and `ex.target`, `ex.bucket`), or `ex.error`."""
    repeatable = authority is None and not ex.upgrade and last.misses < GIVE_UP
    if repeatable and headers == last.headers:
        last.misses = 0
        ex.head = request_line(ex.method, url) + last.block
        ex.has_body, ex.chunked = last.has_body, last.chunked
        if ex.error is not None or ex.method == b"CONNECT":
            _refuse(ex)
        else:
            _route_again(ex, routes, last, headers)
        return
    parts, host = rewrite_request(ex, url, client_ip, headers, authority=authority)
    if ex.error is not None or ex.method == b"CONNECT":
        _refuse(ex)
        return
    if repeatable:
        last.keep(headers, parts, host, ex.has_body, ex.chunked)
    _route(ex, routes, host, headers, last)


def draw() -> int:
    """A fresh client's bucket."""
    return int(random() * WEIGHT_SCALE)


def _refuse(ex: Exchange) -> None:
    if ex.error is None:
        ex.error = (405, "CONNECT is not supported by the laneway router.")


def _route(
    ex: Exchange, routes: RouteMap, host: bytes | None, headers: Headers, last: LastHead
) -> None:
    """Match the host and pick the pool, or set the answer the router gives instead."""
    target = routes.match(host) if host is not None else None
    if target is None:
        where = repr(host.decode("latin-1")) if host is not None else "this address"
        ex.error = (404, f"No environment is served at {where}.")
        return
    ex.target = target
    split = target.split
    if split is None:
        ex.pool = target.pick()
    else:
        ex.pool, ex.bucket = split.choose(headers, draw)
    if ex.pool is None:
        ex.error = (503, target.unavailable_message)
    elif last.headers is headers:
        last.decided(routes, target, ex.pool, ex.bucket is not None)


def _route_again(ex: Exchange, routes: RouteMap, last: LastHead, headers: Headers) -> None:
    """Route a head equal to the last one: in the same table, the same decision."""
    target = last.target
    if last.routes is not routes or target is None:
        last.headers = headers  # equal: the decision made now is kept for the next
        _route(ex, routes, last.host, headers, last)
        return
    ex.target = target
    if last.drew:
        split = target.split
        assert split is not None
        ex.bucket = draw()
        ex.pool = split.pool_for(ex.bucket)
    else:
        ex.pool = last.pool
    if ex.pool is None:
        ex.error = (503, target.unavailable_message)
