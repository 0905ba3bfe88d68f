"""Changes to a flagd document, as `laneway flags create|set|rollout|delete` make them. Pure.

Each function takes a document and returns a new one (the input is never changed); the store
then validates the result whole with `parse_flag_set` and stores it or nothing. `summarize`
says what a listing shows of each flag, `diff` which flags a change touched (for the history).

A rollout is flagd's `fractional` shorthand, `{"fractional": [[on, w], [rest, 100 - w]]}`: it
buckets by the flag key and the targeting key (as Unleash's gradual rollout buckets by group
id and user id), so a user stays in their bucket across evaluations, restarts and re-parses,
and raising the share only moves users from `rest` to `on`. Users without a targeting key get
the default variant, which a rollout sets to `rest`.

What a caller gives (a flag, a targeting rule) is measured before it is copied: copying
recurses, so a rule nested past `limits.MAX_DEPTH` is refused first, naming the flag.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping
from typing import Any

from laneway.errors import Conflict, InvalidInput, NotFound
from laneway.flags import limits
from laneway.flags.definitions import FlagDefinitionError
from laneway.flags.types import FlagSet, JsonValue, State

SCHEMA_URL = "https://flagd.dev/schema/v0/flags.json"
FLAG_KEY = re.compile(r"^[a-z]([a-z0-9.-]{0,126}[a-z0-9])?$")
"""Keys of flags made with `flags create`: lowercase like every other name laneway gives
(apps, environments, services), '.' allowed to group them. Imported documents may hold any
flagd key."""
BOOLEAN_VARIANTS: dict[str, JsonValue] = {"on": True, "off": False}

_UNSET: Any = object()


def empty_document() -> dict[str, JsonValue]:
    return {"$schema": SCHEMA_URL, "flags": {}}


def check_flag_key(key: str) -> None:
    if not FLAG_KEY.match(key):
        raise InvalidInput(
            f"flag key {key!r}: expected a lowercase key like `new-checkout` or "
            "`checkout.express` (a-z, 0-9, '-' and '.', starting with a letter, not ending "
            "with '-' or '.', at most 128 characters)"
        )


def boolean_flag(state: State = State.DISABLED) -> dict[str, JsonValue]:
    """The flag `laneway flags create KEY` makes: `on` (true) or `off` (false), serving `on`
    once enabled; disabled, it answers the caller's code default."""
    return {"state": str(state), "variants": dict(BOOLEAN_VARIANTS), "defaultVariant": "on"}


def with_flag(
    document: Mapping[str, JsonValue], key: str, flag: Mapping[str, JsonValue]
) -> dict[str, JsonValue]:
    too_deep = limits.flag_nesting(key, flag)
    if too_deep:
        raise FlagDefinitionError(too_deep)
    doc = _copy(document)
    flags = doc.setdefault("flags", {})
    if not isinstance(flags, dict):
        raise InvalidInput("flags: expected an object of flag key to flag")
    if key in flags:
        raise Conflict(f"flag {key!r} exists already")
    flags[key] = copy.deepcopy(dict(flag))
    return doc


def without_flag(document: Mapping[str, JsonValue], key: str) -> dict[str, JsonValue]:
    doc = _copy(document)
    doc.get("flags", {}).pop(key, None)
    return doc


def set_fields(
    document: Mapping[str, JsonValue],
    key: str,
    *,
    state: str | None = _UNSET,
    default_variant: str | None = _UNSET,
    targeting: Mapping[str, JsonValue] | None = _UNSET,
) -> dict[str, JsonValue]:
    """The flag's state, default variant or targeting replaced; None targeting removes it."""
    too_deep = limits.too_deep(f"flags.{key}.targeting", targeting)
    if targeting is not _UNSET and too_deep:
        raise FlagDefinitionError([too_deep])
    doc = _copy(document)
    flag = _flag(doc, key)
    if state is not _UNSET:
        flag["state"] = state
    if default_variant is not _UNSET:
        flag["defaultVariant"] = default_variant
    if targeting is not _UNSET:
        if targeting is None:
            flag.pop("targeting", None)
        else:
            flag["targeting"] = copy.deepcopy(dict(targeting))
    return doc


def rollout(
    document: Mapping[str, JsonValue],
    key: str,
    percent: float,
    *,
    variant: str | None = None,
    rest: str | None = None,
) -> dict[str, JsonValue]:
    """`percent` of users on `variant`, the others on `rest`, sticky per targeting key.

    `variant` defaults to a boolean flag's true variant, `rest` to the default variant (or a
    boolean flag's false variant when the default is `variant`). The flag is enabled.
    """
    if isinstance(percent, bool) or not isinstance(percent, int | float):
        raise InvalidInput(f"percent: expected a number from 0 to 100, got {percent!r}")
    if not math.isfinite(percent) or not 0 <= percent <= 100:
        raise InvalidInput(f"percent: expected a number from 0 to 100, got {percent!r}")
    if abs(percent * 100 - round(percent * 100)) > 1e-6:
        raise InvalidInput(f"percent: at most 2 decimals, got {percent!r}")
    doc = _copy(document)
    flag = _flag(doc, key)
    variants = flag.get("variants")
    if not isinstance(variants, dict) or not variants:
        raise InvalidInput(f"flags.{key}.variants: the flag has no variants to roll out")
    on = variant if variant is not None else _boolean_variant(key, variants, True, "--variant")
    default = flag.get("defaultVariant") or None
    if rest is None:
        rest = (
            default
            if default is not None and default != on
            else _boolean_variant(key, variants, False, "--rest")
        )
    for name, what in ((on, "variant"), (rest, "rest")):
        if name not in variants:
            raise InvalidInput(
                f"{what}: {name!r} is not one of the variants of {key!r} ({', '.join(variants)})"
            )
    if on == rest:
        raise InvalidInput(f"rest: the rest of the users need another variant than {on!r}")
    if float(percent).is_integer():
        weight, total = round(percent), 100
    else:
        weight, total = round(percent * 100), 10_000
    flag["state"] = str(State.ENABLED)
    flag["defaultVariant"] = rest
    flag["targeting"] = {"fractional": [[on, weight], [rest, total - weight]]}
    return doc


def rollout_of(targeting: JsonValue) -> dict[str, JsonValue] | None:
    """{variant, percent, rest} if `targeting` is a rollout as `rollout` writes it."""
    if not isinstance(targeting, dict) or list(targeting) != ["fractional"]:
        return None
    buckets = targeting["fractional"]
    if not isinstance(buckets, list) or len(buckets) != 2:
        return None
    for bucket in buckets:
        if not (
            isinstance(bucket, list)
            and len(bucket) == 2
            and isinstance(bucket[0], str)
            and isinstance(bucket[1], int)
            and not isinstance(bucket[1], bool)
            and bucket[1] >= 0
        ):
            return None
    (on, weight), (rest, other) = buckets
    total = weight + other
    if total <= 0:
        return None
    return {"variant": on, "percent": round(100 * weight / total, 2), "rest": rest}


def summarize(flag_set: FlagSet) -> list[dict[str, JsonValue]]:
    """Per flag, what `laneway flags list` shows: state, type, variants, default, targeting."""
    raw_flags = flag_set.document.get("flags", {})
    summary = []
    for key, flag in flag_set.flags.items():
        raw_targeting = raw_flags.get(key, {}).get("targeting")
        summary.append(
            {
                "key": key,
                "state": str(flag.state),
                "type": str(flag.variant_type),
                "variants": list(flag.variants),
                "defaultVariant": flag.default_variant,
                "targeting": flag.targeting is not None,
                "rollout": rollout_of(raw_targeting),
            }
        )
    return summary


def diff(
    before: Mapping[str, JsonValue], after: Mapping[str, JsonValue]
) -> list[tuple[str, JsonValue, JsonValue]]:
    """(key, definition before, definition after) of each flag that differs; None = absent."""
    old = before.get("flags") or {}
    new = after.get("flags") or {}
    keys = list(old) + [k for k in new if k not in old]
    return [(k, old.get(k), new.get(k)) for k in keys if old.get(k) != new.get(k)]


def _flag(doc: dict[str, Any], key: str) -> dict[str, Any]:
    flag = (doc.get("flags") or {}).get(key)
    if not isinstance(flag, dict):
        raise NotFound(f"no flag {key!r}", hint="`laneway flags list` shows the flags")
    return flag


def _boolean_variant(key: str, variants: dict[str, JsonValue], value: bool, option: str) -> str:
    names = [name for name, v in variants.items() if v is value]
    if len(names) != 1:
        raise InvalidInput(
            f"flag {key!r} is not an on/off flag (variants: {', '.join(variants)}); "
            f"say which variant with {option}"
        )
    return names[0]


def _copy(document: Mapping[str, JsonValue]) -> dict[str, Any]:
    return copy.deepcopy(dict(document))
