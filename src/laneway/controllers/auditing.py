"""What the controllers change by themselves, in the audit log beside the API's requests: a
canary's steps, its verdicts, a promotion or an abort that no request made at that moment.

Recorded as the principal `laneway` from the source `controller`; `action` says what
happened (`rollout step`). A record that cannot be written is logged, and the rollout goes
on: the log must never hold a release back.
"""

from __future__ import annotations

import logging

from laneway.controllers.context import Context
from laneway.core.audit import AuditRecord, Outcome
from laneway.core.types import Environment
from laneway.errors import LanewayError

log = logging.getLogger("laneway.audit")

PRINCIPAL = "laneway"
SOURCE = "controller"


def record(
    ctx: Context,
    environment: Environment,
    action: str,
    *,
    outcome: Outcome = "ok",
    **detail: str | int | float,
) -> None:
    if ctx.audit is None:
        return
    entry = AuditRecord(
        seq=0,
        time="",
        principal=PRINCIPAL,
        token_id=None,
        action=action,
        app=environment.app,
        environment=environment.name,
        outcome=outcome,
        status=0,
        source=SOURCE,
        detail=dict(detail),
    )
    try:
        ctx.audit.append(entry)
    except LanewayError as exc:
        log.error("audit: %s of %s/%s was not recorded: %s", action, *_where(environment), exc)
    except Exception:  # the log must never hold a rollout back
        log.exception("audit: %s of %s/%s was not recorded", action, *_where(environment))


def _where(environment: Environment) -> tuple[str, str]:
    return environment.app, environment.name
