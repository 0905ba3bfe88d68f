"""flagd flag-definition documents in and out: `parse_flag_set(document) -> FlagSet`, `export_flag_set`.

Called by whatever takes flag definitions from users (API, CLI import, the store) and by
`evaluation`. A document is taken or refused whole: `FlagDefinitionError.problems` lists each
problem as `flags.<key>.<field>: what`, so nothing half-valid is ever stored.

Targeting that flagd loads but cannot evaluate as meant (an unknown operation or `$ref`,
which flagd answers with PARSE_ERROR; wrong arguments to `starts_with`, `ends_with`,
`sem_ver` or `fractional`, which it evaluates to null) is not refused but listed in
`FlagSet.warnings`, so a flagd file is taken as flagd takes it and answered as flagd answers
it; `strict=True` refuses those too. Size and nesting are capped first (`flags.limits`).

The reference parser (openfeature-flagd-core's `FlagStore`, the one flagd's Python in-process
provider runs on what laneway serves it) has the last word: each flag goes through it, with
`$evaluators` expanded by it, and whatever it refuses is refused. laneway's own checks run
first, for messages that name the field, and cover what that parser leaves to flagd's JSON
schema or to evaluation time: a default variant that is not a variant, variants of mixed or
unservable types, targeting that is not a rule, unknown operations and unresolved `$ref`s.
Disabled flags are checked like enabled ones. Export returns the document as it was given.

Pure: no I/O.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from openfeature.contrib.tools.flagd.core.model.flag_store import FlagStore
from openfeature.exception import OpenFeatureError

from laneway import errors
from laneway.flags import evaluation, limits, rules
from laneway.flags.types import (
    FlagDefinition,
    FlagSet,
    FlagWarning,
    JsonValue,
    MetadataValue,
    State,
    VariantType,
)

FLAG_FIELDS = ("state", "variants", "defaultVariant", "targeting", "metadata")
SYNC_FIELDS = ("source", "selector")
"""Added by flagd's sync to each flag; the reference parser drops them, laneway keeps them."""

_UNPASTABLE = re.compile(r'\\[^"]')


class FlagDefinitionError(errors.InvalidInput):
    """A flag-definition document was refused; `problems` holds each as `path: what`."""

    title = "invalid flag definitions"

    def __init__(self, problems: list[str], *, hint: str | None = None) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems), hint=hint)


def parse_flag_set(document: object, *, strict: bool = False) -> FlagSet:
    """Validate a flagd flag-definition document (a JSON object, as `json.loads` returns it).

    With `strict`, what would be a warning (targeting flagd loads but answers with an error
    or null) is a problem too, and the document is refused.
    """
    if not isinstance(document, Mapping):
        raise FlagDefinitionError([f"document: expected a JSON object, got {_kind(document)}"])
    too_deep = limits.document_nesting(document)
    if too_deep:
        raise FlagDefinitionError(too_deep)
    try:
        text = canonical_json(document, sort=False)
        doc: dict[str, Any] = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise FlagDefinitionError([f"document: not JSON: {exc}"]) from None
    too_large = limits.too_large(len(text)) or limits.too_many_flags(
        len(doc.get("flags") or ()) if isinstance(doc.get("flags"), dict) else 0
    )
    if too_large:
        raise FlagDefinitionError([too_large])

    problems: list[str] = []
    if "metadata" in doc and doc["metadata"] is None:
        problems.append(
            "metadata: expected an object of string, number or boolean values, got null"
        )
    set_metadata = _check_metadata(doc.get("metadata"), "metadata", problems)
    evaluators = doc.get("$evaluators", {})
    if not isinstance(evaluators, dict):
        problems.append(f"$evaluators: expected an object of named rules, got {_kind(evaluators)}")
        evaluators = {}
    for name, rule in evaluators.items():
        if not name:
            problems.append("$evaluators: a rule name must not be empty")
        if not isinstance(rule, dict):
            problems.append(
                f"$evaluators.{name}: expected a JsonLogic rule (an object), got {_kind(rule)}"
            )
        elif _UNPASTABLE.search(json.dumps(rule)):
            # The reference parser pastes shared rules in with re.sub, whose replacement
            # text takes backslashes as escapes: "a\\b" silently becomes "a<backspace>", and
            # "café" (JSON "caf\u00e9") or a tab make it fail, and the provider with it.
            problems.append(
                f"$evaluators.{name}: flagd's Python parser cannot paste in a shared rule with a "
                "backslash, a control or a non-ASCII character; write it into the flags' targeting"
            )
    if problems:  # the flags' rules are read with these, so they are not checked yet
        raise FlagDefinitionError(problems)

    raw_flags = doc.get("flags")
    if raw_flags is None:
        problems.append("flags: required (an object of flag key to flag)")
        raw_flags = {}
    elif not isinstance(raw_flags, dict):
        problems.append(f"flags: expected an object of flag key to flag, got {_kind(raw_flags)}")
        raw_flags = {}

    warnings: list[FlagWarning] = []
    flags = _parse_flags(raw_flags, evaluators, set_metadata, problems, warnings)
    if strict:
        problems += [warning.message for warning in warnings]
    if not problems:
        _check_whole(doc, problems)
    if problems:
        raise FlagDefinitionError(problems)
    return FlagSet(
        document=doc,
        flags=MappingProxyType(flags),
        metadata=MappingProxyType(set_metadata),
        digest=hashlib.sha256(canonical_json(doc)).hexdigest(),
        uses_timestamp=any(flag.uses_timestamp for flag in flags.values()),
        warnings=tuple(warnings),
    )


def _parse_flags(
    raw_flags: dict[str, Any],
    evaluators: dict[str, Any],
    set_metadata: dict[str, MetadataValue],
    problems: list[str],
    warnings: list[FlagWarning],
) -> dict[str, FlagDefinition]:
    flags: dict[str, FlagDefinition] = {}
    expanded_total = 0
    for key, raw in raw_flags.items():
        path = f"flags.{key}" if key else 'flags.""'
        if not key:
            problems.append(f"{path}: a flag key must not be empty")
            continue
        before = len(problems)
        _check_flag(path, raw, problems)
        if len(problems) > before:
            continue
        if evaluators and "targeting" in raw:
            size = limits.expanded_size(raw["targeting"], evaluators)
            expanded_total += size
            if size > limits.MAX_EXPANDED_BYTES:
                problems.append(
                    f"{path}.targeting: {size:,} bytes of JSON once $evaluators are pasted in, "
                    f"over the limit of {limits.MAX_EXPANDED_BYTES:,}"
                )
                continue
            if expanded_total > limits.MAX_EXPANDED_TOTAL:
                problems.append(
                    f"{path}.targeting: the flags' targeting, $evaluators pasted in, is over "
                    f"the limit of {limits.MAX_EXPANDED_TOTAL:,} bytes of JSON by this flag"
                )
                continue
        reference = _reference_flag(path, key, raw, evaluators, problems)
        if reference is None:
            continue
        targeting = reference.targeting or None
        too_deep = limits.too_deep(f"{path}.targeting", targeting)
        if too_deep:
            problems.append(f"{too_deep} (with $evaluators pasted in)")
            continue
        found: list[str] = []
        uses_timestamp = rules.check(f"{path}.targeting", targeting, found)
        warnings += [FlagWarning(key, message) for message in dict.fromkeys(found)]
        definition = FlagDefinition(
            key=key,
            state=State(reference.state),
            variants=MappingProxyType(copy.deepcopy(raw["variants"])),
            default_variant=reference.default_variant,
            targeting=targeting,
            variant_type=_variant_type(next(iter(raw["variants"].values()))),
            metadata=MappingProxyType({**set_metadata, **(raw.get("metadata") or {})}),
            reference=reference,
            uses_timestamp=uses_timestamp,
        )
        flags[key] = replace(definition, static=evaluation.resolve_static(definition))
    return flags


def export_flag_set(flag_set: FlagSet) -> dict[str, JsonValue]:
    """The document as it was given, for flagd (files, sync, `laneway flags export`)."""
    return copy.deepcopy(flag_set.document)


def canonical_json(document: Mapping[str, JsonValue], *, sort: bool = True) -> bytes:
    """Compact UTF-8 JSON; with `sort`, keys sorted, so equal documents give equal bytes."""
    return json.dumps(
        document, sort_keys=sort, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def _check_flag(path: str, raw: JsonValue, problems: list[str]) -> None:
    if not isinstance(raw, dict):
        problems.append(
            f"{path}: expected a flag (an object with state, variants, ...), got {_kind(raw)}"
        )
        return
    for name in raw:
        if name not in FLAG_FIELDS and name not in SYNC_FIELDS:
            problems.append(f"{path}.{name}: unknown field; a flag has {', '.join(FLAG_FIELDS)}")

    state = raw.get("state")
    if state is None:
        problems.append(f"{path}.state: required (ENABLED or DISABLED)")
    elif state not in (State.ENABLED, State.DISABLED):
        problems.append(f"{path}.state: {state!r} is not ENABLED or DISABLED")

    variants = raw.get("variants")
    if variants is None:
        problems.append(f"{path}.variants: required (an object of variant name to value)")
        variants = {}
    elif not isinstance(variants, dict):
        problems.append(
            f"{path}.variants: expected an object of variant name to value, got {_kind(variants)}"
        )
        variants = {}
    elif not variants:
        problems.append(f"{path}.variants: a flag needs at least one variant")
    types: dict[str, VariantType] = {}
    for name, value in variants.items():
        if not name:
            problems.append(f"{path}.variants: a variant name must not be empty")
        elif value is None:
            problems.append(f"{path}.variants.{name}: null is not a variant value")
        elif isinstance(value, list):
            problems.append(
                f"{path}.variants.{name}: an array is not a variant value (object flags have objects)"
            )
        else:
            types[name] = _variant_type(value)
    if len(set(types.values())) > 1:
        listed = ", ".join(f"{name}: {kind}" for name, kind in types.items())
        problems.append(
            f"{path}.variants: mixed variant types ({listed}); all variants of a flag have one type"
        )

    if "defaultVariant" in raw:
        default = raw["defaultVariant"]
        if default is not None and not isinstance(default, str):
            problems.append(
                f"{path}.defaultVariant: expected a variant name or null, got {_json(default)}"
            )
        elif default and variants and default not in variants:
            problems.append(
                f"{path}.defaultVariant: {default!r} is not one of the variants ({', '.join(variants)})"
            )

    targeting = raw.get("targeting")
    if targeting is not None and not isinstance(targeting, dict):
        problems.append(
            f"{path}.targeting: expected a JsonLogic rule (an object), got {_kind(targeting)}"
        )
    if "metadata" in raw:
        _check_metadata(raw["metadata"], f"{path}.metadata", problems)


def _check_metadata(
    metadata: JsonValue, path: str, problems: list[str]
) -> dict[str, MetadataValue]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        problems.append(
            f"{path}: expected an object of string, number or boolean values, got {_kind(metadata)}"
        )
        return {}
    for name, value in metadata.items():
        if not name:
            problems.append(f"{path}: a metadata key must not be empty")
        elif not isinstance(value, str | int | float | bool):
            problems.append(
                f"{path}.{name}: expected a string, number or boolean, got {_kind(value)}"
            )
    return dict(metadata)


def _reference_flag(
    path: str, key: str, raw: dict[str, Any], evaluators: dict[str, Any], problems: list[str]
) -> Any:
    """The reference parser's `Flag`, `$evaluators` expanded its way; None if it refuses."""
    store = FlagStore()
    # The parser rewrites what it is given (it pops defaultVariant), so it gets copies.
    single = {"flags": {key: copy.deepcopy(raw)}, "$evaluators": copy.deepcopy(evaluators)}
    try:
        store.update(single)
    except OpenFeatureError as exc:
        cause = exc.__cause__
        detail = exc.error_message or (str(cause) if cause else type(exc).__name__)
        problems.append(f"{path}: refused by the flagd parser: {detail}")
        return None
    except (ValueError, TypeError, re.error) as exc:
        # Its $evaluators expansion is a regex substitution on JSON text: a rule whose JSON
        # has a backslash (an escaped quote or backslash in a string) breaks it.
        problems.append(f"{path}.targeting: the flagd parser could not expand $evaluators: {exc}")
        return None
    return store.flags[key]


def _check_whole(doc: dict[str, Any], problems: list[str]) -> None:
    """The reference parser takes the whole document as a provider would get it, or says why not."""
    try:
        FlagStore().update(copy.deepcopy(doc))
    except (OpenFeatureError, ValueError, TypeError, re.error) as exc:
        detail = getattr(exc, "error_message", None) or str(exc.__cause__ or exc)
        problems.append(f"document: refused by the flagd parser: {detail}")


def _variant_type(value: JsonValue) -> VariantType:
    if isinstance(value, bool):
        return VariantType.BOOLEAN
    if isinstance(value, str):
        return VariantType.STRING
    if isinstance(value, int | float) and math.isfinite(value):
        return VariantType.NUMBER
    return VariantType.OBJECT


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _json(value: JsonValue) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
