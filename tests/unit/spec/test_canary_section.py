"""The spec's `canary:` section: defaults, what it becomes, and each mistake named with its
file, line and field."""

from __future__ import annotations

import pytest

from laneway.core import canary, rollouts
from laneway.errors import SpecError
from laneway.spec.loader import load_spec_text

BASE = "app: shop\nservices:\n  web:\n    command: run\n"


def problems(section: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_spec_text(BASE + section)
    return list(caught.value.problems)


def test_the_defaults_walk_one_to_a_hundred_judged_every_two_minutes() -> None:
    strategy = canary.strategy(load_spec_text(BASE).canary)
    assert [s.weight for s in strategy.steps if isinstance(s, rollouts.SetWeight)] == [
        100,
        500,
        2_500,
        5_000,
        10_000,
    ]
    assert strategy.analysis is not None and strategy.analysis.interval == 120.0
    assert strategy.analysis.criteria["min_requests"] == 200
    assert strategy.hold_limit == 3600.0


def test_a_section_becomes_the_rollouts_strategy() -> None:
    spec = load_spec_text(
        BASE
        + "canary:\n  steps: [0.1, pause, 5, pause 10m, 50]\n  interval: 30s\n  warmup: 20s\n"
        + "  max_error_rate: 2\n  max_latency: 800ms\n  sticky: {header: X-User-Id}\n"
        + "  webhooks: [{url: 'https://ci.example/gate', on: [pre-step, aborted]}]\n"
        + "  hold_limit: 20m\n"
    )
    strategy = canary.strategy(spec.canary)
    assert strategy.steps == (
        rollouts.SetWeight(10),
        rollouts.Pause(None),
        rollouts.SetWeight(500),
        rollouts.Pause(600.0),
        rollouts.SetWeight(5_000),
        rollouts.SetWeight(10_000),
    )
    assert strategy.analysis is not None
    assert strategy.analysis.criteria["max_error_rate"] == 0.02
    assert strategy.analysis.warmup == 20.0
    assert strategy.analysis.criteria["max_latency"] == 0.8
    assert strategy.sticky_header == "x-user-id"
    assert strategy.hooks("pre-step") == strategy.hooks("aborted") != ()
    assert strategy.hold_limit == 1200.0


@pytest.mark.parametrize(
    ("section", "says"),
    [
        (
            "canary:\n  steps: [5, 1]\n",
            "laneway.yaml:6:10: canary.steps: step 2: weights only rise (1% after 5%)",
        ),
        ("canary:\n  steps: [0.001]\n", "two decimals at most"),
        ("canary:\n  steps: [5, wait]\n", "step 2: `pause`, `pause 10m`, or a percent"),
        ("canary:\n  interval: 2 minutes\n", "canary.interval: expected a duration like `30s`"),
        ("canary:\n  sticky: {header: a, cookie: b}\n", "give exactly one of header or cookie"),
        (
            "canary:\n  webhooks: [{url: 'ftp://x'}]\n",
            "canary.webhooks[0].url: expected an http:// or https:// URL",
        ),
        ("canary:\n  failure_limit: 11\n", "canary.failure_limit"),
        ("canary:\n  warmup: 1h\n", "canary.warmup: expected a duration like `0s`, `30s` or `2m`"),
        ("canary:\n  stepz: [1]\n", "canary.stepz: unknown key"),
        ("canary:\n  hold_limit: 5s\n", "canary.hold_limit: 10s to 24h, got 5s"),
        ("canary:\n  hold_limit: 25h\n", "canary.hold_limit: 10s to 24h, got 25h"),
    ],
)
def test_mistakes_are_named_where_they_are(section: str, says: str) -> None:
    found = problems(section)
    assert len(found) == 1 and says in found[0], found
