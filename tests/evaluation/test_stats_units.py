"""Intervals over test users / queries, for 0/1 metrics from their mean, bounds, and
correlation intervals: known answers and cross-checks against `mean_interval`."""

import math

import numpy as np
import pytest

from shelfwise.errors import ConfigError
from shelfwise.evaluation.stats import (
    binary_interval,
    bounded_half_width,
    correlation_interval,
    mean_interval,
    per_unit_intervals,
    summary_interval,
    unit_summary,
)

T_975_2 = 4.302652729911275  # t(0.975, 2 degrees of freedom)


def test_per_unit_intervals_known_answer() -> None:
    out = per_unit_intervals({"ndcg@10": [1.0, 2.0, 3.0], "hr@10": np.array([1.0])})
    half = T_975_2 / math.sqrt(3)  # mean 2, s = 1
    assert out["ndcg@10"]["mean"] == pytest.approx(2.0)
    assert out["ndcg@10"]["ci95"] == pytest.approx([2 - half, 2 + half])
    assert out["ndcg@10"]["n"] == 3
    assert out["hr@10"] == {"mean": 1.0, "ci95": [1.0, 1.0], "n": 1}


def test_binary_interval_is_the_t_interval_of_the_zeros_and_ones() -> None:
    # 1 1 0: mean 2/3, s^2 = 1/3, half = t * sqrt(1/3) / sqrt(3) = t / 3
    _, low, high = binary_interval(2 / 3, 3)
    assert (low, high) == pytest.approx((2 / 3 - T_975_2 / 3, 2 / 3 + T_975_2 / 3))
    rng = np.random.default_rng(0)
    for n, p in ((50, 0.3), (22_363, 0.0959), (1000, 0.0), (7, 1.0)):
        x = (rng.random(n) < p).astype(float)
        assert binary_interval(float(x.mean()), n) == pytest.approx(mean_interval(x))
    assert binary_interval(0.25, 1) == (0.25, 0.25, 0.25)
    with pytest.raises(ConfigError, match="mean"):
        binary_interval(1.5, 10)


def test_bounded_half_width_bounds_any_values_in_the_unit_interval() -> None:
    rng = np.random.default_rng(1)
    for draw in (rng.random, lambda n: rng.beta(0.3, 3.0, n), lambda n: rng.random(n) ** 4):
        x = np.asarray(draw(200))
        mean, low, high = mean_interval(x)
        assert (high - low) / 2 <= bounded_half_width(float(mean), x.size) + 1e-12
    zeros_ones = np.array([0.0, 1.0, 1.0, 0.0, 1.0])  # the bound is reached by 0/1 values
    mean, low, high = mean_interval(zeros_ones)
    assert bounded_half_width(float(mean), 5) == pytest.approx((high - low) / 2)
    # p = 0.5, n = 101: h = t(0.975, 100) * sqrt(101 * 0.25 / 100) / sqrt(101) = 1.98397 * 0.05
    assert bounded_half_width(0.5, 101) == pytest.approx(1.9839715185235518 * 0.05)


def test_correlation_interval_known_answer() -> None:
    # r = 0.5, n = 28: Spearman se = sqrt(1.06 / 25) = 0.205913; atanh(0.5) = 0.549306
    lo, hi = correlation_interval(0.5, 28)
    z = 1.959963984540054 * math.sqrt(1.06 / 25)
    assert (lo, hi) == pytest.approx((math.tanh(0.5493061443 - z), math.tanh(0.5493061443 + z)))
    assert lo == pytest.approx(0.1447, abs=1e-4) and hi == pytest.approx(0.7411, abs=1e-4)
    pearson = correlation_interval(0.5, 28, spearman=False)  # narrower: se = 1 / 5
    assert pearson[0] > lo and pearson[1] < hi
    assert correlation_interval(1.0, 50) == (1.0, 1.0)
    with pytest.raises(ConfigError, match="4 pairs"):
        correlation_interval(0.3, 3)


def test_summary_interval_from_n_mean_and_sd_is_the_t_interval_of_the_values() -> None:
    # 1 2 3: mean 2, s = 1, half = t(0.975, 2) / sqrt(3)
    assert unit_summary([1.0, 2.0, 3.0]) == {"n": 3, "mean": 2.0, "sd": 1.0}
    half = T_975_2 / math.sqrt(3)
    assert summary_interval(2.0, 1.0, 3) == pytest.approx((2.0, 2 - half, 2 + half))
    rng = np.random.default_rng(3)
    x = rng.beta(0.5, 4.0, 2374)
    s = unit_summary(x)
    assert summary_interval(s["mean"], s["sd"], s["n"]) == pytest.approx(mean_interval(x))
    assert unit_summary([0.25]) == {"n": 1, "mean": 0.25, "sd": 0.0}
    assert summary_interval(0.25, 0.0, 1) == (0.25, 0.25, 0.25)
    with pytest.raises(ConfigError, match="sd"):
        summary_interval(0.5, -1.0, 10)
    with pytest.raises(ConfigError, match="no values"):
        unit_summary([])
