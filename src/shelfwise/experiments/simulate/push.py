"""Simulated push notifications: when to send, and whether the shopper opens and clicks.

Each shopper of a `World` has a daily activity profile: the share of their activity in each
UTC hour of day, the demo generator's own session-time model (`shelfwise.data.demo.sessions`):
with probability 0.55 a session starts near the shopper's preferred hour (normal, sd 1.2
hours, wrapped around midnight), otherwise at an hour drawn from the shop's daily rhythm.
The push choice model (`PushModel`):

* a push sent at hour h is opened with probability
  `sigmoid(open_intercept + open_activity * 24 * a_h) * push_fatigue ** n`, where a_h is the
  shopper's activity share at h (24 * a_h = 1 for a shopper active evenly all day) and n the
  pushes they already received in the test;
* an opened push shows its items as a short list: each is clicked with the world's
  `click_probabilities` (position bias and the shopper's utility for the item).

Send-time policies (`SendTimePolicy`) give each pushed shopper an hour per day:
`FixedHour`, `RandomHour` (uniform over the allowed hours), `PlannedHour` (a fixed hour per
shopper, e.g. what the project's smart-push planner `shelfwise.profiles.push.plan_push`
chose from the shopper's profile: `planned_pushes`) and `PeakHour` (the shopper's true most
active hour among the allowed ones: an oracle). `simulate_push` runs them as an A/B test
over the same shoppers and items; `push_report` gives open and click rates per push with
95% intervals and every pairwise comparison (delta method,
`shelfwise.experiments.stats.compare_ratios`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import combinations
from typing import Any, Protocol

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from scipy import stats as sps

from shelfwise.data.demo.sessions import _HOUR_PROFILE
from shelfwise.errors import ConfigError
from shelfwise.experiments.simulate.run import assign
from shelfwise.experiments.simulate.world import World, sigmoid
from shelfwise.experiments.stats import compare_ratios, ratio_and_variance
from shelfwise.profiles.profile import ProfileState
from shelfwise.profiles.push import PushConfig, plan_push

__all__ = [
    "OWN_HOUR_SD",
    "OWN_HOUR_SHARE",
    "PUSH_METRICS",
    "FixedHour",
    "PeakHour",
    "PlannedHour",
    "PushModel",
    "PushPlans",
    "RandomHour",
    "SendTimePolicy",
    "activity_profiles",
    "open_probability",
    "planned_pushes",
    "push_report",
    "simulate_push",
]

OWN_HOUR_SHARE = 0.55
"""Share of a shopper's sessions near their preferred hour (the demo generator's)."""
OWN_HOUR_SD = 1.2
"""Spread in hours of those sessions around the preferred hour (the demo generator's)."""


class PushModel(BaseModel):
    """How simulated shoppers react to a push (see the module doc)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    open_intercept: float = -3.5
    """Open logit of a push at an hour with no activity at all."""
    open_activity: float = Field(default=0.4, ge=0.0)
    """Open logit per unit of relative activity (24 x the hour's activity share)."""
    push_fatigue: float = Field(default=0.95, gt=0.0, le=1.0)
    """Open probability kept for each push the shopper already received."""


def activity_profiles(preferred_hours: np.ndarray) -> np.ndarray:
    """Activity share per UTC hour of day (rows sum to 1) of shoppers with these preferred
    hours: the demo generator's mixture of a wrapped normal around the preferred hour and
    the shop's daily rhythm (see the module doc)."""
    pref = np.asarray(preferred_hours, dtype=np.float64)[:, None]
    edges = np.arange(25, dtype=np.float64)[None, :]
    own = np.zeros((pref.shape[0], 24))
    for wrap in (-24.0, 0.0, 24.0):  # the normal's mass a day either side wraps around
        cdf = sps.norm.cdf((edges + wrap - pref) / OWN_HOUR_SD)
        own += np.diff(cdf, axis=1)
    own /= own.sum(axis=1, keepdims=True)
    shop = _HOUR_PROFILE / _HOUR_PROFILE.sum()
    return np.asarray(OWN_HOUR_SHARE * own + (1.0 - OWN_HOUR_SHARE) * shop[None, :])


def open_probability(
    shares: np.ndarray | float, received: np.ndarray | int, model: PushModel
) -> np.ndarray:
    """P(open) of pushes sent at hours with activity `shares` to shoppers who already
    received `received` pushes (broadcast like numpy)."""
    relative = 24.0 * np.asarray(shares, dtype=np.float64)
    fatigue = np.power(model.push_fatigue, np.asarray(received, dtype=np.float64))
    return np.asarray(sigmoid(model.open_intercept + model.open_activity * relative) * fatigue)


class SendTimePolicy(Protocol):
    """The hour of day (0-23, UTC) at which each shopper is pushed on a day."""

    def hours(self, users: np.ndarray, day: int, rng: np.random.Generator) -> np.ndarray:
        """One hour per user."""
        ...


@dataclass(frozen=True)
class FixedHour:
    """Everyone at the same hour."""

    hour: int

    def __post_init__(self) -> None:
        if not 0 <= self.hour <= 23:
            raise ConfigError(f"hour must be between 0 and 23, got {self.hour}")

    def hours(self, users: np.ndarray, day: int, rng: np.random.Generator) -> np.ndarray:
        """`hour` for every user."""
        return np.full(users.size, self.hour, dtype=np.int64)


@dataclass(frozen=True)
class RandomHour:
    """A uniformly random allowed hour per push."""

    allowed: tuple[int, ...] = tuple(range(24))

    def __post_init__(self) -> None:
        if not self.allowed or any(not 0 <= h <= 23 for h in self.allowed):
            raise ConfigError(f"allowed hours must be 0-23 and not empty, got {self.allowed}")

    def hours(self, users: np.ndarray, day: int, rng: np.random.Generator) -> np.ndarray:
        """A fresh draw for every push."""
        return np.asarray(self.allowed, dtype=np.int64)[
            rng.integers(0, len(self.allowed), users.size)
        ]


@dataclass(frozen=True)
class PlannedHour:
    """A fixed hour per shopper (`by_user`, indexed by user index), e.g. a planner's."""

    by_user: np.ndarray

    def hours(self, users: np.ndarray, day: int, rng: np.random.Generator) -> np.ndarray:
        """Each user's planned hour."""
        return np.asarray(self.by_user, dtype=np.int64)[users]


@dataclass(frozen=True)
class PeakHour:
    """Each shopper's truly most active hour among the `allowed` ones (an oracle: the
    world's activity profiles, users x 24)."""

    profiles: np.ndarray
    allowed: tuple[int, ...] = tuple(range(24))

    def __post_init__(self) -> None:
        if not self.allowed or any(not 0 <= h <= 23 for h in self.allowed):
            raise ConfigError(f"allowed hours must be 0-23 and not empty, got {self.allowed}")

    def hours(self, users: np.ndarray, day: int, rng: np.random.Generator) -> np.ndarray:
        """The allowed hour with the most activity of each user."""
        allowed = np.asarray(self.allowed, dtype=np.int64)
        best = np.argmax(np.asarray(self.profiles)[users][:, allowed], axis=1)
        return allowed[best]


@dataclass(frozen=True)
class PushPlans:
    """What the smart-push planner decided for each shopper (by user index): whether to
    send, the hour of its `send_at`, the pushed items (item indices, -1 padded) and the
    reason it gave."""

    send: np.ndarray
    hours: np.ndarray
    items: np.ndarray
    reasons: list[str]


def _lookup(world: World) -> Any:
    items = world.store.items
    index = {str(i): r for r, i in enumerate(items["item_id"].astype(str).tolist())}
    cats = items["category"].fillna("").astype(str).to_numpy(dtype=object)
    brands = items["brand"].fillna("").astype(str).to_numpy(dtype=object)
    prices = pd.to_numeric(items["price"], errors="coerce").to_numpy(dtype=np.float64)

    def lookup(ids: Sequence[str]) -> tuple[list[str], list[str], np.ndarray]:
        rows = np.array([index.get(str(i), -1) for i in ids], dtype=np.int64)
        ok, safe = rows >= 0, np.maximum(rows, 0)
        return (
            [str(c) if k else "" for c, k in zip(cats[safe], ok, strict=True)],
            [str(b) if k else "" for b, k in zip(brands[safe], ok, strict=True)],
            np.where(ok, prices[safe], np.nan),
        )

    return lookup


def planned_pushes(
    world: World,
    recommendations: np.ndarray,
    config: PushConfig | None = None,
    now: datetime | None = None,
) -> PushPlans:
    """Run the project's planner (`plan_push`) for every shopper: their profile folded from
    the world's generated history (`ProfileState`, as the server's `ProfileService` does),
    their `recommendations` (users x k item indices, best first, -1 padded), at `now`
    (default: midnight of simulated day 0)."""
    config = config or PushConfig()
    now = now or datetime.fromtimestamp(world.start, tz=UTC)
    lookup = _lookup(world)
    items = world.store.items
    categories = items["category"].fillna("").astype(str).tolist()
    prices = pd.to_numeric(items["price"], errors="coerce").tolist()
    index = {str(i): r for r, i in enumerate(world.item_ids.tolist())}
    history = world.history
    by_user = dict(tuple(history.groupby("user_id", sort=False)))
    n = world.n_users
    send = np.zeros(n, dtype=bool)
    hours = np.full(n, -1, dtype=np.int64)
    pushed = np.full((n, config.max_items), -1, dtype=np.int64)
    reasons: list[str] = []
    for u, uid in enumerate(world.user_ids.tolist()):
        state = ProfileState(str(uid))
        events = by_user.get(uid)
        if events is not None:
            state.fold(events, lookup)
        if state.events == 0:
            reasons.append("no events")
            continue
        recs = [
            {"item_id": str(world.item_ids[i]), "category": categories[i], "price": prices[i]}
            for i in np.asarray(recommendations[u]).tolist()
            if i >= 0
        ]
        plan = plan_push(state.profile(now.timestamp()), recs, now=now, config=config)
        reasons.append(plan.reason)
        if plan.send and plan.send_at is not None:
            send[u] = True
            hours[u] = plan.send_at.astimezone(UTC).hour
            found = [index[i] for i in plan.items]
            pushed[u, : len(found)] = found
    return PushPlans(send, hours, pushed, reasons)


def simulate_push(
    world: World,
    policies: Mapping[str, SendTimePolicy],
    users: np.ndarray,
    items: np.ndarray,
    days: int = 14,
    model: PushModel | None = None,
    seed: int = 0,
    salt: str = "push",
    profiles: np.ndarray | None = None,
) -> pd.DataFrame:
    """A `days`-long A/B test of send-time `policies`: `users` (user indices) are split by
    the hash of their id (`assign`), and each is pushed once a day, at their arm's hour,
    the items of their row of `items` (user index x slots, -1 padded). Per-user totals:
    arm, pushes, opens, clicks, click_pushes (opened pushes with a click), expected_opens
    (the sum of the true open probabilities) and the mean activity share at the send
    hours (`mean_share`). `profiles` default to `activity_profiles` of the world."""
    if days < 1:
        raise ConfigError(f"days must be >= 1, got {days}")
    arms = list(policies)
    if not arms:
        raise ConfigError("a push test needs at least one policy")
    model = model or PushModel()
    users = np.asarray(users, dtype=np.int64)
    if users.size == 0:
        raise ConfigError("no users to push to")
    if profiles is None:
        profiles = activity_profiles(world.tastes.preferred_hour)
    rng = np.random.default_rng(seed)
    arm_of = assign(world.user_ids[users].tolist(), arms, salt)
    slates = np.asarray(items, dtype=np.int64)[users]
    totals = {k: np.zeros(users.size) for k in ("pushes", "opens", "clicks", "click_pushes",
                                                "expected_opens", "share_sum")}  # fmt: skip
    p_click = world.click_probabilities(users, slates)  # per slot, given the push is opened
    for day in range(days):
        hours = np.empty(users.size, dtype=np.int64)
        for a, arm in enumerate(arms):
            rows = np.flatnonzero(arm_of == a)
            if rows.size:
                hours[rows] = policies[arm].hours(users[rows], day, rng)
        if hours.min() < 0 or hours.max() > 23:
            raise ConfigError("a send-time policy returned an hour outside 0-23")
        shares = profiles[users, hours]
        p_open = open_probability(shares, totals["pushes"], model)
        opened = rng.random(users.size) < p_open
        clicks = opened[:, None] & (rng.random(slates.shape) < p_click)
        n_clicks = clicks.sum(axis=1)
        totals["pushes"] += 1
        totals["opens"] += opened
        totals["clicks"] += n_clicks
        totals["click_pushes"] += n_clicks > 0
        totals["expected_opens"] += p_open
        totals["share_sum"] += shares
    frame = pd.DataFrame({"user": users, "arm": np.asarray(arms)[arm_of]})
    for name, values in totals.items():
        if name != "share_sum":
            frame[name] = values
    frame["mean_share"] = totals["share_sum"] / days
    return frame


PUSH_METRICS: dict[str, tuple[str, str]] = {
    "open_rate": ("opens", "pushes"),
    "click_rate": ("click_pushes", "pushes"),
    "clicks_per_push": ("clicks", "pushes"),
}
"""Push metrics: (per-user numerator, denominator) columns of `simulate_push`'s totals."""


def push_report(totals: pd.DataFrame, arms: Sequence[str] | None = None) -> dict[str, Any]:
    """Per arm: each of `PUSH_METRICS` with its 95% interval (delta method over users), the
    true open rate and the mean activity share at the send hours; then every pair of arms
    (earlier as control `a`) compared on each metric (`compare_ratios`)."""
    arms = list(arms) if arms is not None else list(dict.fromkeys(totals["arm"]))
    z = float(sps.norm.ppf(0.975))
    policies: dict[str, Any] = {}
    for arm in arms:
        part = totals[totals["arm"] == arm]
        row: dict[str, Any] = {"users": len(part), "pushes": int(part["pushes"].sum())}
        ci: dict[str, list[float]] = {}
        for metric, (num, den) in PUSH_METRICS.items():
            value, var, _ = ratio_and_variance(part[num], part[den], arm)
            row[metric] = round(value, 6)
            ci[metric] = [round(value - z * var**0.5, 6), round(value + z * var**0.5, 6)]
        row["true_open_rate"] = round(float(part["expected_opens"].sum() / part["pushes"].sum()), 6)
        row["mean_activity_share"] = round(float(part["mean_share"].mean()), 6)
        row["ci95"] = ci
        policies[arm] = row
    comparisons = []
    for a, b in combinations(arms, 2):
        pa, pb = totals[totals["arm"] == a], totals[totals["arm"] == b]
        for metric, (num, den) in PUSH_METRICS.items():
            c = compare_ratios(pa[num], pa[den], pb[num], pb[den])
            comparisons.append({
                "a": a, "b": b, "metric": metric, "diff": c.diff, "lift": c.lift,
                "ci95": list(c.ci95), "lift_ci95": list(c.lift_ci95), "p_value": c.p_value,
            })  # fmt: skip
    return {"policies": policies, "comparisons": comparisons}
