"""Simulated pushes: activity profiles, the open model, send-time policies and the report."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shelfwise.data.demo import DemoConfig
from shelfwise.data.demo.sessions import _HOUR_PROFILE
from shelfwise.errors import ConfigError
from shelfwise.experiments.simulate.policies import fit_policy, history_matrix
from shelfwise.experiments.simulate.push import (
    FixedHour,
    PeakHour,
    PlannedHour,
    PushModel,
    RandomHour,
    SendTimePolicy,
    activity_profiles,
    open_probability,
    planned_pushes,
    push_report,
    simulate_push,
)
from shelfwise.experiments.simulate.world import World
from shelfwise.profiles.push import PushConfig


@pytest.fixture(scope="module")
def world() -> World:
    return World.generate(DemoConfig(seed=5, n_items=300, n_users=400, days=30))


def _phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def test_open_probability_by_hand() -> None:
    model = PushModel(open_intercept=-2.0, open_activity=0.5, push_fatigue=0.8)
    # share 1/12 of the day's activity: relative activity 2, logit -2 + 0.5 * 2 = -1
    first = 1.0 / (1.0 + math.e)
    assert float(open_probability(1 / 12, 0, model)) == pytest.approx(first, abs=1e-12)
    # two pushes already received: 0.8 ** 2 of it
    assert float(open_probability(1 / 12, 2, model)) == pytest.approx(0.64 * first, abs=1e-12)
    # no activity at all: sigmoid(-2)
    assert float(open_probability(0.0, 0, model)) == pytest.approx(1 / (1 + math.exp(2.0)))
    many = open_probability(np.array([0.0, 1 / 12]), np.array([1, 0]), model)
    assert many == pytest.approx([0.8 / (1 + math.exp(2.0)), first])


def test_activity_profile_by_hand() -> None:
    prof = activity_profiles(np.array([20.5, 0.0]))
    assert prof.sum(axis=1) == pytest.approx([1.0, 1.0])
    shop = _HOUR_PROFILE / _HOUR_PROFILE.sum()
    # the hour centred on the preferred hour holds P(|N(0, 1.2)| < 0.5) of the own sessions
    own = _phi(0.5 / 1.2) - _phi(-0.5 / 1.2)
    assert prof[0, 20] == pytest.approx(0.55 * own + 0.45 * shop[20], rel=1e-6)
    assert int(np.argmax(prof[0])) == 20
    # a midnight shopper: the own sessions split evenly between 23:00 and 00:00 (wrapped)
    half = _phi(1 / 1.2) - 0.5
    assert prof[1, 0] == pytest.approx(0.55 * half + 0.45 * shop[0], rel=1e-6)
    assert prof[1, 23] == pytest.approx(0.55 * half + 0.45 * shop[23], rel=1e-6)


def test_peak_hour_among_allowed_hours() -> None:
    prof = activity_profiles(np.array([20.5, 2.5]))
    users, rng = np.array([0, 1]), np.random.default_rng(0)
    assert PeakHour(prof).hours(users, 0, rng).tolist() == [20, 2]
    # outside the quiet hours the night owl's best is the shop's evening peak (20:00)
    assert PeakHour(prof, tuple(range(8, 22))).hours(users, 0, rng).tolist() == [20, 20]
    # mornings only: the shop's lunch peak (12:00) for both
    assert PeakHour(prof, tuple(range(8, 13))).hours(users, 0, rng).tolist() == [12, 12]


def test_peak_hour_beats_an_off_peak_fixed_hour(world: World) -> None:
    users = np.arange(world.n_users)
    items = np.tile(np.arange(3), (world.n_users, 1))
    profiles = activity_profiles(world.tastes.preferred_hour)
    policies: dict[str, SendTimePolicy] = {"fixed_04": FixedHour(4), "peak": PeakHour(profiles)}
    totals = simulate_push(world, policies, users, items, days=7, seed=1)
    again = simulate_push(world, policies, users, items, days=7, seed=1)
    assert totals.equals(again)  # seeded
    assert set(totals["pushes"]) == {7.0}
    out = push_report(totals, list(policies))
    fixed, peak = out["policies"]["fixed_04"], out["policies"]["peak"]
    assert peak["open_rate"] > 2 * fixed["open_rate"]
    assert peak["mean_activity_share"] > fixed["mean_activity_share"]
    lo, hi = peak["ci95"]["open_rate"]
    assert lo <= peak["true_open_rate"] <= hi
    (cmp,) = [c for c in out["comparisons"] if c["metric"] == "open_rate"]
    assert (cmp["a"], cmp["b"]) == ("fixed_04", "peak")
    assert cmp["diff"] > 0 and cmp["p_value"] < 0.01


def test_fatigue_lowers_later_opens(world: World) -> None:
    users = np.arange(world.n_users)
    items = np.full((world.n_users, 1), -1)
    tired = PushModel(push_fatigue=0.5)
    one = simulate_push(world, {"f": FixedHour(20)}, users, items, days=1, model=tired)
    two = simulate_push(world, {"f": FixedHour(20)}, users, items, days=2, model=tired)
    # the second push is opened with half the first one's probability
    assert two["expected_opens"].sum() == pytest.approx(1.5 * one["expected_opens"].sum())
    assert two["clicks"].sum() == 0  # nothing to click in an empty push


def test_planned_pushes_follow_the_planner(world: World) -> None:
    train = history_matrix(world)
    policy = fit_policy("popularity", world, train)
    recs = policy.slates(np.arange(world.n_users), train, 10, np.random.default_rng(0)).ids
    plans = planned_pushes(world, recs)
    config = PushConfig()
    assert plans.send.any()
    sent = plans.hours[plans.send]
    assert not any(config.quiet(int(h)) for h in sent)
    assert (plans.hours[~plans.send] == -1).all()
    # pushed items come from the recommendations, at most max_items of them
    for u in np.flatnonzero(plans.send)[:50].tolist():
        pushed = plans.items[u][plans.items[u] >= 0]
        assert 1 <= pushed.size <= config.max_items
        assert set(pushed.tolist()) <= set(recs[u].tolist())
    hours = PlannedHour(plans.hours).hours(np.flatnonzero(plans.send), 0, np.random.default_rng())
    assert (hours == sent).all()


def test_bad_policies_are_refused(world: World) -> None:
    with pytest.raises(ConfigError, match="hour"):
        FixedHour(24)
    with pytest.raises(ConfigError, match="allowed"):
        RandomHour(())
    users = np.arange(10)
    items = np.zeros((world.n_users, 1), dtype=np.int64)
    with pytest.raises(ConfigError, match="outside 0-23"):
        simulate_push(world, {"bad": PlannedHour(np.full(world.n_users, 30))}, users, items)
    with pytest.raises(ConfigError, match="days"):
        simulate_push(world, {"f": FixedHour(3)}, users, items, days=0)
