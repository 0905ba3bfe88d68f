"""The shapes the flags layer speaks: flag sets, flags, resolutions, reasons, error codes. Pure.

`definitions.parse_flag_set` makes a `FlagSet` from a flagd flag-definition document,
`evaluation.evaluate` turns a flag and a context into a `Resolution`, and `ofrep` turns
resolutions into OFREP bodies. The names and spellings of `Reason` and `ErrorCode` are
OpenFeature's and flagd's, so they go over the wire unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

JsonValue = Any
"""A value as `json.loads` returns it: dict, list, str, int, float, bool or None."""

MetadataValue = str | int | float | bool

EMPTY_METADATA: Mapping[str, MetadataValue] = MappingProxyType({})


class State(StrEnum):
    ENABLED = "ENABLED"
    DISABLED = "DISABLED"


class VariantType(StrEnum):
    """The one type all variants of a flag share (flagd's boolean, string, number, object flags)."""

    BOOLEAN = "boolean"
    STRING = "string"
    NUMBER = "number"
    OBJECT = "object"


class FlagType(StrEnum):
    """The type a caller asks for (OpenFeature's typed resolvers); only used to check the value."""

    BOOLEAN = "boolean"
    STRING = "string"
    INTEGER = "integer"
    FLOAT = "float"
    OBJECT = "object"


class Reason(StrEnum):
    """flagd's resolution reasons. `SPLIT` is OpenFeature's; the flagd evaluators never return it
    (a `fractional` rule resolves with `TARGETING_MATCH`), so neither does laneway."""

    STATIC = "STATIC"
    TARGETING_MATCH = "TARGETING_MATCH"
    DEFAULT = "DEFAULT"
    DISABLED = "DISABLED"
    SPLIT = "SPLIT"
    ERROR = "ERROR"


class ErrorCode(StrEnum):
    """OpenFeature error codes. `TARGETING_KEY_MISSING` and `INVALID_CONTEXT` come from the OFREP
    request layer; the flagd evaluator resolves a missing targeting key to the default instead."""

    FLAG_NOT_FOUND = "FLAG_NOT_FOUND"
    TYPE_MISMATCH = "TYPE_MISMATCH"
    PARSE_ERROR = "PARSE_ERROR"
    TARGETING_KEY_MISSING = "TARGETING_KEY_MISSING"
    INVALID_CONTEXT = "INVALID_CONTEXT"
    GENERAL = "GENERAL"


@dataclass(frozen=True)
class Resolution:
    """The outcome of evaluating one flag for one context.

    `value is None` without an error means "use the caller's code default": the flag is
    disabled, or it has no default variant and no targeting rule picked one. flagd's variants
    are never null (`definitions` refuses them), so None is unambiguous.
    """

    value: JsonValue
    variant: str | None
    reason: Reason
    error_code: ErrorCode | None = None
    error_message: str | None = None
    metadata: Mapping[str, MetadataValue] = field(default_factory=lambda: EMPTY_METADATA)

    @property
    def is_error(self) -> bool:
        return self.error_code is not None

    @property
    def uses_code_default(self) -> bool:
        return self.value is None and self.error_code is None


@dataclass(frozen=True)
class FlagDefinition:
    """One validated flag. `targeting` has `$evaluators` references expanded (as the reference
    parser expands them); `metadata` is the flag set's metadata overlaid with the flag's own,
    which is what every resolution of the flag carries."""

    key: str
    state: State
    variants: Mapping[str, JsonValue]
    default_variant: str | None
    targeting: dict[str, JsonValue] | None
    variant_type: VariantType
    metadata: Mapping[str, MetadataValue]
    reference: Any = field(repr=False, compare=False)
    """The reference parser's `Flag` for this flag (openfeature-flagd-core)."""
    static: Resolution | None = field(default=None, repr=False, compare=False)
    """What the flag resolves to when no targeting runs (it has none, or it is disabled),
    made once when the set is parsed."""
    uses_timestamp: bool = False
    """Its targeting reads `$flagd.timestamp`."""


@dataclass(frozen=True)
class FlagWarning:
    """Targeting flagd loads but answers with an error or null: taken, and said (`message`
    names the flag and the field, and what flagd answers)."""

    key: str
    message: str


@dataclass(frozen=True)
class FlagSet:
    """A validated flagd flag-definition document.

    `document` is the document as it was given (deep-copied), which is what export returns, so
    definitions go back to flagd unchanged. Treat every mapping here as read-only.
    """

    document: dict[str, JsonValue]
    flags: Mapping[str, FlagDefinition]
    metadata: Mapping[str, MetadataValue]
    digest: str
    """sha256 of the document's canonical JSON: changes exactly when the definitions change."""
    uses_timestamp: bool = False
    """Some targeting reads `$flagd.timestamp`: answers may change while the set does not."""
    warnings: tuple[FlagWarning, ...] = ()
    """What `definitions.parse_flag_set` took but would refuse with `strict`, in flag order."""

    def __contains__(self, key: object) -> bool:
        return key in self.flags

    def keys(self) -> list[str]:
        return list(self.flags)
