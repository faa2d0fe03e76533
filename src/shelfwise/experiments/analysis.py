"""Results of a live experiment: per-variant metrics, comparisons, SRM, CUPED, sequential
p-values, over time.

The unit is the exposed user (a user with at least one exposure impression, see
`assignment`); a user counts from their first exposure `t0` until the end of the analysis
(`stopped_at`, else now). Per user:

- impressions, and lists clicked / carted (attributed through `request_id`);
- converted: any purchase at or after t0; revenue: the sum of purchase values after t0;
- returned (7-day return rate): any event on a later UTC day than t0 and within 7 days of
  it; only users whose 7 days are over count for this metric.

Metrics per variant: ctr and add_to_cart_rate (ratio metrics, lists clicked / lists shown
per user: delta method, `compare_ratios`), conversion_rate, revenue_per_visitor and
return_rate_7d (per-user means: Welch, `compare_means`, with CUPED from the pre-period:
the same quantity in the `pre_period_days` before the experiment started, when at least one
exposed user has pre-period activity). Every other variant is compared with the first (the
control). SRM: chi-square of the exposed-user counts against the weights. Over time: the
same numbers from the data up to the end of each day since the start; the sequential
(always-valid) p-value of a comparison is the running minimum over those daily looks, so it
can be read every day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from shelfwise.experiments.assignment import ExperimentSpec
from shelfwise.experiments.attribution import list_outcomes
from shelfwise.experiments.stats import (
    Comparison,
    compare_means,
    compare_ratios,
    mixture_tau,
    sequential_p_values,
    srm_check,
)

RATIO_METRICS = {"ctr": "clicked", "add_to_cart_rate": "carted"}
MEAN_METRICS = ("conversion_rate", "revenue_per_visitor", "return_rate_7d")
METRICS = (*RATIO_METRICS, *MEAN_METRICS)
SRM_THRESHOLD = 0.001
RETURN_WINDOW = timedelta(days=7)
#: standardised effect size the sequential test's normal mixture is centred on
MIXTURE_EFFECT = 0.1


@dataclass(frozen=True)
class Window:
    """The experiment's time window (naive UTC)."""

    start: datetime
    end: datetime
    pre_start: datetime


def user_table(
    spec: ExperimentSpec,
    impressions: pd.DataFrame,
    outcomes: pd.DataFrame,
    events: pd.DataFrame,
    window: Window,
    cut: datetime,
) -> pd.DataFrame:
    """One row per exposed user with their variant and metrics, from data before `cut`."""
    imps = impressions[
        (impressions["experiment_id"] == spec.experiment_id)
        & impressions["exposed"].astype(bool)
        & (impressions["timestamp"] < cut)
    ]
    imps = imps[imps["user_id"].notna()]
    names = [v.name for v in spec.variants]
    imps = imps[imps["variant"].isin(names)]
    columns = ["user_id", "variant", "t0", "impressions", "clicked", "carted"]
    if imps.empty:
        return pd.DataFrame(columns=[*columns, *MEAN_METRICS, "eligible_return", "pre"])
    lists = list_outcomes(imps, outcomes[outcomes["timestamp"] < cut])
    per_user = lists.groupby("user_id").agg(
        variant=("variant", "first"),
        t0=("timestamp", "min"),
        impressions=("request_id", "size"),
        clicked=("clicked", "sum"),
        carted=("carted", "sum"),
    )
    ev = events[(events["timestamp"] < cut) & events["user_id"].isin(per_user.index)]
    t0 = ev["user_id"].map(per_user["t0"])
    after = ev[ev["timestamp"].to_numpy() >= t0.to_numpy()]
    buys = after[after["type"] == "purchase"]
    per_user["conversion_rate"] = per_user.index.isin(buys["user_id"].unique()).astype(np.float64)
    revenue = buys.groupby("user_id")["value"].sum(min_count=1).fillna(0.0)
    per_user["revenue_per_visitor"] = revenue.reindex(per_user.index).fillna(0.0)
    a_t0 = after["user_id"].map(per_user["t0"])
    later_day = after["timestamp"].dt.floor("D") > a_t0.dt.floor("D")
    within = after["timestamp"] < a_t0 + RETURN_WINDOW
    returned = after[later_day & within]["user_id"].unique()
    per_user["return_rate_7d"] = per_user.index.isin(returned).astype(np.float64)
    per_user["eligible_return"] = (per_user["t0"] + RETURN_WINDOW) <= cut
    # pre-period: the same quantities before the experiment began (CUPED covariates)
    pre = events[
        (events["timestamp"] >= window.pre_start)
        & (events["timestamp"] < window.start)
        & events["user_id"].isin(per_user.index)
    ]
    pre_buys = pre[pre["type"] == "purchase"]
    per_user["pre_conversion_rate"] = per_user.index.isin(pre_buys["user_id"].unique()).astype(
        np.float64
    )
    pre_rev = pre_buys.groupby("user_id")["value"].sum(min_count=1).fillna(0.0)
    per_user["pre_revenue_per_visitor"] = pre_rev.reindex(per_user.index).fillna(0.0)
    pre_days = pre.assign(day=pre["timestamp"].dt.floor("D")).groupby("user_id")["day"].nunique()
    per_user["pre_return_rate_7d"] = (pre_days.reindex(per_user.index).fillna(0) > 1).astype(
        np.float64
    )
    per_user["pre"] = per_user.index.isin(pre["user_id"].unique())
    return per_user.reset_index()


def _variant_values(users: pd.DataFrame) -> dict[str, float | int | None]:
    n = len(users)
    out: dict[str, float | int | None] = {
        "users": n,
        "impressions": int(users["impressions"].sum()),
    }
    shown = float(users["impressions"].sum())
    for metric, column in RATIO_METRICS.items():
        out[metric] = float(users[column].sum()) / shown if shown else None
    for metric in MEAN_METRICS:
        values = users if metric != "return_rate_7d" else users[users["eligible_return"]]
        out[metric] = float(values[metric].mean()) if len(values) else None
    out["users_return_eligible"] = int(users["eligible_return"].sum()) if n else 0
    return out


def _compare(metric: str, a: pd.DataFrame, b: pd.DataFrame) -> tuple[Comparison | None, bool]:
    """(the comparison of b against a on `metric`, whether CUPED was used); None when there
    are too few users."""
    if metric in RATIO_METRICS:
        column = RATIO_METRICS[metric]
        if len(a) < 2 or len(b) < 2 or a["impressions"].sum() == 0 or b["impressions"].sum() == 0:
            return None, False
        return compare_ratios(a[column], a["impressions"], b[column], b["impressions"]), False
    if metric == "return_rate_7d":
        a, b = a[a["eligible_return"]], b[b["eligible_return"]]
    if len(a) < 2 or len(b) < 2:
        return None, False
    pre = f"pre_{metric}"
    pooled = np.concatenate([a[pre].to_numpy(), b[pre].to_numpy()])
    use_cuped = bool((a["pre"].any() or b["pre"].any()) and np.var(pooled) > 0)
    covariate = (a[pre].to_numpy(), b[pre].to_numpy()) if use_cuped else None
    return compare_means(a[metric].to_numpy(), b[metric].to_numpy(), covariate=covariate), use_cuped


def _tau(metric: str, a: pd.DataFrame, b: pd.DataFrame, c: Comparison) -> float:
    if metric in RATIO_METRICS:
        # per-list spread of a rate p: sqrt(p (1 - p))
        p = min(max((c.a_value + c.b_value) / 2.0, 1e-6), 1 - 1e-6)
        return MIXTURE_EFFECT * float(np.sqrt(p * (1 - p)))
    if metric == "return_rate_7d":
        a, b = a[a["eligible_return"]], b[b["eligible_return"]]
    return mixture_tau(a[metric].to_numpy(), b[metric].to_numpy(), MIXTURE_EFFECT)


def _look(spec: ExperimentSpec, users: pd.DataFrame) -> dict[str, Any]:
    """Per-variant values, SRM and comparisons of one look at the data."""
    groups = {v.name: users[users["variant"] == v.name] for v in spec.variants}
    variants = {name: _variant_values(g) for name, g in groups.items()}
    counts = [len(g) for g in groups.values()]
    srm: dict[str, Any] = {"counts": dict(zip(groups, counts, strict=True))}
    if sum(counts):
        chi2, p = srm_check(counts, spec.weights())
        srm.update(chi2=chi2, p_value=p, mismatch=bool(p < SRM_THRESHOLD))
    else:
        srm.update(chi2=None, p_value=None, mismatch=False)
    comparisons: list[dict[str, Any]] = []
    control = spec.control.name
    for variant in spec.variants[1:]:
        for metric in METRICS:
            a, b = groups[control], groups[variant.name]
            found, cuped_used = _compare(metric, a, b)
            if found is None:
                continue
            row = {"a": control, "b": variant.name, "metric": metric, **found.to_dict()}
            row["cuped"] = cuped_used
            row["_tau"] = _tau(metric, a, b, found)
            comparisons.append(row)
    return {"variants": variants, "srm": srm, "comparisons": comparisons}


def experiment_results(
    spec: ExperimentSpec,
    status: str,
    window: Window,
    impressions: pd.DataFrame,
    outcomes: pd.DataFrame,
    events: pd.DataFrame,
) -> dict[str, Any]:
    """The results document of one experiment (see the module doc), JSON-ready."""
    days: list[datetime] = []
    day = pd.Timestamp(window.start).floor("D").to_pydatetime() + timedelta(days=1)
    while day < window.end:
        days.append(day)
        day += timedelta(days=1)
    days.append(window.end)
    looks = []
    for cut in days:
        users = user_table(spec, impressions, outcomes, events, window, cut)
        looks.append((cut, _look(spec, users)))
    # sequential p-values: the running minimum over the daily looks, per (b, metric)
    series: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]] = {}
    for i, (_, look) in enumerate(looks):
        for row in look["comparisons"]:
            series.setdefault((row["b"], row["metric"]), []).append((i, row))
    for rows in series.values():
        diffs = [r["diff"] for _, r in rows]
        ses = [r["se"] or 0.0 for _, r in rows]
        tau = rows[-1][1]["_tau"]
        seq = sequential_p_values(diffs, ses, tau) if tau > 0 else np.ones(len(rows))
        for (_, row), p in zip(rows, seq, strict=True):
            row["sequential_p_value"] = float(p)
    for _, look in looks:
        for row in look["comparisons"]:
            row.pop("_tau", None)
    final = looks[-1][1]
    over_time = [
        {
            "date": cut.isoformat(),
            "variants": look["variants"],
            "comparisons": [
                {k: r[k] for k in ("b", "metric", "lift", "lift_ci95", "p_value", "diff")}
                | {"sequential_p_value": r.get("sequential_p_value")}
                for r in look["comparisons"]
            ],
        }
        for cut, look in looks
    ]
    return {
        "experiment_id": spec.experiment_id,
        "status": status,
        "start": window.start.isoformat(),
        "end": window.end.isoformat(),
        "control": spec.control.name,
        "surfaces": sorted(spec.exposure_surfaces()),
        "variants": final["variants"],
        "srm": final["srm"],
        "comparisons": final["comparisons"],
        "over_time": over_time,
    }
