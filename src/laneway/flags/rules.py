"""Checks of a JsonLogic targeting rule the way flagd's reference evaluator will run it. Pure.

`definitions` calls `check` on each flag's targeting (with `$evaluators` pasted in). What it
finds, flagd loads and evaluates all the same, answering with an error (an unknown operation
or `$ref`: PARSE_ERROR) or null (wrong arguments to its own operations), so each problem says
what flagd answers, and `definitions` lists them as warnings rather than refusing the flag.
"""

from __future__ import annotations

import json

from openfeature.contrib.tools.flagd.core.targeting.targeting import OPERATORS

from laneway.flags.types import JsonValue

# Operations json_logic's `apply` handles itself rather than through the operations table.
SPECIAL_FORMS = frozenset(
    {"if", "?:", "and", "or", "filter", "reduce", "map", "all", "some", "none"}
)
SEM_VER_OPERATORS = frozenset({"=", "!=", "<", "<=", ">", ">=", "^", "~"})
FLAGD_PROPERTIES = frozenset({"$flagd.flagKey", "$flagd.timestamp"})

_PARSE_ERROR = "flagd answers PARSE_ERROR"
_NULL = "flagd evaluates it to null"


def check(path: str, node: JsonValue, problems: list[str]) -> bool:
    """Add what is wrong with `node` to `problems`; True if it reads $flagd.timestamp."""
    if isinstance(node, list):
        found = False
        for item in node:
            found = check(path, item, problems) or found
        return found
    if not isinstance(node, dict) or len(node) != 1:
        return False  # JsonLogic data, not an operation
    op, args = next(iter(node.items()))
    if op == "$ref":
        problems.append(f"{path}: $ref {args!r} names no rule in $evaluators ({_PARSE_ERROR})")
        return False
    if op not in OPERATORS and op not in SPECIAL_FORMS:
        problems.append(f"{path}: unknown operation {op!r} ({_PARSE_ERROR})")
        return False
    arguments = args if isinstance(args, list) else [args]
    found = False
    if op == "var" and arguments and isinstance(arguments[0], str):
        name = arguments[0]
        if name.startswith("$flagd.") and name not in FLAGD_PROPERTIES:
            problems.append(
                f"{path}: {name!r} is not a flagd property ($flagd.flagKey, $flagd.timestamp; "
                "flagd reads it as null)"
            )
        found = name == "$flagd.timestamp"
    elif op == "fractional":
        _check_fractional(path, arguments, problems)
    elif op == "sem_ver":
        if len(arguments) != 3:
            problems.append(
                f"{path}: sem_ver takes 3 arguments (version, operator, version), "
                f"got {len(arguments)} ({_NULL})"
            )
        elif isinstance(arguments[1], str) and arguments[1] not in SEM_VER_OPERATORS:
            problems.append(
                f"{path}: sem_ver operator {arguments[1]!r} is not one of "
                f"{' '.join(sorted(SEM_VER_OPERATORS))} ({_NULL})"
            )
    elif op in ("starts_with", "ends_with") and len(arguments) != 2:
        problems.append(f"{path}: {op} takes 2 arguments, got {len(arguments)} ({_NULL})")
    for argument in arguments:
        found = check(path, argument, problems) or found
    return found


def _check_fractional(path: str, arguments: list[JsonValue], problems: list[str]) -> None:
    buckets = arguments if arguments and isinstance(arguments[0], list) else arguments[1:]
    if not buckets:
        problems.append(f"{path}: fractional needs at least one [variant, weight] bucket ({_NULL})")
    for bucket in buckets:
        if isinstance(bucket, dict):
            continue  # computed at evaluation time
        if not isinstance(bucket, list) or not 1 <= len(bucket) <= 2:
            problems.append(
                f"{path}: a fractional bucket is [variant] or [variant, weight], "
                f"got {_json(bucket)} ({_NULL})"
            )
        elif len(bucket) == 2 and not isinstance(bucket[1], dict):
            weight = bucket[1]
            if isinstance(weight, bool) or not isinstance(weight, int):
                problems.append(
                    f"{path}: fractional weight of {_json(bucket[0])} must be an integer, "
                    f"got {_json(weight)} ({_NULL})"
                )


def _json(value: JsonValue) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
