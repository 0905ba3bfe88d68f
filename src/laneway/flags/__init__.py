"""Feature flags: flagd flag definitions, evaluated as flagd does, answered over OFREP. Pure.

`definitions` parses and exports flagd documents, `evaluation` resolves a flag for a context
on flagd's reference evaluator (openfeature-flagd-core), `ofrep` turns resolutions into OFREP
bodies, `types` holds the shapes they share. See docs/flags.md.
"""

from laneway.flags.definitions import FlagDefinitionError, export_flag_set, parse_flag_set
from laneway.flags.evaluation import evaluate, evaluate_all
from laneway.flags.types import (
    ErrorCode,
    FlagDefinition,
    FlagSet,
    FlagType,
    FlagWarning,
    Reason,
    Resolution,
    State,
    VariantType,
)

__all__ = [
    "ErrorCode",
    "FlagDefinition",
    "FlagDefinitionError",
    "FlagSet",
    "FlagType",
    "FlagWarning",
    "Reason",
    "Resolution",
    "State",
    "VariantType",
    "evaluate",
    "evaluate_all",
    "export_flag_set",
    "parse_flag_set",
]
