"""Statistics for A/B tests: intervals, p-values, sample-ratio checks, CUPED, sequential tests.

numpy and scipy only, so the live experiments (`experiments.analysis`) and the offline
shopper simulator report the same numbers the same way.

- `compare_means(a, b)`: Welch's two-sample t-test on per-unit values (one value per user:
  revenue per visitor, orders per user), with `covariate=(x_a, x_b)` for CUPED variance
  reduction from pre-period values.
- `compare_ratios(num_a, den_a, num_b, den_b)`: a ratio metric (clicks / impressions,
  orders / visits) whose randomisation unit is the user, not the impression: the variance of
  sum(num) / sum(den) comes from the delta method over per-user (num, den) pairs, so users
  with many impressions do not make the interval falsely narrow.
- `srm_check(counts, weights)`: Pearson chi-square test of the observed assignment counts
  against the configured weights (sample-ratio mismatch means the assignment or the logging
  is broken, and no comparison can be trusted).
- `cuped(y, x_pre)`: y - theta (x - mean x), theta = cov(y, x) / var(x).
- `sequential_p_value(diff, se, tau)` / `sequential_p_values(...)`: always-valid p-values
  from the mixture sequential probability ratio test (mSPRT) with a normal mixture (Johari,
  Koomen, Pekelis and Walsh, "Always valid inference", 2017 / Operations Research 2022):
  the p-value can be looked at after every day and stopping when it drops below alpha still
  keeps the false-positive rate at alpha.

Conventions: `b` is the treatment, `a` the control; `diff = b - a`, `lift = b / a - 1`.
Intervals are at level `1 - alpha` (the `ci95` names are the default alpha = 0.05).
The diff interval of `compare_means` uses Welch-Satterthwaite degrees of freedom (it
reproduces `scipy.stats.ttest_ind(equal_var=False).confidence_interval()`); ratio metrics
and lift intervals are normal (delta method).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats as sps

from shelfwise.errors import DataError

__all__ = [
    "Comparison",
    "compare_means",
    "compare_ratios",
    "cuped",
    "cuped_theta",
    "mixture_tau",
    "ratio_and_variance",
    "sequential_p_value",
    "sequential_p_values",
    "srm_check",
]


@dataclass(frozen=True)
class Comparison:
    """Control `a` against treatment `b` on one metric.

    `diff = b_value - a_value`; `lift = b_value / a_value - 1` (NaN when `a_value` is 0);
    `ci95` and `lift_ci95` are the `1 - alpha` intervals of `diff` and `lift`; `se` is the
    standard error of `diff` (what `sequential_p_value` takes); `method` names the test.
    """

    a_value: float
    b_value: float
    diff: float
    lift: float
    ci95: tuple[float, float]
    lift_ci95: tuple[float, float]
    p_value: float
    n_a: int
    n_b: int
    se: float
    method: str
    alpha: float = 0.05

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; NaN and infinities become None (JSON has no NaN)."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, float):
                out[key] = _finite_or_none(value)
            elif isinstance(value, tuple):
                out[key] = [_finite_or_none(float(v)) for v in value]
        return out

    @property
    def significant(self) -> bool:
        """True when `p_value < alpha`."""
        return bool(self.p_value < self.alpha)


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _vector(values: ArrayLike, name: str, min_size: int = 2) -> NDArray[np.float64]:
    """A 1-D float64 array with at least `min_size` finite values, or a DataError naming it."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name}: expected numbers ({exc})") from exc
    if arr.ndim != 1:
        raise DataError(f"{name}: expected a 1-D array of per-unit values, got shape {arr.shape}")
    if arr.size < min_size:
        raise DataError(f"{name}: needs at least {min_size} values, got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise DataError(f"{name}: contains NaN or infinite values")
    return arr


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise DataError(f"alpha: must lie strictly between 0 and 1, got {alpha}")


def _lift_and_interval(
    mean_a: float, mean_b: float, var_a: float, var_b: float, z: float
) -> tuple[float, tuple[float, float]]:
    """lift = mean_b / mean_a - 1 with a delta-method interval (independent groups).

    Var(mb / ma) ~= var_b / ma^2 + mb^2 var_a / ma^4, where var_* are variances of the
    group estimates (not of single observations).
    """
    if mean_a == 0.0:
        nan = float("nan")
        return nan, (nan, nan)
    ratio = mean_b / mean_a
    var = var_b / mean_a**2 + mean_b**2 * var_a / mean_a**4
    half = z * math.sqrt(max(var, 0.0))
    return ratio - 1.0, (ratio - 1.0 - half, ratio - 1.0 + half)


def _two_sided_p(stat: float, df: float | None = None) -> float:
    if df is None:
        return float(2.0 * sps.norm.sf(abs(stat)))
    return float(2.0 * sps.t.sf(abs(stat), df))


def cuped_theta(y: ArrayLike, x_pre: ArrayLike) -> float:
    """theta = cov(y, x) / var(x), 0 when the covariate does not vary."""
    yv = _vector(y, "y")
    xv = _vector(x_pre, "x_pre")
    if xv.size != yv.size:
        raise DataError(f"x_pre: has {xv.size} values but y has {yv.size}; one per unit")
    var_x = float(np.var(xv, ddof=1))
    if var_x == 0.0:
        return 0.0
    return float(np.cov(yv, xv, ddof=1)[0, 1] / var_x)


def cuped(
    y: ArrayLike, x_pre: ArrayLike, theta: float | None = None, center: float | None = None
) -> NDArray[np.float64]:
    """CUPED-adjusted values y - theta (x_pre - center).

    `theta` defaults to cov(y, x) / var(x) over the given units, `center` to mean(x_pre).
    Adjusting does not move the mean (when `center` is the mean) and removes the share of
    the variance that the pre-period explains: var(adjusted) = var(y) (1 - corr(y, x)^2).
    For an A/B comparison compute theta and the center over both groups pooled (that is what
    `compare_means(..., covariate=...)` does) so the same adjustment applies to both.
    """
    yv = _vector(y, "y")
    xv = _vector(x_pre, "x_pre")
    if xv.size != yv.size:
        raise DataError(f"x_pre: has {xv.size} values but y has {yv.size}; one per unit")
    th = cuped_theta(yv, xv) if theta is None else float(theta)
    c = float(xv.mean()) if center is None else float(center)
    return yv - th * (xv - c)


def compare_means(
    a: ArrayLike,
    b: ArrayLike,
    alpha: float = 0.05,
    covariate: tuple[ArrayLike, ArrayLike] | None = None,
) -> Comparison:
    """Welch's t-test of mean(b) - mean(a) on per-unit values.

    `covariate=(x_a, x_b)`: pre-period values of the same units (same order); both groups
    are CUPED-adjusted with theta and the center from the pooled groups, and the test runs on
    the adjusted values (a narrower interval when the pre-period predicts the metric; the
    reported means are the adjusted means).
    """
    _check_alpha(alpha)
    av = _vector(a, "a")
    bv = _vector(b, "b")
    method = "welch"
    if covariate is not None:
        xa = _vector(covariate[0], "covariate[0]")
        xb = _vector(covariate[1], "covariate[1]")
        if xa.size != av.size:
            raise DataError(f"covariate[0]: has {xa.size} values but a has {av.size}")
        if xb.size != bv.size:
            raise DataError(f"covariate[1]: has {xb.size} values but b has {bv.size}")
        y_all = np.concatenate([av, bv])
        x_all = np.concatenate([xa, xb])
        theta = cuped_theta(y_all, x_all)
        center = float(x_all.mean())
        av = av - theta * (xa - center)
        bv = bv - theta * (xb - center)
        method = "welch+cuped"
    n_a, n_b = av.size, bv.size
    mean_a, mean_b = float(av.mean()), float(bv.mean())
    va = float(np.var(av, ddof=1)) / n_a
    vb = float(np.var(bv, ddof=1)) / n_b
    diff = mean_b - mean_a
    se = math.sqrt(va + vb)
    if se == 0.0:
        p = 1.0 if diff == 0.0 else 0.0
        t_crit = 0.0
    else:
        df = (va + vb) ** 2 / (va**2 / (n_a - 1) + vb**2 / (n_b - 1))
        p = _two_sided_p(diff / se, df)
        t_crit = float(sps.t.ppf(1.0 - alpha / 2.0, df))
    z = float(sps.norm.ppf(1.0 - alpha / 2.0))
    lift, lift_ci = _lift_and_interval(mean_a, mean_b, va, vb, z)
    return Comparison(
        a_value=mean_a,
        b_value=mean_b,
        diff=diff,
        lift=lift,
        ci95=(diff - t_crit * se, diff + t_crit * se),
        lift_ci95=lift_ci,
        p_value=p,
        n_a=n_a,
        n_b=n_b,
        se=se,
        method=method,
        alpha=alpha,
    )


def ratio_and_variance(num: ArrayLike, den: ArrayLike, name: str = "") -> tuple[float, float, int]:
    """sum(num) / sum(den) and the delta-method variance of that estimate.

    With per-unit pairs (n_i, d_i), R = mean(n) / mean(d) and
    Var(R) ~= (var(n) - 2 R cov(n, d) + R^2 var(d)) / (k mean(d)^2) for k units.
    """
    nv = _vector(num, f"num_{name}" if name else "num")
    dv = _vector(den, f"den_{name}" if name else "den")
    if nv.size != dv.size:
        raise DataError(
            f"den_{name}: has {dv.size} values but num_{name} has {nv.size}; one pair per unit"
        )
    if np.any(dv < 0):
        raise DataError(f"den_{name}: denominators must not be negative")
    k = nv.size
    mean_d = float(dv.mean())
    if mean_d == 0.0:
        raise DataError(f"den_{name}: all denominators are 0; the ratio is undefined")
    mean_n = float(nv.mean())
    ratio = mean_n / mean_d
    cov = np.cov(nv, dv, ddof=1)
    var = (cov[0, 0] - 2.0 * ratio * cov[0, 1] + ratio**2 * cov[1, 1]) / (k * mean_d**2)
    return ratio, max(float(var), 0.0), k


def compare_ratios(
    num_a: ArrayLike,
    den_a: ArrayLike,
    num_b: ArrayLike,
    den_b: ArrayLike,
    alpha: float = 0.05,
) -> Comparison:
    """A ratio metric (sum num / sum den per group) compared with the delta method.

    One (num, den) pair per randomisation unit (user), e.g. clicks and impressions of each
    user; `n_a` / `n_b` count units. The test is a z-test on the difference of the ratios.
    """
    _check_alpha(alpha)
    ra, var_a, n_a = ratio_and_variance(num_a, den_a, "a")
    rb, var_b, n_b = ratio_and_variance(num_b, den_b, "b")
    diff = rb - ra
    se = math.sqrt(var_a + var_b)
    p = _two_sided_p(diff / se) if se > 0.0 else (1.0 if diff == 0.0 else 0.0)
    z = float(sps.norm.ppf(1.0 - alpha / 2.0))
    lift, lift_ci = _lift_and_interval(ra, rb, var_a, var_b, z)
    return Comparison(
        a_value=ra,
        b_value=rb,
        diff=diff,
        lift=lift,
        ci95=(diff - z * se, diff + z * se),
        lift_ci95=lift_ci,
        p_value=p,
        n_a=n_a,
        n_b=n_b,
        se=se,
        method="delta",
        alpha=alpha,
    )


def srm_check(counts: Sequence[int], weights: Sequence[float]) -> tuple[float, float]:
    """Sample-ratio mismatch: chi-square of observed `counts` against `weights`.

    Returns (chi2, p_value); a p-value below 0.001 (the usual threshold) means the split is
    not what was configured. Weights need not sum to 1.
    """
    obs = np.asarray(counts, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if obs.ndim != 1 or obs.size < 2:
        raise DataError("counts: needs one count per variant, at least two variants")
    if w.shape != obs.shape:
        raise DataError(f"weights: has {w.size} values but counts has {obs.size}")
    if np.any(obs < 0) or not np.all(np.isfinite(obs)):
        raise DataError("counts: must be finite and not negative")
    if np.any(w <= 0) or not np.all(np.isfinite(w)):
        raise DataError("weights: must be finite and positive")
    total = float(obs.sum())
    if total == 0.0:
        return 0.0, 1.0
    expected = total * w / w.sum()
    chi2 = float(((obs - expected) ** 2 / expected).sum())
    p = float(sps.chi2.sf(chi2, obs.size - 1))
    return chi2, p


def mixture_tau(a: ArrayLike, b: ArrayLike, effect_size: float = 0.1) -> float:
    """A mixing scale for `sequential_p_value` from the data's spread.

    tau = effect_size * the pooled standard deviation of one observation: the normal mixture
    puts its weight on standardised effects of about `effect_size`. Fix it before the test
    starts (or from a pre-period) for the guarantee to hold exactly.
    """
    if effect_size <= 0:
        raise DataError(f"effect_size: must be positive, got {effect_size}")
    av = _vector(a, "a")
    bv = _vector(b, "b")
    pooled = math.sqrt((float(np.var(av, ddof=1)) + float(np.var(bv, ddof=1))) / 2.0)
    return effect_size * pooled if pooled > 0 else effect_size


def _msprt_p(
    diff: NDArray[np.float64], var: NDArray[np.float64], tau2: float
) -> NDArray[np.float64]:
    """1 / Lambda for the normal-mixture likelihood ratio, clipped to [0, 1].

    The estimate diff ~ N(delta, V); mixing delta ~ N(0, tau^2) gives
    Lambda = sqrt(V / (V + tau^2)) exp(diff^2 tau^2 / (2 V (V + tau^2))).
    """
    log_lambda = 0.5 * np.log(var / (var + tau2)) + diff**2 * tau2 / (2.0 * var * (var + tau2))
    with np.errstate(over="ignore"):
        p = np.exp(-log_lambda)
    return np.asarray(np.minimum(p, 1.0), dtype=np.float64)


def sequential_p_value(diff: float, se: float, tau: float) -> float:
    """The always-valid (mSPRT) p-value of one look: min(1, 1 / Lambda).

    `diff` and `se` are the estimate of b - a and its standard error at this look (e.g. a
    `Comparison`'s `diff` and `se`); `tau` is the standard deviation of the normal mixture
    over the true difference, in the same units as `diff` (`mixture_tau` picks one). It is
    never below the fixed-horizon normal p-value of the same look. Over several looks take
    the running minimum (`sequential_p_values`).
    """
    if tau <= 0 or not math.isfinite(tau):
        raise DataError(f"tau: must be positive and finite, got {tau}")
    if se < 0 or not math.isfinite(se):
        raise DataError(f"se: must be finite and not negative, got {se}")
    if se == 0.0:
        return 1.0 if diff == 0.0 else 0.0
    p = _msprt_p(np.array([float(diff)]), np.array([float(se) ** 2]), float(tau) ** 2)
    return float(p[0])


def sequential_p_values(diffs: ArrayLike, ses: ArrayLike, tau: float) -> NDArray[np.float64]:
    """Always-valid p-values over successive looks (the running minimum of each look's).

    Stopping the first time the value falls below alpha keeps the type-I error at alpha
    however often one looks.
    """
    if tau <= 0 or not math.isfinite(tau):
        raise DataError(f"tau: must be positive and finite, got {tau}")
    d = _vector(diffs, "diffs", min_size=1)
    s = _vector(ses, "ses", min_size=1)
    if d.shape != s.shape:
        raise DataError(f"ses: has {s.size} values but diffs has {d.size}")
    if np.any(s < 0):
        raise DataError("ses: standard errors must not be negative")
    p = np.ones_like(d)
    pos = s > 0
    p[pos] = _msprt_p(d[pos], s[pos] ** 2, float(tau) ** 2)
    p[~pos] = np.where(d[~pos] == 0.0, 1.0, 0.0)
    return np.minimum.accumulate(p)
