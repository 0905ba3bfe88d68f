"""The tests on counts agree with scipy's on the expanded samples."""

from __future__ import annotations

import pytest
from scipy import stats

from laneway.analysis.significance import (
    binomial_greater,
    growth_to_significance,
    mann_whitney_greater,
    proportion_greater,
    upper_scale_greater,
)


def expand(counts: list[int]) -> list[int]:
    return [index for index, count in enumerate(counts) for _ in range(count)]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ([5, 10, 20, 5, 0], [10, 20, 30, 0, 1]),
        ([0, 0, 3, 9, 30], [40, 30, 2, 1, 0]),
        ([1, 1, 1, 1, 1], [1, 1, 1, 1, 1]),
        ([0, 50, 0, 0, 0], [0, 40, 0, 0, 9]),
    ],
)
def test_mann_whitney_on_histograms_is_scipys_on_the_samples(a: list[int], b: list[int]) -> None:
    ours = mann_whitney_greater(a, b)
    theirs = stats.mannwhitneyu(expand(a), expand(b), alternative="greater", method="asymptotic")
    assert ours.u == pytest.approx(theirs.statistic)
    assert ours.p == pytest.approx(theirs.pvalue)
    assert ours.cles == pytest.approx(theirs.statistic / (sum(a) * sum(b)))


def test_all_ties_mean_no_evidence() -> None:
    assert mann_whitney_greater([0, 7, 0], [0, 9, 0]).p == 1.0
    assert upper_scale_greater([0, 7, 0], [0, 9, 0]).p == 1.0


def test_the_proportion_test_is_fishers_mid_p() -> None:
    table = [[30, 970], [100, 9900]]
    fisher = stats.fisher_exact(table, alternative="greater").pvalue
    point = stats.hypergeom.pmf(30, 11000, 130, 1000)
    assert proportion_greater(30, 1000, 100, 10000) == pytest.approx(fisher - point / 2)
    assert proportion_greater(0, 1000, 100, 10000) == pytest.approx(
        1 - stats.hypergeom.pmf(0, 11000, 100, 1000) / 2
    )


def test_the_binomial_test() -> None:
    assert binomial_greater(0, 100, 0.05) == 1.0
    assert binomial_greater(10, 100, 0.05) == pytest.approx(
        stats.binomtest(10, 100, 0.05, "greater").pvalue
    )


def test_an_upper_half_stretch_is_seen_and_a_lower_one_is_not() -> None:
    base = [0, 10, 40, 100, 40, 10, 0]
    stretched_up = [0, 10, 40, 100, 30, 10, 10]
    stretched_down = [10, 10, 30, 100, 40, 10, 0]

    def times(counts: list[int], factor: int) -> list[int]:
        return [count * factor for count in counts]

    assert upper_scale_greater(times(stretched_up, 10), times(base, 10)).p < 0.01
    assert upper_scale_greater(times(stretched_down, 10), times(base, 10)).p > 0.3


def test_growth_to_significance_is_bounded() -> None:
    assert growth_to_significance(0.4, 0.001) == 9.0
    assert growth_to_significance(0.0011, 0.001) == pytest.approx(1.1)
    assert 1.1 < growth_to_significance(0.02, 0.001) < 9.0


def test_the_tail_tests_p_value_allows_for_its_skew() -> None:
    """With a small side a, the sum of z^2 scores is skewed to the right: its p-value at a
    large excess is above the normal approximation's (which would raise false alarms)."""
    base = [0, 50, 400, 1000, 400, 50, 10, 2]
    few_slow = [0, 1, 6, 15, 5, 1, 2, 1]
    test = upper_scale_greater(few_slow, base)
    assert test.z > 3
    assert test.p > 2 * stats.norm.sf(test.z)
    assert test.p < 0.05
