"""`POST /api/v1/secrets/rotate`: a new key seals every secret at rest (docs/secrets.md).

An admin's: the rotation (`store/resealing.py`) runs in a thread, while the API and the
controllers go on opening values with either key; nothing that runs restarts.
"""

from __future__ import annotations

import asyncio
from typing import cast

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from laneway.api.auth import Principal, require
from laneway.controllers.context import Context
from laneway.core.types import Role
from laneway.store import resealing

router = APIRouter(prefix="/api/v1")
admin = Depends(require(Role.ADMIN))


class RotationOut(BaseModel):
    configs: int
    """Release configs sealed again with the new key."""
    resources: int
    """Resources' details (their passwords) sealed again."""
    dropped: int
    """Old keys taken out of the keyring."""


@router.post("/secrets/rotate", response_model=RotationOut)
async def rotate(request: Request, principal: Principal = admin) -> RotationOut:
    """Seal every secret at rest with a new key, then drop the old one."""
    ctx = cast(Context, request.app.state.ctx)  # starlette's State holds Any; app.py sets it
    done = await asyncio.to_thread(resealing.rotate, ctx.settings.state_dir, ctx.store, ctx.vault)
    return RotationOut(configs=done.configs, resources=done.resources, dropped=done.dropped)
