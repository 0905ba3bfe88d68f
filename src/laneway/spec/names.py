"""The rules for names that laneway puts in hostnames and API paths (apps, environments,
services) and for build ids, with what a person is told when a name breaks them. Pure, and
free of pydantic, so that the CLI checks a name before any request without loading the
spec's models."""

from __future__ import annotations

import re

MAX_LABEL = 40
DNS_LABEL = r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$"
"""A lowercase DNS label of at most MAX_LABEL characters (app and environment names meet in
a hostname, `{environment}.{app}.{domain}`)."""
LABEL_RULE = (
    "a lowercase DNS label like `feature-x` (a-z, 0-9 and '-', starting with a letter, "
    f"not ending with '-', at most {MAX_LABEL} characters)"
)
ENV_KEY = r"^[A-Za-z_][A-Za-z0-9_]*$"
"""An environment variable's name: config keys, and the secrets webhooks are signed with."""
BUILD_ID = r"^(sha256:)?[0-9a-f]{6,64}$"
BUILD_RULE = "a build id such as `sha256:3f2a1c…` or a prefix of at least 6 hex digits"

_LABEL = re.compile(DNS_LABEL)
_BUILD = re.compile(BUILD_ID)


def label_problem(value: str) -> str | None:
    """What is wrong with `value` as a name, in words; None when it is a valid name."""
    if _LABEL.fullmatch(value):
        return None
    if len(value) > MAX_LABEL:
        return f"{len(value)} characters long; expected {LABEL_RULE}"
    return f"expected {LABEL_RULE}"


def build_problem(value: str) -> str | None:
    """What is wrong with `value` as a build id (or a prefix of one); None when nothing."""
    return None if _BUILD.fullmatch(value) else f"expected {BUILD_RULE}"
