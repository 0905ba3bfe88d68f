"""How big a flag document may be: its nesting, its size, its flags, what `$evaluators` expand
to. Pure.

Everything that reads a document recurses on it (copying, JSON, the reference parser,
JsonLogic's evaluation), so its nesting is measured first, without recursing, and refused
past `MAX_DEPTH` before anything else touches it. The reference parser pastes `$evaluators`
rules in as text, rule after rule, so rules that reference rules can multiply a flag's size
(an alias bomb); `expanded_size` computes what the pasting would make without making it.
Each problem names the flag (or the rule) and the limit:

    flags.new-checkout.targeting: nested 1,000 levels deep, over the limit of 64
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

MAX_DEPTH = 64
"""Levels of objects and arrays in a flag's field, a shared rule or the evaluation context."""
MAX_BYTES = 1024 * 1024
"""The document as compact JSON."""
MAX_FLAGS = 5_000
MAX_EXPANDED_BYTES = 256 * 1024
"""One flag's targeting once `$evaluators` are pasted in (as JSON)."""
MAX_EXPANDED_TOTAL = 4 * 1024 * 1024
"""All flags' targeting once `$evaluators` are pasted in."""

_GIVE_UP = 1_000_000  # levels: only a cyclic structure (never JSON) goes this deep
# The reference parser's pattern for a reference, for any name (flag_store.py).
_REF = re.compile(r'{\s*"\$ref":\s*"([^"]*)"\s*}')


def nesting(value: object) -> int:
    """Levels of objects and arrays in `value` (a scalar is 0, `{}` and `[1]` are 1)."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        children: Iterable[object]
        if isinstance(item, Mapping):
            children = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if level < _GIVE_UP:
            stack.extend((child, level + 1) for child in children)
    return deepest


def too_deep(path: str, value: object) -> str | None:
    """The problem with `value` (found at `path`) if it is nested past the limit."""
    levels = nesting(value)
    if levels <= MAX_DEPTH:
        return None
    return f"{path}: nested {levels:,} levels deep, over the limit of {MAX_DEPTH}"


def document_nesting(document: Mapping[str, Any]) -> list[str]:
    """A problem for each flag field, shared rule or other top-level value nested too deep."""
    problems = []
    for name, value in document.items():
        if name == "flags" and isinstance(value, Mapping):
            for key, flag in value.items():
                problems += flag_nesting(key, flag)
        elif name == "$evaluators" and isinstance(value, Mapping):
            problems += _each("$evaluators", value)
        else:
            problems += _each("", {name: value})
    return problems


def flag_nesting(key: str, flag: object) -> list[str]:
    """A problem for each field of flag `key` nested too deep."""
    if isinstance(flag, Mapping):
        return _each(f"flags.{key}", flag)
    return _each("flags", {key: flag})


def too_large(size: int) -> str | None:
    if size <= MAX_BYTES:
        return None
    return f"document: {size:,} bytes of JSON, over the limit of {MAX_BYTES:,} (1 MiB)"


def too_many_flags(count: int) -> str | None:
    if count <= MAX_FLAGS:
        return None
    return f"flags: {count:,} flags, over the limit of {MAX_FLAGS:,}"


def expanded_size(targeting: object, evaluators: Mapping[str, Any]) -> int:
    """The size of `targeting`'s JSON once the reference parser has pasted in `$evaluators`.

    It replaces each rule's references in turn, in the order of `$evaluators`, without
    looking into what it has just pasted: a rule's references to rules later in the order
    are expanded, to earlier ones (or itself) not. This counts references the same way.
    """
    text = json.dumps(targeting)
    size = len(text)
    order = {name: index for index, name in enumerate(evaluators)}
    pending = Counter(_references(text))
    rules = {name: json.dumps(rule) for name, rule in evaluators.items()}
    for name, index in order.items():
        count = pending.pop(name, 0)
        if not count:
            continue
        size += count * len(rules[name])
        if size > MAX_EXPANDED_TOTAL:
            return size  # far enough: the figure only has to say "too large"
        for inner, times in Counter(_references(rules[name])).items():
            if order.get(inner, -1) > index:
                pending[inner] += count * times
    return size


def _references(text: str) -> list[str]:
    return _REF.findall(text)


def _each(prefix: str, fields: Mapping[str, Any]) -> list[str]:
    found = []
    for name, value in fields.items():
        problem = too_deep(f"{prefix}.{name}" if prefix else str(name), value)
        if problem:
            found.append(problem)
    return found
