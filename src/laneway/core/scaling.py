"""Replica counts set by `laneway scale`: parsing, checking and applying them. Pure.

A scale is recorded as a release (same build, same config) whose `replicas` override the
spec's counts for its services; later releases keep the override, a rollback takes the
chosen release's. `counts` says how many replicas of each service an environment runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from laneway.errors import InvalidInput

if TYPE_CHECKING:  # the CLI parses counts without loading the spec's models
    from laneway.spec.model import Spec

MAX_REPLICAS = 64
"""The spec's own cap (`services.<name>.replicas`: 0-64)."""

_ASSIGNMENT = re.compile(r"^([a-z][a-z0-9-]*)=(-?[0-9]+)$")


def parse(assignments: Iterable[str]) -> dict[str, int]:
    """`["web=3", "worker=0"]` -> `{"web": 3, "worker": 0}`; refuses bad syntax, a negative or
    too large count, and a service named twice, each with a message naming the argument."""
    counts: dict[str, int] = {}
    for text in assignments:
        match = _ASSIGNMENT.fullmatch(text.strip())
        if match is None:
            raise InvalidInput(
                f"{text!r}: expected SERVICE=COUNT, such as web=3",
            )
        service, count = match.group(1), int(match.group(2))
        if service in counts:
            raise InvalidInput(f"{text!r}: service {service!r} is given twice")
        counts[service] = count
    if not counts:
        raise InvalidInput("nothing to scale: give SERVICE=COUNT, such as web=3")
    check(counts)
    return counts


def check(counts: Mapping[str, int], spec: Spec | None = None) -> None:
    """Each count within 0..MAX_REPLICAS and, given the spec, each service one of its own."""
    for service, count in counts.items():
        if count < 0:
            raise InvalidInput(f"{service}={count}: a replica count cannot be negative")
        if count > MAX_REPLICAS:
            raise InvalidInput(
                f"{service}={count}: at most {MAX_REPLICAS} replicas per service (the spec's cap)"
            )
        if spec is not None and service not in spec.services:
            known = ", ".join(sorted(spec.services)) or "none"
            raise InvalidInput(f"{service}: no such service in the spec (services: {known})")


def counts(spec: Spec, kind: str, overrides: Mapping[str, int]) -> dict[str, int]:
    """Replicas per service: the release's override, else the spec's for this kind."""
    return {
        service: overrides.get(service, spec.replicas_for(service, kind))
        for service in spec.services
    }


def merged(current: Mapping[str, int], change: Mapping[str, int]) -> dict[str, int]:
    """The overrides after a scale: the current ones with `change` applied."""
    return dict(sorted({**current, **change}.items()))


def describe(change: Mapping[str, int]) -> str:
    """`scale web=3, worker=0`: a scale release's description."""
    return "scale " + ", ".join(f"{s}={n}" for s, n in sorted(change.items()))
