"""Config per environment: variables set with `laneway config set`, kept per release. Pure.

A release pairs a build with the config in force; changing the config makes a new release.
Secret values are sealed like the rest (store/vault.py) and never shown back: clients see
that a secret is set and its fingerprint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from laneway.errors import InvalidInput
from laneway.spec.model import ENV_KEY, INJECTED_ENV, RESERVED_ENV_PREFIX

MAX_VALUE = 32 * 1024
MAX_TOTAL = 256 * 1024
"""All of a release's values together: they reach every process as environment variables,
and the kernel refuses to start a process whose environment is too large."""
MIN_SECRET = 6
"""A shorter secret would be guessed, and could not be told apart from other output to hide it."""


@dataclass(frozen=True)
class ConfigEntry:
    value: str
    secret: bool = False


def parse_assignments(items: list[str]) -> dict[str, str]:
    """`["A=1", "B=x=y"]` -> {"A": "1", "B": "x=y"}; every bad item is named."""
    problems: list[str] = []
    values: dict[str, str] = {}
    for position, item in enumerate(items, 1):
        key, sep, value = item.partition("=")
        if not sep:
            problems.append(f"argument {position} ({item!r}): expected KEY=VALUE")
            continue
        problem = check_key(key) or check_value(key, value)
        if problem:
            problems.append(f"argument {position}: {problem}")
            continue
        values[key] = value
    if problems:
        raise InvalidInput("; ".join(problems))
    if not values:
        raise InvalidInput("no variables given: expected KEY=VALUE ...")
    return values


def check_key(key: str) -> str | None:
    if not re.match(ENV_KEY, key):
        return f"{key!r} is not a variable name (letters, digits and _, not starting with a digit)"
    if key in INJECTED_ENV:
        return f"laneway sets {key} itself; choose another name"
    if key.startswith(RESERVED_ENV_PREFIX):
        return f"{key}: names starting with {RESERVED_ENV_PREFIX} are reserved for laneway"
    return None


def check_value(key: str, value: str) -> str | None:
    if "\x00" in value:
        return f"{key}: a value cannot hold a NUL character"
    if len(value.encode()) > MAX_VALUE:
        return f"{key}: value longer than {MAX_VALUE} bytes"
    return None


def check_release(config: dict[str, ConfigEntry]) -> None:
    """What must hold of a release's whole config."""
    total = sum(len(k.encode()) + len(e.value.encode()) for k, e in config.items())
    if total > MAX_TOTAL:
        raise InvalidInput(
            f"config too large: {total} bytes in all, at most {MAX_TOTAL}",
            hint="large values belong in a file or a resource, not in environment variables",
        )


def check_secrets(values: dict[str, str]) -> None:
    short = sorted(key for key, value in values.items() if len(value) < MIN_SECRET)
    if short:
        raise InvalidInput(
            f"secret values must be at least {MIN_SECRET} characters: {', '.join(short)}"
        )


def with_set(
    config: dict[str, ConfigEntry], values: dict[str, str], *, secret: bool
) -> dict[str, ConfigEntry]:
    return {**config, **{key: ConfigEntry(value, secret) for key, value in values.items()}}


def without(config: dict[str, ConfigEntry], keys: list[str]) -> dict[str, ConfigEntry]:
    unknown = [key for key in keys if key not in config]
    if unknown:
        listed = ", ".join(sorted(config)) or "none"
        raise InvalidInput(f"not set: {', '.join(unknown)} (set: {listed})")
    return {key: entry for key, entry in config.items() if key not in keys}


def plain(config: dict[str, ConfigEntry]) -> dict[str, str]:
    return {key: entry.value for key, entry in config.items()}


def secret_values(config: dict[str, ConfigEntry]) -> list[str]:
    return [entry.value for entry in config.values() if entry.secret and entry.value]
