"""flagd's sync protocol for flagd's in-process providers: `flagd.sync.v1.FlagSyncService`.

A gRPC server (`grpc.aio`, in the control plane's event loop) on its own address
(`LANEWAY_FLAGS_SYNC`, default 127.0.0.1:8015, the in-process providers' default port):

    SyncFlags      stream: the environment's flag set (flagd JSON) now, and again on every change
    FetchAllFlags  the environment's flag set once
    GetMetadata    empty metadata (providers ask for it without a selector; it names nothing)

The messages and the service are flagd's published schema, as generated in the stubs that
openfeature-provider-flagd ships (`openfeature.schemas.protobuf.flagd.sync.v1`).

**Which environment.** The caller's selector is an environment's client key: the providers
send their `selector` both as the `flagd-selector` metadata header and in the request's
`selector` field (`FLAGD_SOURCE_SELECTOR`, or `selector=` in the Python provider). The header
wins when both are sent; `authorization: Bearer <key>` metadata is taken too, for clients that
can set headers but no selector. The key is checked as OFREP checks it (a MAC over the
environment's id, compared in constant time), and it alone says which environment is
served: a missing or unknown key is refused with UNAUTHENTICATED, a key whose environment no
longer exists with NOT_FOUND.

The document sent is `export_flag_set` of the parsed set, exactly what
`GET /flagd/v1/flags.json` serves. A stream resends it when the stored version changes
(`FlagService.wait_for_change`, woken by the store's listener, with a periodic recheck that
also catches writes by another process) and skips a resend whose document is unchanged.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import TypeVar

import grpc
from google.protobuf.struct_pb2 import Struct
from openfeature.schemas.protobuf.flagd.sync.v1 import sync_pb2, sync_pb2_grpc

from laneway.api.flag_service import FlagService
from laneway.flags import export_flag_set

log = logging.getLogger("laneway.flagd_sync")

RECHECK = 10.0
"""Seconds a stream waits for a change notice before asking the store for the version."""
SHUTDOWN_GRACE = 1.0
"""Seconds open streams get to finish when the server stops; then they are cancelled."""

Request = TypeVar("Request")
Response = TypeVar("Response")
Context = grpc.aio.ServicerContext

HINT = "the selector must be an environment's client key (`laneway flags key --env ENV`)"


def _presented_key(request: object, context: Context[Request, Response]) -> str:
    metadata = {k.lower(): v for k, v in (context.invocation_metadata() or ())}
    selector = metadata.get("flagd-selector")
    if isinstance(selector, str) and selector.strip():
        return selector.strip()
    body = str(getattr(request, "selector", "") or "").strip()
    if body:
        return body
    authorization = metadata.get("authorization")
    if isinstance(authorization, str):
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return ""


class FlagSyncServicer(sync_pb2_grpc.FlagSyncServiceServicer):
    def __init__(self, service: FlagService) -> None:
        self.service = service

    async def _environment(self, request: object, context: Context[Request, Response]) -> str:
        key = _presented_key(request, context)
        if not key:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, f"missing client key: {HINT}")
        environment_id = self.service.environment_of(key)
        if environment_id is None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, f"unknown client key: {HINT}")
        return environment_id

    async def _document(
        self, environment_id: str, context: Context[Request, Response]
    ) -> tuple[int, str]:
        """The environment's version and its flag set as flagd JSON; the version is read
        first, so a change after it is never missed (at worst the set is sent twice)."""

        def read() -> tuple[int, str] | None:
            version = self.service.store.version(environment_id)
            flag_set = self.service.load(environment_id) if version is not None else None
            if version is None or flag_set is None:
                return None
            return version, json.dumps(export_flag_set(flag_set), ensure_ascii=False)

        found = await asyncio.to_thread(read)
        if found is None:
            await context.abort(
                grpc.StatusCode.NOT_FOUND, "the environment of this client key no longer exists"
            )
        return found

    async def SyncFlags(  # noqa: N802 (the schema's name)
        self,
        request: sync_pb2.SyncFlagsRequest,
        context: Context[sync_pb2.SyncFlagsRequest, sync_pb2.SyncFlagsResponse],
    ) -> AsyncIterator[sync_pb2.SyncFlagsResponse]:
        environment_id = await self._environment(request, context)
        sent: str | None = None
        while True:
            version, document = await self._document(environment_id, context)
            if document != sent:
                yield sync_pb2.SyncFlagsResponse(flag_configuration=document)
                sent = document
            current: int | None = version
            while current == version:
                current = await self.service.wait_for_change(
                    environment_id, version, timeout=RECHECK
                )
            # a changed version, or None (destroyed): _document answers both

    async def FetchAllFlags(  # noqa: N802
        self,
        request: sync_pb2.FetchAllFlagsRequest,
        context: Context[sync_pb2.FetchAllFlagsRequest, sync_pb2.FetchAllFlagsResponse],
    ) -> sync_pb2.FetchAllFlagsResponse:
        environment_id = await self._environment(request, context)
        _, document = await self._document(environment_id, context)
        return sync_pb2.FetchAllFlagsResponse(flag_configuration=document)

    async def GetMetadata(  # noqa: N802
        self,
        request: sync_pb2.GetMetadataRequest,
        context: Context[sync_pb2.GetMetadataRequest, sync_pb2.GetMetadataResponse],
    ) -> sync_pb2.GetMetadataResponse:
        # Providers call this before SyncFlags without their selector, so it can name no
        # environment; an empty `metadata` adds nothing to their evaluation context.
        return sync_pb2.GetMetadataResponse(metadata=Struct())


class FlagSyncServer:
    """The gRPC server; `start` binds (raising on a taken address), `stop` ends every stream."""

    def __init__(self, service: FlagService, address: tuple[str, int]) -> None:
        host, port = address
        self.target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._service = service
        self._server: grpc.aio.Server | None = None
        self.port: int | None = None

    async def start(self) -> None:
        server = grpc.aio.server()
        sync_pb2_grpc.add_FlagSyncServiceServicer_to_server(FlagSyncServicer(self._service), server)
        self.port = server.add_insecure_port(self.target)
        await server.start()
        self._server = server
        log.info("flagd sync on %s", self.target)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.stop(SHUTDOWN_GRACE)
