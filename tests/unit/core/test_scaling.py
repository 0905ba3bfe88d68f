"""Replica counts of `laneway scale`: parsing, checking, applying."""

from __future__ import annotations

import pytest

from laneway.core import scaling
from laneway.errors import InvalidInput
from laneway.spec.loader import load_spec_text

SPEC = load_spec_text(
    """\
app: shop
services:
  web: {command: serve, health: /healthz}
  worker: {command: work, replicas: 2}
environments:
  production: {replicas: {web: 3}}
""",
    filename="laneway.yaml",
)


def test_parse_reads_assignments() -> None:
    assert scaling.parse(["web=3", "worker=0"]) == {"web": 3, "worker": 0}
    assert scaling.parse([" web=64 "]) == {"web": 64}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["web"], "'web': expected SERVICE=COUNT, such as web=3"),
        (["web=three"], "'web=three': expected SERVICE=COUNT"),
        (["web=3=4"], "expected SERVICE=COUNT"),
        (["=3"], "expected SERVICE=COUNT"),
        (["Web=3"], "expected SERVICE=COUNT"),
        (["web=1.5"], "expected SERVICE=COUNT"),
        (["web=-1"], "web=-1: a replica count cannot be negative"),
        (["web=65"], "web=65: at most 64 replicas per service (the spec's cap)"),
        (["web=1", "web=2"], "'web=2': service 'web' is given twice"),
        ([], "nothing to scale"),
    ],
)
def test_parse_refuses_bad_input(arguments: list[str], message: str) -> None:
    with pytest.raises(InvalidInput, match=None) as caught:
        scaling.parse(arguments)
    assert message in caught.value.message


def test_check_names_an_unknown_service_and_the_known_ones() -> None:
    with pytest.raises(InvalidInput) as caught:
        scaling.check({"api": 2}, SPEC)
    assert caught.value.message == "api: no such service in the spec (services: web, worker)"
    scaling.check({"web": 0, "worker": 64}, SPEC)


def test_counts_take_the_override_else_the_kind_else_the_service() -> None:
    assert scaling.counts(SPEC, "staging", {}) == {"web": 1, "worker": 2}
    assert scaling.counts(SPEC, "production", {}) == {"web": 3, "worker": 2}
    assert scaling.counts(SPEC, "production", {"web": 5}) == {"web": 5, "worker": 2}


def test_merged_and_described() -> None:
    assert scaling.merged({"web": 2}, {"worker": 0}) == {"web": 2, "worker": 0}
    assert scaling.merged({"web": 2}, {"web": 4}) == {"web": 4}
    assert scaling.describe({"worker": 0, "web": 3}) == "scale web=3, worker=0"
