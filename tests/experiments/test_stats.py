"""experiments.stats against scipy, hand-computed variances and simulations with known truth."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from shelfwise.errors import DataError
from shelfwise.experiments.stats import (
    Comparison,
    compare_means,
    compare_ratios,
    cuped,
    mixture_tau,
    ratio_and_variance,
    sequential_p_value,
    sequential_p_values,
    srm_check,
)


def test_compare_means_reproduces_scipy_welch() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(10.0, 2.0, 300)
    b = rng.normal(10.5, 3.0, 250)
    got = compare_means(a, b)
    ref = sps.ttest_ind(b, a, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert got.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert got.ci95[0] == pytest.approx(ci.low, rel=1e-9)
    assert got.ci95[1] == pytest.approx(ci.high, rel=1e-9)
    assert got.diff == pytest.approx(b.mean() - a.mean())
    assert got.lift == pytest.approx(b.mean() / a.mean() - 1)
    assert (got.n_a, got.n_b) == (300, 250)
    assert got.method == "welch"
    # the lift interval is the delta-method one around the lift
    lo, hi = got.lift_ci95
    assert lo < got.lift < hi
    var = (b.var(ddof=1) / 250) / a.mean() ** 2 + b.mean() ** 2 * (
        a.var(ddof=1) / 300
    ) / a.mean() ** 4
    assert hi - lo == pytest.approx(2 * 1.959963984540054 * math.sqrt(var), rel=1e-9)


def test_compare_means_alpha_widens_interval() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 100), rng.normal(0.2, 1, 100)
    c95, c99 = compare_means(a, b), compare_means(a, b, alpha=0.01)
    assert c99.ci95[0] < c95.ci95[0] and c99.ci95[1] > c95.ci95[1]
    assert c99.p_value == pytest.approx(c95.p_value)


def test_to_dict_is_json_ready() -> None:
    c = compare_means([0.0, 0.0, 0.0], [1.0, 2.0, 3.0])
    d = c.to_dict()
    assert d["a_value"] == 0.0 and d["lift"] is None and d["lift_ci95"] == [None, None]
    assert d["ci95"] == [pytest.approx(c.ci95[0]), pytest.approx(c.ci95[1])]
    assert set(d) >= {"a_value", "b_value", "lift", "diff", "ci95", "lift_ci95", "p_value"}
    assert set(d) >= {"n_a", "n_b"}
    with pytest.raises(AttributeError):
        c.p_value = 0.5  # type: ignore[misc]


def test_identical_constant_groups() -> None:
    c = compare_means([1.0, 1.0], [1.0, 1.0])
    assert c.p_value == 1.0 and c.diff == 0.0 and c.ci95 == (0.0, 0.0)


@pytest.mark.parametrize(
    ("a", "b", "field"),
    [([1.0], [1.0, 2.0], "a"), ([1.0, 2.0], [[1.0, 2.0]], "b"), ([1.0, float("nan")], [1, 2], "a")],
)
def test_bad_input_names_the_argument(a: object, b: object, field: str) -> None:
    with pytest.raises(DataError, match=rf"^{field}:"):
        compare_means(a, b)  # type: ignore[arg-type]


def test_delta_method_variance_by_hand() -> None:
    # num = [1, 2, 0, 3], den = [2, 4, 1, 5]: R = 1.5 / 3 = 0.5;
    # var(n) = 5/3, var(d) = 10/3, cov = 7/3 ->
    # Var(R) = (5/3 - 2 * 0.5 * 7/3 + 0.25 * 10/3) / (4 * 3^2) = (0.5/3) / 36 = 1/216
    ratio, var, k = ratio_and_variance([1, 2, 0, 3], [2, 4, 1, 5])
    assert ratio == pytest.approx(0.5)
    assert var == pytest.approx(1 / 216)
    assert k == 4
    c = compare_ratios([1, 2, 0, 3], [2, 4, 1, 5], [1, 2, 0, 3], [2, 4, 1, 5])
    assert c.diff == 0 and c.p_value == pytest.approx(1.0)
    assert c.se == pytest.approx(math.sqrt(2 / 216))
    assert c.ci95[1] == pytest.approx(1.959963984540054 * math.sqrt(2 / 216))


def test_delta_method_matches_simulated_spread() -> None:
    # clicks / impressions per user, impressions vary by user: the delta-method standard
    # error agrees with the spread of the ratio over many replications
    rng = np.random.default_rng(7)
    ratios, ses = [], []
    for _ in range(400):
        imps = rng.poisson(8, 500) + 1
        p = rng.beta(2, 18, 500)  # users differ in propensity: clustered clicks
        clicks = rng.binomial(imps, p)
        r, v, _ = ratio_and_variance(clicks, imps)
        ratios.append(r)
        ses.append(math.sqrt(v))
    assert np.std(ratios, ddof=1) == pytest.approx(np.mean(ses), rel=0.1)


def test_compare_ratios_detects_a_lift() -> None:
    rng = np.random.default_rng(3)
    imps_a, imps_b = rng.poisson(10, 4000) + 1, rng.poisson(10, 4000) + 1
    clicks_a = rng.binomial(imps_a, 0.10)
    clicks_b = rng.binomial(imps_b, 0.12)
    c = compare_ratios(clicks_a, imps_a, clicks_b, imps_b)
    assert c.a_value == pytest.approx(0.10, abs=0.005)
    assert c.lift == pytest.approx(0.2, abs=0.06)
    assert c.ci95[0] > 0 and c.p_value < 1e-6
    assert c.lift_ci95[0] < 0.2 < c.lift_ci95[1]
    assert c.method == "delta"


def test_compare_ratios_rejects_zero_denominators() -> None:
    with pytest.raises(DataError, match="den_b"):
        compare_ratios([1, 2], [1, 2], [0, 0], [0, 0])


def test_srm_check_balanced_and_skewed() -> None:
    chi2, p = srm_check([5000, 5000], [0.5, 0.5])
    assert chi2 == 0.0 and p == pytest.approx(1.0)
    chi2, p = srm_check([5500, 4500], [0.5, 0.5])  # (500^2 / 5000) * 2 = 100
    assert chi2 == pytest.approx(100.0)
    assert p == pytest.approx(sps.chi2.sf(100.0, 1))
    assert p < 1e-20
    chi2, p = srm_check([5500, 4500], [55, 45])  # matches its configured 55/45 split
    assert chi2 == pytest.approx(0.0) and p == pytest.approx(1.0)
    ref = sps.chisquare([300, 330, 370], [1000 / 3] * 3)
    assert srm_check([300, 330, 370], [1, 1, 1]) == pytest.approx((ref.statistic, ref.pvalue))
    with pytest.raises(DataError, match="weights"):
        srm_check([1, 2], [1.0])


def test_cuped_keeps_the_mean_and_removes_explained_variance() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(5, 2, 2000)
    y = 3 + 0.8 * x + rng.normal(0, 1, 2000)
    adj = cuped(y, x)
    assert adj.mean() == pytest.approx(y.mean())
    rho = np.corrcoef(y, x)[0, 1]
    assert adj.var(ddof=1) == pytest.approx(y.var(ddof=1) * (1 - rho**2), rel=1e-9)


def test_compare_means_covariate_narrows_interval_without_bias() -> None:
    rng = np.random.default_rng(11)
    xa, xb = rng.gamma(2, 10, 3000), rng.gamma(2, 10, 3000)
    ya = xa + rng.normal(0, 5, 3000)
    yb = xb + 1.0 + rng.normal(0, 5, 3000)  # true effect 1.0
    plain = compare_means(ya, yb)
    adj = compare_means(ya, yb, covariate=(xa, xb))
    assert adj.method == "welch+cuped"
    width = lambda c: c.ci95[1] - c.ci95[0]  # noqa: E731
    assert width(adj) < 0.5 * width(plain)
    assert adj.ci95[0] < 1.0 < adj.ci95[1]
    with pytest.raises(DataError, match=r"covariate\[1\]"):
        compare_means(ya, yb, covariate=(xa, xb[:10]))


@pytest.mark.parametrize("z", [0.0, 0.5, 1.0, 1.96, 2.5, 3.0, 4.0, 6.0])
@pytest.mark.parametrize("ratio", [0.01, 0.1, 1.0, 10.0])
def test_sequential_p_is_never_below_fixed_horizon_p(z: float, ratio: float) -> None:
    se = 0.3
    p_seq = sequential_p_value(z * se, se, tau=math.sqrt(ratio) * se)
    p_fixed = 2 * sps.norm.sf(z)
    assert p_seq >= p_fixed
    assert 0.0 <= p_seq <= 1.0


def test_sequential_p_known_value() -> None:
    # V = 1, tau^2 = 1: Lambda = sqrt(1/2) exp(z^2 / 4); z = 3 -> p = sqrt(2) exp(-9/4)
    assert sequential_p_value(3.0, 1.0, 1.0) == pytest.approx(math.sqrt(2) * math.exp(-2.25))


def test_sequential_p_stays_valid_under_daily_peeking() -> None:
    # A/A tests looked at 30 times: stopping when the fixed-horizon p < 0.05 rejects far
    # more than 5%; the always-valid p-value keeps the rate under 5%.
    rng = np.random.default_rng(2026)
    runs, looks, per_look = 600, 30, 50
    a = rng.normal(0, 1, (runs, looks * per_look))
    b = rng.normal(0, 1, (runs, looks * per_look))
    n = per_look * np.arange(1, looks + 1)
    idx = n - 1
    mean_a = np.cumsum(a, axis=1)[:, idx] / n
    mean_b = np.cumsum(b, axis=1)[:, idx] / n
    se = np.sqrt(2.0 / n)
    diffs = mean_b - mean_a
    naive = (2 * sps.norm.sf(np.abs(diffs / se)) < 0.05).any(axis=1).mean()
    seq = np.array(
        [sequential_p_values(diffs[r], np.broadcast_to(se, (looks,)), 0.1)[-1] for r in range(runs)]
    )
    assert naive > 0.15
    assert (seq < 0.05).mean() <= 0.05
    # the p-values are non-increasing over looks
    p = sequential_p_values(diffs[0], se, 0.1)
    assert np.all(np.diff(p) <= 0)


def test_sequential_p_detects_a_real_effect() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.normal(0, 1, 5000), rng.normal(0.15, 1, 5000)
    c = compare_means(a, b)
    tau = mixture_tau(a, b, effect_size=0.1)
    assert tau == pytest.approx(0.1, rel=0.05)
    p = sequential_p_value(c.diff, c.se, tau)
    assert p < 0.01
    assert p >= c.p_value


def test_comparison_is_frozen_dataclass() -> None:
    c = Comparison(1.0, 2.0, 1.0, 1.0, (0.5, 1.5), (0.5, 1.5), 0.01, 10, 10, 0.25, "welch")
    assert c.significant
    assert c.to_dict()["ci95"] == [0.5, 1.5]
