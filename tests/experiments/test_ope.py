"""Off-policy estimators: known answers, and the simulator's ground truth inside the intervals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shelfwise.data.demo import DemoConfig
from shelfwise.data.frames import conform
from shelfwise.errors import DataError
from shelfwise.experiments.assignment import ExperimentSpec
from shelfwise.experiments.attribution import slot_outcomes
from shelfwise.experiments.live import LiveExperiments
from shelfwise.experiments.ope import (
    LoggedSlates,
    PositionItemModel,
    doubly_robust,
    estimate_all,
    ips,
    logged_from_slots,
    snips,
    weights,
)
from shelfwise.experiments.simulate.policies import EpsilonGreedyPolicy, fit_policy, history_matrix
from shelfwise.experiments.simulate.world import World
from shelfwise.store import open_store


def two_item_log() -> LoggedSlates:
    """One slot; the logger shows item 0 with p=0.8 and item 1 with p=0.2 (exactly 20 of
    100 visits); item 1 is always clicked, item 0 never."""
    shown = np.array([[1]] * 20 + [[0]] * 80)
    prop = np.where(shown == 1, 0.2, 0.8)
    return LoggedSlates(shown, prop, shown == 1)


def test_ips_and_snips_known_answers() -> None:
    logged = two_item_log()
    always_1 = np.ones((100, 1), dtype=int)
    always_0 = np.zeros((100, 1), dtype=int)
    assert ips(logged, always_1).value == pytest.approx(1.0)
    assert snips(logged, always_1).value == pytest.approx(1.0)
    assert ips(logged, always_0).value == 0.0
    assert weights(logged, always_1)[:20, 0] == pytest.approx([5.0] * 20)
    assert weights(logged, always_1)[20:, 0].tolist() == [0.0] * 80
    est = ips(logged, always_1)
    assert est.n == 100 and est.ess == pytest.approx(20.0)
    assert est.ci95[0] < 1.0 < est.ci95[1]


def test_doubly_robust_known_answers() -> None:
    logged = two_item_log()
    target = np.ones((100, 1), dtype=int)

    def zero(rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.zeros(items.shape)

    def exact(rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        return (items == 1).astype(float)

    assert doubly_robust(logged, target, zero).value == pytest.approx(ips(logged, target).value)
    perfect = doubly_robust(logged, target, exact)
    assert perfect.value == pytest.approx(1.0) and perfect.se == pytest.approx(0.0)


def test_logged_slates_are_checked() -> None:
    with pytest.raises(DataError, match="propensities"):
        LoggedSlates(np.array([[1, 2]]), np.array([[0.5, 0.0]]), np.zeros((1, 2), bool))
    with pytest.raises(DataError, match="clicks"):
        LoggedSlates(np.array([[1, 2]]), np.array([[0.5, 0.5]]), np.zeros((1, 3), bool))
    logged = two_item_log()
    with pytest.raises(DataError, match="target"):
        ips(logged, np.ones((3, 1), dtype=int))


def test_position_item_model_fits_the_position_curve() -> None:
    shown = np.array([[0, 1], [1, 0], [0, 1], [1, 0]])
    clicks = np.array([[1, 0], [1, 0], [0, 0], [1, 1]], dtype=bool)
    model = PositionItemModel.fit(LoggedSlates(shown, np.full((4, 2), 0.5), clicks), 2, prior=0)
    assert model.curve.tolist() == [0.75, 0.25]
    # item 0: 2 clicks where the curve expected 0.75 + 0.25 + 0.75 + 0.25 = 2
    assert model.attraction[0] == pytest.approx(1.0)
    assert model(np.arange(1), np.array([[0, -1]]))[0] == pytest.approx([0.75, 0.0])


def test_estimates_of_a_new_policy_cover_the_simulated_truth() -> None:
    world = World.generate(DemoConfig(seed=11, n_items=600, n_users=1500, days=30))
    train = history_matrix(world)
    knn = fit_policy("itemknn", world, train)
    rng = np.random.default_rng(4)
    users = rng.integers(0, world.n_users, size=15000)
    k, top_n = world.model.slate_size, 20
    pool = knn.slates(users, train[users], top_n, rng).ids
    logging = EpsilonGreedyPolicy(knn, epsilon=0.5, top_n=top_n)
    shown = logging.explore(pool, k, rng)
    assert shown.propensities is not None
    p = world.click_probabilities(users, shown.ids)
    logged = LoggedSlates(shown.ids, shown.propensities, rng.random(p.shape) < p)
    # the new policy: the same candidates ranked by true utility
    util = world.utility(users[:, None], np.maximum(pool, 0))
    target = np.take_along_axis(pool, np.argsort(-util, axis=1), axis=1)[:, :k]
    truth = float(world.click_probabilities(users, target).mean())
    logged_ctr = float(logged.clicks.mean())
    assert truth > 1.2 * logged_ctr  # a real difference to find
    for name, est in estimate_all(logged, target, PositionItemModel.fit(logged, 600)).items():
        assert est.covers(truth), (name, est, truth)
        assert not est.covers(logged_ctr), name


def test_list_ips_known_answers() -> None:
    from shelfwise.experiments.ope import list_ips

    # one slot: conditional and marginal propensities agree, so list IPS is IPS
    logged = two_item_log()
    target = np.ones((100, 1), dtype=int)
    assert list_ips(logged, target).value == pytest.approx(ips(logged, target).value)
    # two slots: the logger shows [0, 1] with p 0.5 x 1.0 and [1, 0] with 0.5 x 1.0; item 1
    # is clicked wherever it is; the target always shows [1, 0]: CTR per slot 1/2
    shown = np.array([[0, 1], [1, 0]] * 50)
    prop = np.full(shown.shape, 1.0)
    prop[:, 0] = 0.5
    clicks = shown == 1
    est = list_ips(LoggedSlates(shown, prop, clicks), np.tile([1, 0], (100, 1)))
    assert est.value == pytest.approx(0.5)  # half the visits match, weight 2, CTR 1/2
    assert est.ess == pytest.approx(50.0)


def test_list_ips_on_the_live_exploration_covers_the_truth() -> None:
    """The live service's exploration (`assignment.explore`, conditional propensities)
    logged over simulated visits; list IPS of a re-ranking against the simulated truth."""
    from shelfwise.experiments.assignment import Exploration, explore
    from shelfwise.experiments.ope import list_ips

    world = World.generate(DemoConfig(seed=12, n_items=500, n_users=1500, days=30))
    train = history_matrix(world)
    knn = fit_policy("itemknn", world, train)
    rng = np.random.default_rng(8)
    users = rng.integers(0, world.n_users, size=20000)
    k = 3
    pool = knn.slates(users, train[users], k, rng).ids
    exploration = Exploration(kind="epsilon", epsilon=0.5, top_n=k)
    shown, props = np.empty_like(pool), np.empty(pool.shape)
    for row in range(pool.shape[0]):
        items, p = explore(pool[row].tolist(), exploration, rng)
        shown[row], props[row] = items, p
    p_click = world.click_probabilities(users, shown)
    logged = LoggedSlates(shown, props, rng.random(p_click.shape) < p_click)
    target = pool[:, ::-1]  # the candidates in reverse order
    truth = float(world.click_probabilities(users, target).mean())
    est = list_ips(logged, target)
    assert est.covers(truth), (est, truth)
    assert abs(est.value - truth) < 0.25 * truth


def test_marginal_propensities_of_the_live_exploration_feed_the_estimators(
    tmp_path: Path,
) -> None:
    """Live exploration end to end: `LiveExperiments.served` explores ItemKNN's top 10 for
    simulated visits and logs each slot's marginal propensity; the shoppers' clicks come
    back as events with the request ids; `slot_outcomes` attributes them in a real store;
    IPS, SNIPS and doubly robust on `logged_from_slots` cover the simulator's truth for a
    re-ranking of those candidates, which the conditional propensities would not give."""
    world = World.generate(DemoConfig(seed=12, n_items=500, n_users=1500, days=30))
    train = history_matrix(world)
    knn = fit_policy("itemknn", world, train)
    rng = np.random.default_rng(8)
    users = rng.integers(0, world.n_users, size=8000)
    k = 10
    pool = knn.slates(users, train[users], k, rng).ids
    explore = {"kind": "epsilon", "epsilon": 0.5, "top_n": k}
    spec = ExperimentSpec.model_validate({
        "experiment_id": "ope",
        "variants": [{"name": "a", "exploration": explore}, {"name": "b", "exploration": explore}],
    })  # fmt: skip
    index = {str(item): i for i, item in enumerate(world.item_ids)}
    with open_store(f"duckdb:///{tmp_path / 's.duckdb'}") as store:
        live = LiveExperiments(store, seed=3)
        live.create(spec)
        shown = np.empty_like(pool)
        request_ids = []
        for row, user in enumerate(users.tolist()):
            uid = str(world.user_ids[user])
            ids = [str(world.item_ids[i]) for i in pool[row]]
            done = live.served(
                "recommendations", ids, ids, uid, live.decide(uid, "recommendations")
            )
            shown[row] = [index[i] for i in done.items]
            request_ids.append(done.request_id)
        assert live.log.flush(30.0)
        p_click = world.click_probabilities(users, shown)
        r, c = np.nonzero(rng.random(p_click.shape) < p_click)
        store.append_events(conform("events", pd.DataFrame({
            "event_id": [f"e{i}" for i in range(r.size)],
            "user_id": world.user_ids[users[r]],
            "item_id": world.item_ids[shown[r, c]],
            "type": "click",
            "value": np.nan,
            "query": None,
            "session_id": None,
            "timestamp": pd.Timestamp.now(tz="UTC").floor("s"),
            "request_id": np.asarray(request_ids, dtype=object)[r],
        })))  # fmt: skip
        slots = slot_outcomes(store.impressions(), store.outcome_events())
    logged, order = logged_from_slots(slots, index, k)
    assert logged.n == users.size and int(logged.clicks.sum()) == r.size
    row_of = [request_ids.index(x) for x in order[:50]]
    assert (logged.shown[:50] == shown[row_of]).all()  # the store kept every list in order
    visit = np.asarray([request_ids.index(x) for x in order])
    # the new policy: the same candidates by true utility
    cand = pool[visit]
    util = world.utility(users[visit][:, None], cand)
    target = np.take_along_axis(cand, np.argsort(-util, axis=1), axis=1)
    truth = float(world.click_probabilities(users[visit], target).mean())
    logged_ctr = float(logged.clicks.mean())
    assert truth > 1.15 * logged_ctr  # a real difference to find
    for name, est in estimate_all(logged, target, PositionItemModel.fit(logged, 500)).items():
        assert est.covers(truth), (name, est, truth)
        assert not est.covers(logged_ctr), name
    # the conditional propensities (given the items above) are not per-slot ones
    conditional = slots.pivot(index="request_id", columns="position", values="propensity")
    wrong = LoggedSlates(logged.shown, conditional.loc[order].to_numpy(), logged.clicks)
    assert not ips(wrong, target).covers(truth)
