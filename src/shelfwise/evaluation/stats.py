"""Statistics of offline evaluation: intervals over seeds and paired tests between models.

The one home of the offline tables' statistics (the live experiments' Welch comparisons
live in `shelfwise.experiments`):

- `mean_interval(values)`: mean with a two-sided 95% Student t interval,
  `mean +- t(0.975, n - 1) * s / sqrt(n)` (`s` the sample standard deviation, ddof=1);
  one value gives the interval (mean, mean).
- `paired_test(a, b)`: two models' per-user metric on the same users (the same (seed, user)
  pairs when several seeds are pooled): mean difference a - b with its paired t interval,
  the paired t-test p-value (`scipy.stats.ttest_rel`) and the Wilcoxon signed-rank p-value
  (`scipy.stats.wilcoxon`, zero differences dropped, as its default `zero_method="wilcox"`;
  1.0 when every difference is zero).
- `seed_summary(runs_by_seed, k)`: what `shelfwise evaluate --seeds N` reports: per model and
  metric the mean over seeds with its interval, and paired tests between every two models.
- `per_unit_intervals(values_by_metric)`: `mean_interval` of each metric's per-unit values
  (per test user, per query) as `{"mean", "ci95", "n"}`, what one run's table shows when
  there is no seed to vary (leave-last-out, a judged query set).
- `unit_summary(values)` / `summary_interval(mean, sd, n)`: the same interval from the
  per-unit values' n, mean and sample sd, for runs that store those instead of thousands
  of values.
- `binary_interval(mean, n)`: the same t interval for a 0/1 per-unit metric (HR@k) from its
  mean and count alone (the values' sample variance is n p (1 - p) / (n - 1));
  `bounded_half_width(mean, n)`: an upper bound of the half-width for values in [0, 1]
  (their variance is at most p (1 - p)), for stored runs without per-unit values.
- `correlation_interval(r, n)`: Fisher z interval of a (rank) correlation.

- `user_groups` / `group_metrics`: per-group accuracy (MovieLens 100K's gender and age
  bands) with intervals, the fairness view of the report.

Several seeds re-draw the split (`--seed`, `--seed + 1`, ...); models keep their own seeds,
so the interval is that of the split, the usual source of spread on small data.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from shelfwise.errors import ConfigError
from shelfwise.evaluation.runner import ModelRun

CONFIDENCE = 0.95


def mean_interval(values: Any, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(mean, low, high) of `values` with a two-sided Student t interval."""
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ConfigError("mean_interval: no values")
    mean = float(x.mean())
    if x.size == 1:
        return mean, mean, mean
    half = float(stats.t.ppf(0.5 + confidence / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return mean, mean - half, mean + half


def per_unit_intervals(
    values_by_metric: Mapping[str, Any], confidence: float = CONFIDENCE
) -> dict[str, dict[str, Any]]:
    """`{metric: {"mean", "ci95": [low, high], "n"}}` of per-unit values (`mean_interval`)."""
    out: dict[str, dict[str, Any]] = {}
    for metric, values in values_by_metric.items():
        x = np.asarray(values, dtype=np.float64).ravel()
        mean, low, high = mean_interval(x, confidence)
        out[metric] = {"mean": mean, "ci95": [low, high], "n": int(x.size)}
    return out


def unit_summary(values: Any) -> dict[str, Any]:
    """`{"n", "mean", "sd"}` (sd with ddof=1, 0 for one value) of per-unit values: what
    `summary_interval` needs, for runs whose per-unit values are too many to store."""
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ConfigError("unit_summary: no values")
    sd = float(x.std(ddof=1)) if x.size > 1 else 0.0
    return {"n": int(x.size), "mean": float(x.mean()), "sd": sd}


def summary_interval(
    mean: float, sd: float, n: int, confidence: float = CONFIDENCE
) -> tuple[float, float, float]:
    """(mean, low, high): `mean_interval` of n values from their mean and sample standard
    deviation (ddof=1) alone; n = 1 gives (mean, mean, mean)."""
    if n < 1 or sd < 0 or not math.isfinite(sd):
        raise ConfigError(f"summary_interval: need n >= 1 and sd >= 0, got n={n}, sd={sd}")
    if n == 1:
        return mean, mean, mean
    half = _t_half(sd, n, confidence)
    return mean, mean - half, mean + half


def _t_half(sd: float, n: int, confidence: float) -> float:
    return float(stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n))


def binary_interval(
    mean: float, n: int, confidence: float = CONFIDENCE
) -> tuple[float, float, float]:
    """(mean, low, high): `mean_interval` of n values in {0, 1} whose mean is `mean`,
    computed from the mean and n alone (sample variance n p (1 - p) / (n - 1))."""
    if n < 1 or not 0.0 <= mean <= 1.0:
        raise ConfigError(f"binary_interval: need n >= 1 and 0 <= mean <= 1, got {n}, {mean}")
    if n == 1:
        return mean, mean, mean
    half = _t_half(math.sqrt(n * mean * (1 - mean) / (n - 1)), n, confidence)
    return mean, mean - half, mean + half


def bounded_half_width(mean: float, n: int, confidence: float = CONFIDENCE) -> float:
    """Upper bound of `mean_interval`'s half-width for n values in [0, 1] with this mean:
    their sample variance is at most n p (1 - p) / (n - 1), reached by 0/1 values."""
    return binary_interval(mean, n, confidence)[2] - mean


def correlation_interval(
    r: float, n: int, confidence: float = CONFIDENCE, spearman: bool = True
) -> tuple[float, float]:
    """Fisher z interval of a correlation r over n pairs: tanh(atanh(r) -+ z * se), with
    se = 1 / sqrt(n - 3) (Pearson) or sqrt(1.06 / (n - 3)) (Spearman, Fieller et al. 1957).
    |r| = 1 gives (r, r)."""
    if n < 4:
        raise ConfigError(f"correlation_interval needs at least 4 pairs, got {n}")
    if abs(r) >= 1.0:
        return r, r
    se = math.sqrt((1.06 if spearman else 1.0) / (n - 3))
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    centre = math.atanh(r)
    return math.tanh(centre - z * se), math.tanh(centre + z * se)


def paired_test(a: Any, b: Any, confidence: float = CONFIDENCE) -> dict[str, Any]:
    """Paired comparison of per-user values `a` and `b` (same users, same order)."""
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ConfigError(f"paired_test: {x.size} values against {y.size}; pair them user by user")
    if x.size < 2:
        raise ConfigError(f"paired_test needs at least 2 pairs, got {x.size}")
    diff = x - y
    mean, low, high = mean_interval(diff, confidence)
    if np.all(diff == diff[0]):
        t_p = 1.0 if diff[0] == 0 else 0.0
    else:
        t_p = float(stats.ttest_rel(x, y).pvalue)
    w_p = 1.0 if not np.any(diff) else float(stats.wilcoxon(x, y).pvalue)
    return {
        "mean_diff": mean,
        "ci95": [low, high],
        "p_value_t": t_p,
        "p_value_wilcoxon": w_p,
        "n_pairs": int(x.size),
    }


def seed_summary(
    runs_by_seed: Sequence[Mapping[str, ModelRun]], k: int
) -> tuple[dict[str, ModelRun], dict[str, Any], list[dict[str, Any]]]:
    """Combine the runs of several seeds (one mapping of model -> run per seed).

    Returns `(runs, intervals, comparisons)`: `runs` has each model's mean metrics over the
    seeds (a model that failed on any seed keeps its first error); `intervals[model][metric]`
    is `{"mean", "ci95": [low, high], "values": [one per seed]}` (`mean_interval`); and
    `comparisons` holds one `paired_test` per pair of models and per-user metric (nDCG@k,
    recall@k), pooled over the seeds' (seed, user) pairs, as
    `{"a", "b", "metric", **paired_test(a, b)}`.
    """
    if not runs_by_seed:
        raise ConfigError("seed_summary: no runs")
    names = list(runs_by_seed[0])
    merged: dict[str, ModelRun] = {}
    intervals: dict[str, Any] = {}
    for name in names:
        seeds = [runs[name] for runs in runs_by_seed]
        failed = next((r for r in seeds if r.error is not None), None)
        if failed is not None:
            merged[name] = ModelRun(name, error=failed.error)
            continue
        keys = [key for key, v in seeds[0].metrics.items() if isinstance(v, int | float)]
        model_iv: dict[str, Any] = {}
        means: dict[str, Any] = {}
        for key in keys:
            values = [float(r.metrics[key]) for r in seeds if key in r.metrics]
            mean, low, high = mean_interval(values)
            means[key] = mean
            model_iv[key] = {"mean": mean, "ci95": [low, high], "values": values}
        means["seeds"] = len(seeds)
        if "training" in seeds[0].metrics:  # learning curves: one, or a list in seed order
            trained = [r.metrics.get("training") for r in seeds]
            means["training"] = trained[0] if len(trained) == 1 else trained
        merged[name] = ModelRun(name, metrics=means)
        intervals[name] = model_iv
    ok = [n for n in names if merged[n].error is None]
    comparisons: list[dict[str, Any]] = []
    for metric in (f"ndcg@{k}", f"recall@{k}"):
        for i, a in enumerate(ok):
            for b in ok[i + 1 :]:
                xs: list[np.ndarray] = []
                ys: list[np.ndarray] = []
                for runs in runs_by_seed:
                    ra, rb = runs[a], runs[b]
                    if metric not in ra.per_user or metric not in rb.per_user:
                        break
                    if (
                        ra.users is None
                        or rb.users is None
                        or not np.array_equal(ra.users, rb.users)
                    ):
                        break
                    xs.append(ra.per_user[metric])
                    ys.append(rb.per_user[metric])
                else:
                    x, y = np.concatenate(xs), np.concatenate(ys)
                    if x.size >= 2:
                        comparisons.append({"a": a, "b": b, "metric": metric, **paired_test(x, y)})
    return merged, intervals, comparisons


AGE_BANDS: tuple[tuple[int, str], ...] = ((18, "<18"), (25, "18-24"), (35, "25-34"),
                                         (45, "35-44"), (56, "45-55"))  # fmt: skip
MAX_GROUPS = 8


def user_groups(users: pd.DataFrame) -> dict[str, dict[str, str]]:
    """Attribute -> {user_id: group} from a user table's JSON `attributes`: `age` in bands
    (<18, 18-24, 25-34, 35-44, 45-55, 56+, MovieLens 1M's bands) and every other attribute
    with at most `MAX_GROUPS` distinct values (gender; not zip codes or occupations)."""
    out: dict[str, dict[str, str]] = {}
    for user_id, raw in zip(
        users["user_id"].astype(str), users.get("attributes", []), strict=False
    ):
        try:
            attrs = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            continue
        if not isinstance(attrs, dict):
            continue
        for key, value in attrs.items():
            if value is None or isinstance(value, list | dict):
                continue
            if key == "age" and isinstance(value, int | float):
                value = next((label for top, label in AGE_BANDS if value < top), "56+")
            out.setdefault(key, {})[user_id] = str(value)
    return {
        key: groups
        for key, groups in out.items()
        if key == "age" or len(set(groups.values())) <= MAX_GROUPS
    }


def group_metrics(
    runs_by_seed: Sequence[Mapping[str, ModelRun]],
    user_ids: np.ndarray,
    groups: Mapping[str, Mapping[str, str]],
    metric: str,
) -> dict[str, Any]:
    """Per attribute, group and model: the mean per-user `metric` with its 95% t interval
    over the group's (seed, user) values, and the group's size.

    `user_ids[i]` is the external id of user row i. Returns
    `{attribute: {group: {"users": n, MODEL: {"mean", "ci95"}}}}`."""
    out: dict[str, Any] = {}
    for attribute, mapping in groups.items():
        table: dict[str, Any] = {}
        for runs in runs_by_seed:
            for name, run in runs.items():
                if run.error is not None or run.users is None or metric not in run.per_user:
                    continue
                labels = np.array([mapping.get(str(u), "") for u in user_ids[run.users]])
                for label in np.unique(labels):
                    if not label:
                        continue
                    mask = labels == label
                    entry = table.setdefault(str(label), {})
                    entry.setdefault(name, []).append(run.per_user[metric][mask])
                    entry["users"] = int(mask.sum())
        summary: dict[str, Any] = {}
        for label in sorted(table):
            entry = table[label]
            row: dict[str, Any] = {"users": entry.pop("users")}
            for name, parts in entry.items():
                mean, low, high = mean_interval(np.concatenate(parts))
                row[name] = {"mean": mean, "ci95": [low, high]}
            summary[label] = row
        out[attribute] = summary
    return out
