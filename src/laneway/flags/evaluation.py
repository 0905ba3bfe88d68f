"""Evaluate flags as flagd does: `evaluate(flags, key, context, now=...) -> Resolution`.

Called by the OFREP endpoint (one flag or all of them, `evaluate_all`) and by anything else
that answers for a flag. The targeting rules run on the reference evaluator's parts
(openfeature-flagd-core: its parsed flags, its JsonLogic engine and its `fractional`,
`sem_ver`, `starts_with`, `ends_with` operations), so buckets and matches are the ones a flagd
in-process provider computes. What is laneway's is around them, and follows the reference's
resolve step outcome for outcome:

    flag not in the set                    ERROR     FLAG_NOT_FOUND
    state DISABLED                         DISABLED  (no value: the caller's code default)
    no targeting (or `{}`)                 STATIC    the default variant
    targeting returns null                 DEFAULT   the default variant
    ... and no default variant             DEFAULT   (no value: the caller's code default)
    targeting returns a variant            TARGETING_MATCH (also for `fractional`; never SPLIT)
    targeting returns an unknown variant   ERROR     GENERAL
    targeting names an unknown operation   ERROR     PARSE_ERROR
    targeting raises anything else         ERROR     GENERAL (what the SDK makes of it in-process)
    value not of the `expected` type       ERROR     TYPE_MISMATCH

A missing targeting key is not an error: `fractional` then resolves nothing and the flag its
default, as in flagd. Time enters as `now` (`$flagd.timestamp` is `int(now)`), the reference
reads the clock instead. Resolutions of flags without targeting are made once, when the set
is parsed (`resolve_static`).

Pure: no I/O, no clock. (json_logic's `log` operation prints; here it only returns its value.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from json_logic import jsonLogic
from openfeature.contrib.tools.flagd.core.targeting.targeting import (
    OPERATORS as REFERENCE_OPERATORS,
)

from laneway.flags.types import (
    EMPTY_METADATA,
    ErrorCode,
    FlagDefinition,
    FlagSet,
    FlagType,
    JsonValue,
    Reason,
    Resolution,
    State,
)

OPERATORS = {**REFERENCE_OPERATORS, "log": lambda data=None, value=None, *_: value}


def evaluate(
    flags: FlagSet,
    key: str,
    context: Mapping[str, JsonValue] | None,
    *,
    now: float,
    expected: FlagType | None = None,
) -> Resolution:
    """Resolve flag `key` for `context` (OpenFeature's: `targetingKey` plus attributes)."""
    flag = flags.flags.get(key)
    if flag is None:
        return Resolution(
            None,
            None,
            Reason.ERROR,
            ErrorCode.FLAG_NOT_FOUND,
            f"flag {key!r} is not defined",
            flags.metadata or EMPTY_METADATA,
        )
    resolution = flag.static
    if resolution is None:
        resolution = _targeted(flag, context or {}, int(now))
    if expected is not None and resolution.value is not None:
        return _check_type(key, resolution, expected)
    return resolution


def evaluate_all(
    flags: FlagSet, context: Mapping[str, JsonValue] | None, *, now: float
) -> dict[str, Resolution]:
    """Every flag of the set, in definition order (OFREP bulk evaluation)."""
    return {key: evaluate(flags, key, context, now=now) for key in flags.flags}


def resolve_static(flag: FlagDefinition) -> Resolution | None:
    """The resolution of a flag no targeting runs for (none, or disabled); None if it has some.

    `definitions` stores it on the flag when it parses the set, so `evaluate` only looks it up.
    """
    if flag.state is State.DISABLED:
        return Resolution(None, None, Reason.DISABLED, metadata=flag.metadata)
    if flag.targeting is not None:
        return None
    return _default(flag, Reason.STATIC)


def _default(flag: FlagDefinition, reason: Reason) -> Resolution:
    if flag.default_variant is None:
        return Resolution(None, None, Reason.DEFAULT, metadata=flag.metadata)
    return Resolution(
        flag.variants[flag.default_variant], flag.default_variant, reason, metadata=flag.metadata
    )


def _targeted(flag: FlagDefinition, context: Mapping[str, JsonValue], timestamp: int) -> Resolution:
    if flag.targeting is None:  # a flag made without `resolve_static`
        return _default(flag, Reason.STATIC)
    # The data the reference's `targeting()` builds: the attributes, then $flagd, then the
    # targeting key (None when absent), each overriding what the context said.
    data: dict[str, Any] = dict(context)
    data["$flagd"] = {"flagKey": flag.key, "timestamp": timestamp}
    data["targetingKey"] = context.get("targetingKey")
    try:
        result = jsonLogic(flag.targeting, data, OPERATORS)
    except ReferenceError as exc:
        return _error(flag, ErrorCode.PARSE_ERROR, f"flag {flag.key!r}: invalid targeting: {exc}")
    except Exception as exc:  # any failure of a rule on this context; never the server's
        return _error(flag, ErrorCode.GENERAL, f"flag {flag.key!r}: targeting failed: {exc!r}")
    if result is None:
        return _default(flag, Reason.DEFAULT)
    variant = str(result).lower() if isinstance(result, bool) else str(result)
    if variant not in flag.variants:
        return _error(
            flag,
            ErrorCode.GENERAL,
            f"flag {flag.key!r}: targeting returned {variant!r}, which is not one of the "
            f"variants ({', '.join(flag.variants)})",
        )
    return Resolution(
        flag.variants[variant], variant, Reason.TARGETING_MATCH, metadata=flag.metadata
    )


def _error(flag: FlagDefinition, code: ErrorCode, message: str) -> Resolution:
    return Resolution(None, None, Reason.ERROR, code, message, flag.metadata)


def _check_type(key: str, resolution: Resolution, expected: FlagType) -> Resolution:
    value = resolution.value
    if expected is FlagType.BOOLEAN:
        ok = isinstance(value, bool)
    elif expected is FlagType.STRING:
        ok = isinstance(value, str)
    elif expected is FlagType.INTEGER:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif expected is FlagType.FLOAT:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        ok = isinstance(value, dict | list)
    if ok:
        return resolution
    return Resolution(
        None,
        None,
        Reason.ERROR,
        ErrorCode.TYPE_MISMATCH,
        f"flag {key!r}: expected {expected}, got {type(value).__name__}",
        resolution.metadata,
    )
