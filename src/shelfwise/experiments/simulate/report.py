"""Metrics of a simulated A/B test with intervals, and every pairwise comparison.

Per arm (the randomisation unit is the shopper, so ratio metrics use the delta method over
per-shopper totals, `shelfwise.experiments.stats`):

* `ctr`: clicks / items shown;
* `add_to_cart_rate`: carts / items shown;
* `conversion_rate`: visits with a purchase / visits;
* `revenue_per_user`: revenue per shopper who visited (Welch);
* `return_rate_7d`: share of shoppers who came back within 7 days of their first visit,
  among those whose first visit was at least 7 days before the end (Welch);
* `list_ctr` (visits with a click / visits) and `user_conversion_rate` (share of visitors
  who bought anything): the live experiments' definitions of click-through and conversion
  (`shelfwise.experiments.analysis`), so a live result can be held against a simulated one;
* `true_ctr`: the expected click-through from the choice model's true click probabilities
  of what was shown (no sampling noise from the clicks themselves).

`report(result)` gives `{"policies": {arm: {metric: value, ..., "ci95": {metric: [lo, hi]}}},
"comparisons": [{"a", "b", "metric", "lift", "ci95", "lift_ci95", "p_value", ...}]}`,
one comparison per pair of arms (earlier arm as control `a`) and metric.
"""

from __future__ import annotations

import math
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from shelfwise.experiments.simulate.run import SimulationResult
from shelfwise.experiments.stats import compare_means, compare_ratios, ratio_and_variance

__all__ = ["MEAN_METRICS", "METRICS", "RATIO_METRICS", "arm_metrics", "report"]

RATIO_METRICS: dict[str, tuple[str, str]] = {
    "ctr": ("clicks", "impressions"),
    "add_to_cart_rate": ("carts", "impressions"),
    "conversion_rate": ("purchase_sessions", "sessions"),
    "list_ctr": ("click_sessions", "sessions"),
}
"""Ratio metrics: (per-shopper numerator, denominator) columns of the totals."""

MEAN_METRICS = ("revenue_per_user", "return_rate_7d", "user_conversion_rate")
"""Per-shopper mean metrics."""

METRICS = (*RATIO_METRICS, *MEAN_METRICS)
"""Every compared metric, in report order."""


def _units(totals: pd.DataFrame, metric: str) -> np.ndarray:
    """Per-shopper values of a mean metric (only the shoppers it is defined for)."""
    visited = totals[totals["sessions"] > 0]
    if metric == "revenue_per_user":
        return visited["revenue"].to_numpy(dtype=np.float64)
    if metric == "user_conversion_rate":
        return (visited["purchases"] > 0).to_numpy(dtype=np.float64)
    if metric == "return_rate_7d":
        eligible = totals[totals["return_eligible"]]
        return eligible["returned_7d"].to_numpy(dtype=np.float64)
    raise KeyError(metric)


def _finite(x: float) -> float | None:
    return round(x, 8) if math.isfinite(x) else None


def _mean_interval(values: np.ndarray) -> tuple[float, list[float | None]]:
    if values.size < 2:
        value = float(values.mean()) if values.size else math.nan
        return value, [None, None]
    mean = float(values.mean())
    half = (
        float(sps.t.ppf(0.975, values.size - 1))
        * float(values.std(ddof=1))
        / math.sqrt(values.size)
    )
    return mean, [_finite(mean - half), _finite(mean + half)]


def arm_metrics(totals: pd.DataFrame) -> dict[str, Any]:
    """Metrics of one arm's per-shopper totals, with 95% intervals and counts."""
    visited = totals[totals["sessions"] > 0]
    out: dict[str, Any] = {}
    ci: dict[str, list[float | None]] = {}
    z = float(sps.norm.ppf(0.975))
    for metric, (num, den) in RATIO_METRICS.items():
        if len(visited) < 2 or visited[den].sum() == 0:
            out[metric], ci[metric] = None, [None, None]
            continue
        value, var, _ = ratio_and_variance(visited[num], visited[den], metric)
        half = z * math.sqrt(var)
        out[metric], ci[metric] = _finite(value), [_finite(value - half), _finite(value + half)]
    for metric in MEAN_METRICS:
        value, interval = _mean_interval(_units(totals, metric))
        out[metric], ci[metric] = _finite(value), interval
    impressions = float(visited["impressions"].sum())
    out["true_ctr"] = (
        _finite(float(visited["expected_clicks"].sum()) / impressions) if (impressions) else None
    )
    out["ci95"] = ci
    out["users"] = len(totals)
    out["visitors"] = len(visited)
    for name in ("sessions", "impressions", "clicks", "carts", "purchases"):
        out[name] = int(totals[name].sum())
    out["revenue"] = round(float(totals["revenue"].sum()), 2)
    return out


def _compare(a: pd.DataFrame, b: pd.DataFrame, metric: str) -> dict[str, Any] | None:
    if metric in RATIO_METRICS:
        num, den = RATIO_METRICS[metric]
        va, vb = a[a["sessions"] > 0], b[b["sessions"] > 0]
        if min(len(va), len(vb)) < 2 or 0 in (va[den].sum(), vb[den].sum()):
            return None
        return compare_ratios(va[num], va[den], vb[num], vb[den]).to_dict()
    ua, ub = _units(a, metric), _units(b, metric)
    if min(ua.size, ub.size) < 2:
        return None
    return compare_means(ua, ub).to_dict()


def report(result: SimulationResult) -> dict[str, Any]:
    """The metrics of every arm and the comparisons of every pair (see the module doc)."""
    by_arm = {arm: result.totals[result.totals["arm"] == arm] for arm in result.arms}
    comparisons: list[dict[str, Any]] = []
    for a, b in combinations(result.arms, 2):
        for metric in METRICS:
            found = _compare(by_arm[a], by_arm[b], metric)
            entry: dict[str, Any] = {"a": a, "b": b, "metric": metric}
            if found is None:
                entry.update(lift=None, ci95=[None, None], p_value=None, note="too few users")
            else:
                entry.update(found)
            comparisons.append(entry)
    return {
        "policies": {arm: arm_metrics(frame) for arm, frame in by_arm.items()},
        "comparisons": comparisons,
        "settings": result.settings,
    }
