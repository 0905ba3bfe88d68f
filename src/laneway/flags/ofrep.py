"""OFREP bodies: resolutions as the OpenFeature Remote Evaluation Protocol answers them.

Called by the OFREP endpoints (`POST /ofrep/v1/evaluate/flags/{key}` and the bulk
`POST /ofrep/v1/evaluate/flags`), which do the HTTP; this module only says what to answer.
Field names and statuses are OFREP's (open-feature/protocol `service/openapi.yaml`), and
follow flagd's own OFREP service where OFREP leaves a choice:

    success          200  {key, value, reason, variant, metadata}
    code default     200  {key, reason, variant: null, metadata}   (no value: DISABLED, DEFAULT)
    FLAG_NOT_FOUND   404  {key, errorCode, errorDetails, metadata}
    any other error  400  {key, errorCode, errorDetails, metadata}
    bulk             200  {flags: [success or error items], metadata}, with an ETag
    bad request      400  {key?, errorCode: INVALID_CONTEXT, errorDetails}

flagd leaves `variant` out when there is none; laneway sends null, because the published
Python OFREP provider (openfeature-provider-ofrep 0.3.0) reads `variant` unconditionally and
turns a missing one into a GENERAL error.

Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from laneway import errors
from laneway.flags import limits
from laneway.flags.definitions import canonical_json
from laneway.flags.types import ErrorCode, FlagSet, JsonValue, Resolution

NOT_FOUND = 404
BAD_REQUEST = 400
OK = 200
NOT_MODIFIED = 304


class InvalidContext(errors.InvalidInput):
    """An OFREP request body that is not `{"context": {...}}`; answered 400 INVALID_CONTEXT."""

    title = "invalid evaluation context"


def read_context(body: JsonValue) -> dict[str, JsonValue]:
    """The evaluation context of a (decoded) OFREP request body; `{}` if it has none."""
    if body is None:
        return {}
    if not isinstance(body, Mapping):
        raise InvalidContext("request body: expected a JSON object with a context object")
    context = body.get("context")
    if context is None:
        return {}
    if not isinstance(context, Mapping):
        raise InvalidContext("context: expected a JSON object")
    targeting_key = context.get("targetingKey")
    if targeting_key is not None and not isinstance(targeting_key, str):
        raise InvalidContext("context.targetingKey: expected a string")
    too_deep = limits.too_deep("context", context)
    if too_deep:
        raise InvalidContext(too_deep)
    try:
        canonical_json(context)
    except (TypeError, ValueError) as exc:
        raise InvalidContext(f"context: not JSON: {exc}") from None
    return dict(context)


def invalid_context(message: str, key: str | None = None) -> tuple[int, dict[str, Any]]:
    """The 400 for a request `read_context` refused (with the flag's key for a single flag)."""
    body: dict[str, Any] = {} if key is None else {"key": key}
    body.update(errorCode=ErrorCode.INVALID_CONTEXT.value, errorDetails=message)
    return BAD_REQUEST, body


def evaluation(key: str, resolution: Resolution) -> tuple[int, dict[str, Any]]:
    """Status and body answering a single-flag evaluation."""
    if resolution.error_code is None:
        return OK, _success(key, resolution)
    status = NOT_FOUND if resolution.error_code is ErrorCode.FLAG_NOT_FOUND else BAD_REQUEST
    return status, _failure(key, resolution)


def bulk_evaluation(flag_set: FlagSet, resolutions: Mapping[str, Resolution]) -> dict[str, Any]:
    """The body answering a bulk evaluation (status 200): every flag, failures inline."""
    return {
        "flags": [
            _failure(key, resolution) if resolution.is_error else _success(key, resolution)
            for key, resolution in resolutions.items()
        ],
        "metadata": dict(flag_set.metadata),
    }


def etag(flag_set: FlagSet, context: Mapping[str, JsonValue] | None, *, now: float) -> str:
    """A strong ETag for a bulk answer: a digest of the flag set and the context.

    The context is in it because a client provider whose context changed sends its old ETag
    with the new context and must not get a 304. A set whose targeting reads
    `$flagd.timestamp` also digests the second it is evaluated in.
    """
    digest = hashlib.sha256(flag_set.digest.encode())
    digest.update(canonical_json(dict(context or {})))
    if flag_set.uses_timestamp:
        digest.update(b"\0%d" % int(now))
    return f'"{digest.hexdigest()[:32]}"'


def not_modified(if_none_match: str | None, current: str) -> bool:
    """Whether an `If-None-Match` header matches `current`, so the answer is a 304."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == current:
            return True
    return False


def _success(key: str, resolution: Resolution) -> dict[str, Any]:
    body: dict[str, Any] = {"key": key}
    if resolution.value is not None:
        body["value"] = resolution.value
    body["reason"] = resolution.reason.value
    body["variant"] = resolution.variant
    body["metadata"] = dict(resolution.metadata)
    return body


def _failure(key: str, resolution: Resolution) -> dict[str, Any]:
    code = resolution.error_code or ErrorCode.GENERAL
    return {
        "key": key,
        "errorCode": code.value,
        "errorDetails": resolution.error_message or code.value,
        "metadata": dict(resolution.metadata),
    }
