"""Off-policy evaluation: a new policy's click-through estimated from logged impressions.

A stochastic logging policy (e.g. `EpsilonGreedyPolicy`) shows slates and logs, for every
slot, the probability mu that it put that item at that position (its propensity). A new
deterministic policy would have shown `target[x, p]` at position p of visit x. With the
item-position model (a click at a slot depends on the shopper, the item and the position,
not on the other items of the list, which holds for a position-bias click model), each
slot's importance weight is w = [target[x, p] == shown[x, p]] / mu[x, p], and the value
estimated is the click-through per slot, V = E_x[(1/k) sum_p P(click | x, target[x, p], p)].

* `ips`: inverse propensity scoring, mean over visits of (1/k) sum_p w c; unbiased when every
  target item had a positive propensity (a t-interval over visits).
* `snips`: self-normalised IPS, sum w c / sum w: a little biased, often far less variable
  (a delta-method interval with visits as units, `experiments.stats.ratio_and_variance`).
* `doubly_robust`: a reward model q(x, i, p) (the direct method) plus the IPS correction of
  its error on the logged slots, (1/k) sum_p [q(x, target_p, p) + w (c - q(x, shown_p, p))]:
  unbiased like IPS, with a smaller variance the better q is. `PositionItemModel` is a
  simple q fitted on the logs (position click curve x item attractiveness, shrunk).

The live exploration (`experiments.assignment.explore`) logs both: each slot's conditional
propensity (given the items above it; their product is the list's probability, which
`list_ips` weighs by) and its marginal propensity (`assignment.marginal_propensities`), which
`ips`, `snips` and `doubly_robust` need. `logged_from_slots` turns the attributed slots of
live impressions (`attribution.slot_outcomes`) into `LoggedSlates` with the marginal ones.

Every estimate comes with a 95% interval, the number of visits and the effective sample
size of the weights (sum w)^2 / sum w^2, which shows when the weights are degenerate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from shelfwise.errors import DataError
from shelfwise.experiments.stats import ratio_and_variance

__all__ = [
    "Estimate",
    "LoggedSlates",
    "PositionItemModel",
    "doubly_robust",
    "estimate_all",
    "ips",
    "list_ips",
    "logged_from_slots",
    "snips",
    "weights",
]

RewardModel = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""q(rows, items) -> P(click) per slot: rows (visit index per row of `items`) and items
(visits x positions, -1 = empty), returning an array shaped like `items`."""


@dataclass(frozen=True)
class LoggedSlates:
    """What a stochastic policy showed (visits x positions, -1 = empty slot), each slot's
    logged propensity and whether it was clicked."""

    shown: np.ndarray
    propensities: np.ndarray
    clicks: np.ndarray

    def __post_init__(self) -> None:
        shape = np.shape(self.shown)
        if len(shape) != 2:
            raise DataError(f"shown: expected visits x positions, got shape {shape}")
        for name in ("propensities", "clicks"):
            if np.shape(getattr(self, name)) != shape:
                raise DataError(f"{name}: shape {np.shape(getattr(self, name))} != shown {shape}")
        filled = np.asarray(self.shown) >= 0
        prop = np.asarray(self.propensities, dtype=np.float64)
        if np.any(filled & ~((prop > 0) & (prop <= 1))):
            raise DataError("propensities: every shown slot needs a propensity in (0, 1]")

    @property
    def n(self) -> int:
        """Logged visits."""
        return int(np.shape(self.shown)[0])

    @property
    def k(self) -> int:
        """Positions per slate."""
        return int(np.shape(self.shown)[1])


@dataclass(frozen=True)
class Estimate:
    """An off-policy estimate of the target's click-through per slot."""

    method: str
    value: float
    ci95: tuple[float, float]
    se: float
    n: int
    ess: float

    def covers(self, truth: float) -> bool:
        """True when `truth` lies within the interval."""
        return bool(self.ci95[0] <= truth <= self.ci95[1])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "method": self.method,
            "value": self.value,
            "ci95": list(self.ci95),
            "se": self.se,
            "n": self.n,
            "ess": self.ess,
        }


def logged_from_slots(
    slots: pd.DataFrame, item_index: Mapping[str, int], k: int | None = None
) -> tuple[LoggedSlates, list[str]]:
    """Live exploration logs as `LoggedSlates`: `slots` from `attribution.slot_outcomes`
    (one row per shown item, with `marginal` propensities and `clicked`), items mapped to
    dense ids by `item_index` (an unknown item is an empty slot), the first `k` positions
    (default: the longest list). Only lists logged with marginal propensities are kept.
    Returns the logs and the request id of each row."""
    explored = slots[slots["marginal"].notna()]
    if explored.empty:
        raise DataError("slots: no list was logged with marginal propensities (no exploration)")
    requests = list(dict.fromkeys(explored["request_id"].tolist()))
    row_of = {r: i for i, r in enumerate(requests)}
    depth = int(explored["position"].max()) if k is None else int(k)
    kept = explored[explored["position"] <= depth]
    rows = kept["request_id"].map(row_of).to_numpy(dtype=np.int64)
    cols = kept["position"].to_numpy(dtype=np.int64) - 1
    ids = np.array([item_index.get(str(i), -1) for i in kept["item_id"]], dtype=np.int64)
    shown = np.full((len(requests), depth), -1, dtype=np.int64)
    props = np.ones((len(requests), depth))
    clicks = np.zeros((len(requests), depth), dtype=bool)
    shown[rows, cols] = ids
    props[rows, cols] = kept["marginal"].to_numpy(dtype=np.float64)
    clicks[rows, cols] = kept["clicked"].to_numpy(dtype=np.int64) > 0
    return LoggedSlates(shown, props, clicks & (shown >= 0)), requests


def weights(logged: LoggedSlates, target: np.ndarray) -> np.ndarray:
    """Per-slot importance weights of a deterministic `target` (visits x positions)."""
    target = np.asarray(target)
    if target.shape != logged.shown.shape:
        raise DataError(f"target: shape {target.shape} != the logged slates' {logged.shown.shape}")
    shown = np.asarray(logged.shown)
    match = (target == shown) & (shown >= 0)
    prop = np.where(match, np.asarray(logged.propensities, dtype=np.float64), 1.0)
    return np.where(match, 1.0 / prop, 0.0)


def _ess(w: np.ndarray) -> float:
    s2 = float((w**2).sum())
    return float(w.sum()) ** 2 / s2 if s2 > 0 else 0.0


def _mean_estimate(method: str, per_visit: np.ndarray, w: np.ndarray) -> Estimate:
    n = per_visit.size
    if n < 2:
        raise DataError(f"{method}: needs at least 2 logged visits, got {n}")
    value = float(per_visit.mean())
    se = float(per_visit.std(ddof=1)) / math.sqrt(n)
    half = float(sps.t.ppf(0.975, n - 1)) * se
    return Estimate(method, value, (value - half, value + half), se, n, _ess(w))


def ips(logged: LoggedSlates, target: np.ndarray) -> Estimate:
    """Inverse propensity scoring (see the module doc)."""
    w = weights(logged, target)
    per_visit = (w * np.asarray(logged.clicks, dtype=np.float64)).sum(axis=1) / logged.k
    return _mean_estimate("ips", per_visit, w)


def snips(logged: LoggedSlates, target: np.ndarray) -> Estimate:
    """Self-normalised inverse propensity scoring (see the module doc)."""
    w = weights(logged, target)
    num = (w * np.asarray(logged.clicks, dtype=np.float64)).sum(axis=1)
    den = w.sum(axis=1)
    if den.sum() == 0:
        raise DataError("snips: the target never agrees with a logged slot; no estimate")
    value, var, n = ratio_and_variance(num, den, "snips")
    se = math.sqrt(var)
    half = float(sps.norm.ppf(0.975)) * se
    return Estimate("snips", value, (value - half, value + half), se, n, _ess(w))


def doubly_robust(logged: LoggedSlates, target: np.ndarray, reward: RewardModel) -> Estimate:
    """The doubly robust estimate with reward model `reward` (see the module doc)."""
    w = weights(logged, target)
    rows = np.arange(logged.n)
    target = np.asarray(target)
    q_target = np.where(target >= 0, reward(rows, target), 0.0)
    shown = np.asarray(logged.shown)
    q_shown = np.where(shown >= 0, reward(rows, shown), 0.0)
    clicks = np.asarray(logged.clicks, dtype=np.float64)
    per_visit = (q_target + w * (clicks - q_shown)).sum(axis=1) / logged.k
    return _mean_estimate("doubly_robust", per_visit, w)


@dataclass(frozen=True)
class PositionItemModel:
    """A reward model fitted on logged slates: P(click) = curve[p] x attraction[item].

    `curve` is the click-through of each position in the logs; an item's attraction is its
    clicks over the clicks the curve expects for its exposures, shrunk towards 1 with
    `prior` pseudo-exposures, so rarely shown items stay near the average.
    """

    curve: np.ndarray
    attraction: np.ndarray

    @classmethod
    def fit(cls, logged: LoggedSlates, n_items: int, prior: float = 20.0) -> PositionItemModel:
        """Fit the position curve and the item attractions on `logged`."""
        shown = np.asarray(logged.shown)
        clicks = np.asarray(logged.clicks, dtype=np.float64)
        filled = shown >= 0
        curve = (clicks * filled).sum(axis=0) / np.maximum(filled.sum(axis=0), 1)
        expected = np.where(filled, curve[None, :], 0.0)
        items = np.where(filled, shown, 0)
        got = np.bincount(items[filled], weights=clicks[filled], minlength=n_items)
        exp = np.bincount(items[filled], weights=expected[filled], minlength=n_items)
        mean_curve = float(curve.mean()) if curve.size else 0.0
        attraction = (got + prior * mean_curve) / (exp + prior * mean_curve + 1e-12)
        return cls(curve, attraction)

    def __call__(self, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        """P(click) of every slot of `items` (visits x positions); rows are unused."""
        items = np.asarray(items)
        p = self.curve[None, : items.shape[1]] * self.attraction[np.maximum(items, 0)]
        return np.where(items >= 0, np.clip(p, 0.0, 1.0), 0.0)


def list_ips(logged: LoggedSlates, target: np.ndarray) -> Estimate:
    """Whole-list inverse propensity scoring, for logs whose propensities are conditional:
    each slot's probability given the items above it, as the live exploration logs them
    (`experiments.assignment.explore`). A visit counts only when the target's list equals
    the shown one, weighted 1 / (the product of its slot propensities, the list's
    probability); unbiased without the item-position model, but far more variable than the
    per-slot estimators, so keep the randomised top short."""
    target = np.asarray(target)
    shown = np.asarray(logged.shown)
    if target.shape != shown.shape:
        raise DataError(f"target: shape {target.shape} != the logged slates' {shown.shape}")
    filled = shown >= 0
    prop = np.where(filled, np.asarray(logged.propensities, dtype=np.float64), 1.0)
    same = ((target == shown) | ~filled).all(axis=1)
    w = np.where(same, 1.0 / prop.prod(axis=1), 0.0)
    clicks = (np.asarray(logged.clicks, dtype=np.float64) * filled).sum(axis=1) / logged.k
    return _mean_estimate("list_ips", w * clicks, w)


def estimate_all(
    logged: LoggedSlates, target: np.ndarray, reward: RewardModel
) -> dict[str, Estimate]:
    """IPS, SNIPS and doubly robust estimates of `target` by name."""
    return {
        "ips": ips(logged, target),
        "snips": snips(logged, target),
        "doubly_robust": doubly_robust(logged, target, reward),
    }
