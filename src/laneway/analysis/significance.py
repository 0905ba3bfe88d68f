"""The tests a verdict runs, on counts. scipy is imported inside each function, when a
judgement runs, so that importing `laneway.analysis` (and an idle control plane) does not
load it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist


def proportion_greater(hits_a: int, n_a: int, hits_b: int, n_b: int) -> float:
    """One-sided p-value that side a's share of hits exceeds side b's: Fisher's exact test,
    the hypergeometric tail of a's hits given both sides' totals, as a mid-p (half the
    probability of the count seen): exact where the normal approximation is not (a few
    expected failures at a strict level), without the conservatism of a discrete test."""
    from scipy import stats

    shape = (n_a + n_b, hits_a + hits_b, n_a)
    return float(stats.hypergeom.sf(hits_a, *shape) + stats.hypergeom.pmf(hits_a, *shape) / 2)


def binomial_greater(hits: int, n: int, share: float) -> float:
    """One-sided p-value that the share of hits among n exceeds `share` (exact binomial)."""
    from scipy import stats

    if hits == 0:
        return 1.0
    if share <= 0:
        return 0.0
    return float(stats.binom.sf(hits - 1, n, share))


@dataclass(frozen=True)
class RankTest:
    u: float
    z: float
    p: float
    cles: float
    """The common-language effect size: the chance that a random request of side a is slower
    than one of side b, ties counting half (0.5: no difference)."""


def mann_whitney_greater(a: Sequence[int], b: Sequence[int]) -> RankTest:
    """Mann-Whitney U of side a against side b (one-sided: a slower), from two histograms
    over the same buckets: the requests of a bucket are ties. The same statistic, tie
    correction and continuity correction as `scipy.stats.mannwhitneyu(method="asymptotic")`
    on the expanded samples, in time linear in the buckets instead of n log n in the
    requests."""
    from scipy import stats

    n_a, n_b = sum(a), sum(b)
    u = 0.0
    below_b = 0
    ties = 0
    for count_a, count_b in zip(a, b, strict=True):
        u += count_a * (below_b + count_b / 2)
        below_b += count_b
        t = count_a + count_b
        ties += t**3 - t
    n = n_a + n_b
    mean = n_a * n_b / 2
    variance = n_a * n_b / 12 * ((n + 1) - ties / (n * (n - 1)))
    if variance <= 0:
        return RankTest(u=u, z=0.0, p=1.0, cles=0.5)
    z = (u - mean - 0.5) / math.sqrt(variance)
    return RankTest(u=u, z=z, p=float(stats.norm.sf(z)), cles=u / (n_a * n_b))


def growth_to_significance(p: float, alpha: float) -> float:
    """By how much both samples must grow for an effect of the size seen to reach `alpha`
    (the z statistic grows with the square root of the sample): at least 1.1, at most 9."""
    from scipy import stats

    z_alpha = float(stats.norm.isf(alpha))
    z = float(stats.norm.isf(p)) if p < 0.5 else 0.0
    z = max(z, z_alpha / 3)
    return min(max((z_alpha / z) ** 2, 1.1), 9.0)


def upper_scale_greater(a: Sequence[int], b: Sequence[int]) -> RankTest:
    """A rank test of side a's upper half being more spread out than side b's: each request
    scores z^2 for its pooled rank's normal quantile z above the median, 0 below (the
    locally most powerful rank scores against a stretch of the log-latency's upper half,
    which is what a slower tail with the same median looks like); it uses every request of
    the upper half, where a count past the p99 uses one in a hundred. Ties are scored at their mid-rank. `cles` holds the mean score of a over b's (1: no
    difference)."""
    n_a, n_b = sum(a), sum(b)
    n = n_a + n_b
    if n_a == 0 or n_b == 0:
        return RankTest(u=0.0, z=0.0, p=1.0, cles=1.0)
    unit = NormalDist()
    scores = []
    below = 0
    for count_a, count_b in zip(a, b, strict=True):
        t = count_a + count_b
        z = unit.inv_cdf((below + (t + 1) / 2) / (n + 1)) if t else 0.0
        scores.append(z * z if z > 0 else 0.0)
        below += t
    statistic = sum(ca * s for ca, s in zip(a, scores, strict=True))
    pooled = [(ca + cb, s) for ca, cb, s in zip(a, b, scores, strict=True)]
    mean = sum(t * s for t, s in pooled) / n
    mean_b = (mean * n - statistic) / n_b
    ratio = (statistic / n_a) / mean_b if mean_b > 0 else math.inf
    excess = statistic - n_a * mean
    p, z = _permutation_sum_greater(excess, n_a, [(t, s - mean) for t, s in pooled])
    return RankTest(u=statistic, z=z, p=p, cles=ratio)


def _permutation_sum_greater(
    excess: float, n_a: int, deviations: Sequence[tuple[int, float]]
) -> tuple[float, float]:
    """P(a sum of n_a scores drawn without replacement exceeds its mean by `excess` or more)
    and the excess in standard deviations, the scores given as (count, deviation from their
    mean): the first three moments of that sum matched by a
    shifted gamma (Pearson type III). Scores like z^2 make the sum skewed to the right; the
    normal approximation would then understate small p-values several times over at the
    strict levels a rollout tests at (B7's false alarms at 1 and 5% weight)."""
    from scipy import stats

    n = sum(t for t, _ in deviations)
    if n < 3:
        return 1.0, 0.0
    m2 = sum(t * d * d for t, d in deviations) / n
    m3 = sum(t * d**3 for t, d in deviations) / n
    variance = n_a * (n - n_a) / (n - 1) * m2
    if variance <= 0:
        return 1.0, 0.0
    sd = math.sqrt(variance)
    z = excess / sd
    skew = n_a * (n - n_a) * (n - 2 * n_a) / ((n - 1) * (n - 2)) * m3 / variance**1.5
    if abs(skew) < 1e-3:
        return float(stats.norm.sf(z)), z
    shape = 4 / skew**2
    if skew > 0:
        return float(stats.gamma.sf(shape + z * 2 / skew, shape)), z
    return float(stats.gamma.cdf(shape - z * 2 / -skew, shape)), z
