"""How big a laneway.yaml may be: its size in bytes, its counts, its nesting. Pure.

The loader checks these while it reads the YAML, before anything is validated, so a file far
over a limit is refused at the cost of reading it, not of validating it: a spec is parsed by
the server on every deploy of a new commit. The figures are generous for any real app
(docs/spec.md, "Limits"); each message names the limit and the actual figure:

    laneway.yaml:1:1: the file is 4,718,592 bytes (4.5 MiB), over the limit of 262,144 bytes (256 KiB)
    laneway.yaml:2:1: services: 150 services, over the limit of 100
"""

from __future__ import annotations

MAX_BYTES = 256 * 1024
MAX_DEPTH = 32
"""Levels of mappings and lists; the deepest real field (a data source's mask) is at 6."""
MAX_VALUES = 100_000
"""Values of every kind once aliases are expanded: what stops an alias bomb."""
MAX_ENTRIES = 1_000
"""Entries of any mapping or list not listed in `COUNTS`."""

HINT = "docs/spec.md, under Limits, lists how big a spec may be."

Pattern = tuple[str | None, ...]

# (where, most entries, what they are); None in a pattern matches any key.
COUNTS: tuple[tuple[Pattern, int, str], ...] = (
    (("services",), 100, "services"),
    (("resources",), 50, "resources"),
    (("pipeline",), 20, "environments"),
    (("env",), 500, "variables"),
    (("services", None, "env"), 500, "variables"),
    (("environments", None, "env"), 500, "variables"),
    (("environments", None, "replicas"), 100, "services"),
    (("environments", None, "data"), 50, "resources"),
    (("environments", None, "data", None, "mask"), 500, "columns"),
    (("build", "path"), 50, "directories"),
    (("parity", "config"), 500, "config keys"),
)


def too_large(size: int) -> str | None:
    """The problem with a spec of `size` bytes (UTF-8), or None."""
    if size <= MAX_BYTES:
        return None
    return (
        f"the file is {size:,} bytes ({_human(size)}), over the limit of "
        f"{MAX_BYTES:,} bytes ({_human(MAX_BYTES)})"
    )


def too_many(loc: tuple[str | int, ...], count: int) -> str | None:
    """The problem with `count` entries in the mapping or list at `loc`, or None."""
    limit, noun = entries_limit(loc)
    if count <= limit:
        return None
    return f"{count:,} {noun}, over the limit of {limit:,}"


def entries_limit(loc: tuple[str | int, ...]) -> tuple[int, str]:
    """The most entries the mapping or list at `loc` may have, and what they are called."""
    for pattern, limit, noun in COUNTS:
        if len(pattern) == len(loc) and all(
            want is None or want == got for want, got in zip(pattern, loc, strict=True)
        ):
            return limit, noun
    return MAX_ENTRIES, "entries"


def too_deep() -> str:
    return f"nested deeper than the limit of {MAX_DEPTH} levels"


def too_many_values(*, aliases: bool) -> str:
    if aliases:
        return f"aliases expand to more than {MAX_VALUES:,} values, over the limit"
    return f"more than {MAX_VALUES:,} values, over the limit"


def _human(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MiB"
    return f"{size / 1024:.0f} KiB" if size % 1024 == 0 else f"{size / 1024:.1f} KiB"
