"""The spec's `canary.metrics`: what loads, what is refused with file:line, and the metric
records a rollout keeps (core.canary, kept as JSON with the status)."""

from __future__ import annotations

import pytest

from laneway.core import canary, rollouts
from laneway.core.rollout_json import from_json, to_json
from laneway.errors import SpecError
from laneway.spec.loader import load_spec_text
from laneway.spec.metrics import render

HEAD = """\
app: shop
services:
  web:
    command: serve
canary:
  metrics:
"""
QUERY = "'sum(rate(errors_total{release=\"{{release}}\"}[{{interval}}]))'"


def test_metrics_load_and_become_the_rollouts_records() -> None:
    spec = load_spec_text(
        HEAD
        + f"""\
    - name: checkout-errors
      query: {QUERY}
      max_increase: 10%
      max: 0.5
    - name: p99
      query: 'p99{{release="{{{{release}}}}",env="{{{{environment}}}}",app="{{{{app}}}}"}}'
      max_increase: 0.05
    - name: orders
      query: 'sum(rate(orders_total{{release="{{{{ release }}}}"}}[{{{{interval}}}}]))'
      max_decrease: 5%
      min: 1
"""
    )
    strategy = canary.strategy(spec.canary)
    assert strategy.analysis is not None
    assert strategy.analysis.metrics == (
        rollouts.Metric(
            name="checkout-errors",
            query='sum(rate(errors_total{release="{{release}}"}[{{interval}}]))',
            relative=0.1,
            limit=0.5,
        ),
        rollouts.Metric(
            name="p99",
            query='p99{release="{{release}}",env="{{environment}}",app="{{app}}"}',
            absolute=0.05,
        ),
        rollouts.Metric(
            name="orders",
            query='sum(rate(orders_total{release="{{ release }}"}[{{interval}}]))',
            higher_is_better=True,
            relative=0.05,
            limit=1.0,
        ),
    )
    status = rollouts.RolloutStatus(strategy=strategy)
    assert from_json(to_json(status)) == status
    values = {"release": "v7", "interval": "120s", "environment": "production", "app": "shop"}
    assert render(strategy.analysis.metrics[2].query, values) == (
        'sum(rate(orders_total{release="v7"}[120s]))'
    )


def test_the_command_keeps_the_specs_metrics() -> None:
    spec = load_spec_text(HEAD + f"    - {{name: e, query: {QUERY}, max: 1}}\n")
    merged = canary.merged(spec.canary, {"steps": [5, 100], "interval": "1m"})
    analysis = canary.strategy(merged).analysis
    assert analysis is not None and [m.name for m in analysis.metrics] == ["e"]


def test_a_status_kept_before_metrics_existed_reads_as_none() -> None:
    data = to_json(
        rollouts.RolloutStatus(strategy=canary.strategy(load_spec_text(HEAD + "    []\n").canary))
    )
    del data["analysis"]["metrics"]
    analysis = from_json(data).strategy.analysis
    assert analysis is not None and analysis.metrics == ()


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (
            "    - {name: e, query: 'up', max: 1}\n",
            "laneway.yaml:7:24: canary.metrics[0].query: put {{release}} where the release "
            'label goes (`release="{{release}}"`): the query is evaluated for the canary\'s '
            "release and for stable's",
        ),
        (
            "    - {name: e, query: 'x{release=\"{{release}}\"}[{{window}}]', max: 1}\n",
            "laneway.yaml:7:24: canary.metrics[0].query: unknown placeholder {{window}}; "
            "known: {{release}}, {{interval}}, {{environment}}, {{app}}",
        ),
        (
            f"    - {{name: e, query: {QUERY}}}\n",
            "laneway.yaml:7:7: canary.metrics[0]: give max_increase or max (lower is better), "
            "or max_decrease or min (higher is better)",
        ),
        (
            f"    - {{name: e, query: {QUERY}, max_increase: 10%, min: 1}}\n",
            "laneway.yaml:7:7: canary.metrics[0]: give max_increase and max (lower is better) "
            "or max_decrease and min (higher is better), not both",
        ),
        (
            f"    - {{name: e, query: {QUERY}, max_increase: ten}}\n",
            "laneway.yaml:7:102: canary.metrics[0].max_increase: a percent of stable's value "
            "(`10%`) or a number in the query's units, got 'ten'",
        ),
        (
            f"    - {{name: e, query: {QUERY}, max_increase: true}}\n",
            "laneway.yaml:7:102: canary.metrics[0].max_increase: a percent of stable's value "
            "(`10%`) or a number in the query's units, got true",
        ),
        (
            f"    - {{name: e, query: {QUERY}, max_increase: -1}}\n",
            "laneway.yaml:7:102: canary.metrics[0].max_increase: a number of 0 or more, got -1",
        ),
        (
            f"    - {{name: e, query: {QUERY}, max_decrease: 150%}}\n",
            "laneway.yaml:7:102: canary.metrics[0].max_decrease: at most 100% (of stable's "
            "value), got 150%",
        ),
        (
            f"    - {{name: e, query: {QUERY}, max: .nan}}\n",
            "laneway.yaml:7:93: canary.metrics[0].max: a finite number, got nan",
        ),
        (
            f"    - {{name: E, query: {QUERY}, max: 1}}\n",
            "laneway.yaml:7:14: canary.metrics[0].name: expected a name like `checkout-errors` "
            "(a-z, 0-9, '_' and '-', starting with a letter, at most 40 characters), got 'E'",
        ),
        (
            f"    - {{name: latency, query: {QUERY}, max: 1}}\n",
            "laneway.yaml:7:14: canary.metrics[0].name: latency is a check of the router's "
            "own; name it otherwise (`app-latency`)",
        ),
        (
            f"    - {{name: e, query: {QUERY}, max: 1, url: 'http://p'}}\n",
            "laneway.yaml:7:96: canary.metrics[0].url: unknown key (allowed: max, "
            "max_decrease, max_increase, min, name, query)",
        ),
        (
            f"    - {{name: e, query: {QUERY}, max: 1}}\n" * 2,
            "laneway.yaml:7:5: canary.metrics: two metrics are named e",
        ),
        (
            "".join(f"    - {{name: m{i}, query: {QUERY}, max: 1}}\n" for i in range(6)),
            "laneway.yaml:7:5: canary.metrics: at most 5 entries, got 6",
        ),
    ],
)
def test_bad_metrics_are_refused_with_where_and_what(items: str, expected: str) -> None:
    with pytest.raises(SpecError) as raised:
        load_spec_text(HEAD + items)
    assert raised.value.problems == [expected]
