"""The shopper simulator: the choice model's ground truth, the day loop, drivers and report."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import scipy.sparse as sp

from shelfwise.data.demo import DemoConfig, generate
from shelfwise.errors import ConfigError
from shelfwise.experiments.simulate.policies import (
    EpsilonGreedyPolicy,
    RandomPolicy,
    Slates,
    fit_policy,
    history_matrix,
    library_policies,
)
from shelfwise.experiments.simulate.report import METRICS, report
from shelfwise.experiments.simulate.run import LibraryDriver, assign, simulate
from shelfwise.experiments.simulate.world import ShopperModel, World, examination, sigmoid
from shelfwise.experiments.stats import srm_check

SMALL = DemoConfig(seed=3, n_items=400, n_users=300, days=30)


@pytest.fixture(scope="module")
def world() -> World:
    return World.generate(SMALL)


@dataclass
class FixedPolicy:
    """Shows every visit the same items (a test policy: the simulator reacts to it)."""

    items: np.ndarray
    name: str = "fixed"

    def slates(
        self, users: np.ndarray, histories: sp.csr_matrix, k: int, rng: np.random.Generator
    ) -> Slates:
        return Slates(np.tile(self.items[:k], (users.size, 1)))


@dataclass
class OraclePolicy:
    """Ranks by the shoppers' true utility (the best any policy could do)."""

    world: World
    name: str = "oracle"

    def slates(
        self, users: np.ndarray, histories: sp.csr_matrix, k: int, rng: np.random.Generator
    ) -> Slates:
        u = self.world.utility(users[:, None], np.arange(self.world.n_items)[None, :])
        rows = np.repeat(np.arange(users.size), np.diff(histories.indptr))
        u[rows, histories.indices] = -np.inf
        return Slates(np.argsort(-u, axis=1, kind="stable")[:, :k])


def test_world_continues_the_demo_store(world: World) -> None:
    demo = generate(SMALL)
    assert world.store.events.equals(demo.events)
    assert world.store.items.equals(demo.items)
    assert world.n_users == 300 and world.n_items == 400
    assert world.start == int(SMALL.end.timestamp()) // 86400 * 86400 + 86400


def test_examination_is_position_bias_times_fatigue() -> None:
    e = examination(np.array([0, 1, 3]), np.array([0, 0, 2]), fatigue=0.5)
    assert e == pytest.approx([1.0, 1 / np.log2(3), 0.25 / np.log2(5)])


def test_click_probabilities_by_hand(world: World) -> None:
    users, slate = np.array([5]), np.array([[7, 11, -1]])
    m = world.model
    t, cat = world.tastes, world.catalog
    u = 5

    def utility(i: int) -> float:
        leaf = t.leaf_preference[u, cat.leaf[i]] * len(t.leaf_preference[0])
        diff = cat.rel_log_price[i] - t.price_preference[u]
        fit = -(diff**2) / (2 * t.price_tolerance[u] ** 2)
        brand = t.brand_affinity[u, cat.brand[i]]
        return float(np.log(leaf + 0.05) + 0.6 * brand + fit + 0.35 * cat.quality[i])

    own = m.clickiness_sd * world.clickiness[u]

    def logistic(x: float) -> float:
        return 1.0 / (1.0 + math.exp(-x))

    expected = [
        logistic(m.click_intercept + own + m.click_taste * utility(7)),
        logistic(m.click_intercept + own + m.click_taste * utility(11)) / math.log2(3),
        0.0,
    ]
    assert world.click_probabilities(users, slate)[0] == pytest.approx(expected)
    # a visit in a better mood clicks more; earlier exposures lower the attention
    assert (world.click_probabilities(users, slate, moods=np.array([1.0]))[0, :2] >
            world.click_probabilities(users, slate)[0, :2]).all()  # fmt: skip
    tired = world.click_probabilities(users, slate, exposures=np.array([[1, 0, 0]]))
    assert tired[0, 0] == pytest.approx(expected[0] * m.fatigue)


def test_shopper_model_refuses_bad_parameters() -> None:
    with pytest.raises(ConfigError, match="fatigue"):
        ShopperModel.make(fatigue=1.5)
    with pytest.raises(ConfigError, match="unknown_knob"):
        ShopperModel.make(unknown_knob=1.0)


def test_assignment_is_sticky_deterministic_and_balanced() -> None:
    ids = [f"U-{i}" for i in range(6000)]
    a = assign(ids, ["x", "y", "z"], "salt-1")
    assert (a == assign(ids, ["x", "y", "z"], "salt-1")).all()
    assert (a != assign(ids, ["x", "y", "z"], "salt-2")).mean() > 0.5
    _, p = srm_check(np.bincount(a, minlength=3).tolist(), [1, 1, 1])
    assert p > 0.001


def test_simulation_is_deterministic_and_totals_add_up(world: World) -> None:
    train = history_matrix(world)
    policies = {"rnd": RandomPolicy(world.n_items), "pop": fit_policy("popularity", world, train)}

    def run() -> tuple[object, object]:
        result = simulate(world, LibraryDriver(world, policies, train), ["rnd", "pop"], days=4,
                          seed=5)  # fmt: skip
        return result, report(result)

    (r1, rep1), (r2, _) = run(), run()
    assert r1.totals.equals(r2.totals)  # type: ignore[attr-defined]
    totals = r1.totals  # type: ignore[attr-defined]
    assert (totals["impressions"] == totals["sessions"] * world.model.slate_size).all()
    assert (totals["purchases"] <= totals["carts"]).all()
    assert (totals["carts"] <= totals["clicks"]).all()
    pop = totals[totals["arm"] == "pop"]
    got = rep1["policies"]["pop"]  # type: ignore[index]
    assert got["ctr"] == pytest.approx(pop["clicks"].sum() / pop["impressions"].sum())
    assert got["conversion_rate"] == pytest.approx(
        pop["purchase_sessions"].sum() / pop["sessions"].sum()
    )
    assert got["ci95"]["ctr"][0] < got["ctr"] < got["ci95"]["ctr"][1]
    comparisons = rep1["comparisons"]  # type: ignore[index]
    assert [(c["a"], c["b"], c["metric"]) for c in comparisons] == [
        ("rnd", "pop", m) for m in METRICS
    ]


def test_fatigue_lowers_the_clicks_on_a_list_shown_again(world: World) -> None:
    train = history_matrix(world)
    fixed = FixedPolicy(np.arange(20))
    model = world.model.model_copy(update={"fatigue": 0.3, "sessions_per_user_day": 1.0})
    tired = World(world.store, world.catalog, world.tastes, model)
    res = simulate(tired, LibraryDriver(tired, {"f": fixed}, train), ["f"], days=3, seed=1)
    per_visit = res.totals["expected_clicks"].sum() / res.totals["sessions"].sum()
    fresh = tired.click_probabilities(np.arange(300), np.tile(np.arange(10), (300, 1))).sum(1)
    assert per_visit < 0.8 * fresh.mean()


def test_histories_grow_with_what_shoppers_did(world: World) -> None:
    train = history_matrix(world)
    driver = LibraryDriver(world, {"o": OraclePolicy(world)}, train)
    res = simulate(world, driver, ["o"], days=3, seed=2)
    clicked = res.totals["clicks"].to_numpy() > 0
    users = np.flatnonzero(clicked)
    grown = driver.histories(users).sum(axis=1).A1 - train[users].sum(axis=1).A1
    assert (grown >= 2.0).all()  # a click and its view weigh 1 each


def test_the_oracle_beats_random_in_true_click_through(world: World) -> None:
    train = history_matrix(world)
    policies = {"rnd": RandomPolicy(world.n_items), "oracle": OraclePolicy(world)}
    res = simulate(world, LibraryDriver(world, policies, train), list(policies), days=3, seed=3)
    rep = report(res)["policies"]
    assert rep["oracle"]["true_ctr"] > 5 * rep["rnd"]["true_ctr"]


def test_personalised_beats_popularity_on_conversion_in_14_days() -> None:
    """The issue's target on a small world: itemknn over popularity, p < 0.01."""
    world = World.generate(DemoConfig(seed=42, n_items=2000, n_users=3000, days=60))
    arms = {"pop": "popularity", "knn": "itemknn"}
    driver = LibraryDriver(world, library_policies(world, arms), history_matrix(world))
    out = report(simulate(world, driver, list(arms), days=14, seed=0))
    conv = next(c for c in out["comparisons"] if c["metric"] == "conversion_rate")
    assert (conv["a"], conv["b"]) == ("pop", "knn")
    assert conv["lift"] > 0 and conv["p_value"] < 0.01


def test_library_policies_share_fits_and_refuse_unknown_models(world: World) -> None:
    pols = library_policies(world, {"a": "default", "b": "itemknn", "c": "random"})
    assert pols["a"] is not pols["c"]
    assert type(pols["c"]).__name__ == "RandomPolicy"
    with pytest.raises(ConfigError, match="unknown policy model 'nope'"):
        library_policies(world, {"a": "nope"})


def test_epsilon_greedy_propensities_are_exact() -> None:
    rng = np.random.default_rng(0)
    base = FixedPolicy(np.arange(5))
    policy = EpsilonGreedyPolicy(base, epsilon=0.4, top_n=5)
    pool = np.tile(np.arange(5), (20000, 1))
    drawn = policy.explore(pool, 3, rng)
    assert drawn.propensities is not None
    # item 0 at position 0: (1 - 0.4) + 0.4 / 5; item 3 at position 0: 0.4 / 5
    assert drawn.propensities[drawn.ids[:, 0] == 0, 0] == pytest.approx(0.68)
    assert drawn.propensities[drawn.ids[:, 0] == 3, 0] == pytest.approx(0.08)
    assert (drawn.ids[:, 0] == 0).mean() == pytest.approx(0.68, abs=0.015)
    assert (drawn.ids[:, 1] == 4).mean() == pytest.approx(0.08, abs=0.01)
    with pytest.raises(ConfigError, match="epsilon"):
        EpsilonGreedyPolicy(base, epsilon=0.0)
    with pytest.raises(ConfigError, match="exceeds"):
        policy.slates(np.arange(2), sp.csr_matrix((2, 5)), 6, rng)


def test_visit_events_are_in_the_event_layout(world: World) -> None:
    from shelfwise.experiments.simulate.run import Shown, Visits

    ids = np.array([[3, 4], [5, 6]])
    clicks = np.array([[True, False], [False, True]])
    carts = np.array([[True, False], [False, False]])
    visits = Visits(
        "a", 0, np.array([0, 1]), np.array([1_000_000, 2_000_000]), ["s0", "s1"],
        Shown(Slates(ids), ["r0", "r1"]), clicks, carts, carts, clicks.astype(float),
    )  # fmt: skip
    ev = visits.events(world)
    assert ev["type"].tolist() == ["click", "view", "add_to_cart", "purchase", "click", "view"]
    assert ev["item_id"].tolist()[:4] == [world.item_ids[3]] * 4
    assert ev["request_id"].tolist() == ["r0"] * 4 + ["r1"] * 2
    assert ev.loc[ev["type"] == "purchase", "value"].tolist() == [world.prices[3]]
    assert ev["timestamp"].is_monotonic_increasing


def test_simulate_refuses_bad_arguments(world: World) -> None:
    driver = LibraryDriver(world, {}, history_matrix(world))
    with pytest.raises(ConfigError, match="days"):
        simulate(world, driver, ["a"], days=0)
    with pytest.raises(ConfigError, match="users"):
        simulate(world, driver, ["a"], users=10_000)
    with pytest.raises(ConfigError, match="distinct"):
        simulate(world, driver, ["a", "a"])
    with pytest.raises(ConfigError, match="does not match"):
        LibraryDriver(world, {}, sp.csr_matrix((2, 2)))


def test_sigmoid_is_the_logistic_function() -> None:
    x = np.array([-30.0, -1.0, 0.0, 2.0])
    assert sigmoid(x) == pytest.approx(1.0 / (1.0 + np.exp(-x)))


def test_assignment_matches_a_live_experiment_with_the_same_salt() -> None:
    from shelfwise.experiments.assignment import ExperimentSpec, VariantConfig
    from shelfwise.experiments.assignment import assign as live_assign

    spec = ExperimentSpec(
        experiment_id="sim-check",
        variants=[VariantConfig(name=n, model=m) for n, m in (("pop", "popularity"),
                                                              ("knn", "itemknn"), ("r", None))],
    )  # fmt: skip
    ids = [f"U-{i:05d}" for i in range(500)]
    ours = assign(ids, ["pop", "knn", "r"], "sim-check")
    assert [["pop", "knn", "r"][a] for a in ours] == [live_assign(u, spec).name for u in ids]


def test_recency_weighting_follows_the_servers_half_life(world: World) -> None:
    from shelfwise.experiments.simulate.run import Shown, Visits, library_driver, server_half_life

    plain, decayed = history_matrix(world), history_matrix(world, half_life_days=7.0)
    # an event exactly 7 days before the start counts half; nothing counts more than fully
    assert decayed.sum() < plain.sum() and (decayed.data <= plain.data + 1e-6).all()
    driver = LibraryDriver(world, {}, decayed, half_life_days=7.0)
    clicks, none = np.array([[True, False]]), np.zeros((1, 2), dtype=bool)
    visits = Visits(
        "a", 14, np.array([3]), np.array([world.start]), ["s"], Shown(Slates(np.array([[5, 6]]))),
        clicks, none, none, clicks.astype(float),
    )  # fmt: skip
    driver.record(visits)
    grown = driver.histories(np.array([3]))[0, 5] - decayed[3, 5]
    assert grown == pytest.approx(2.0 * 2.0**2)  # click + view, two half-lives later
    driver.reset()
    assert driver.histories(np.array([3]))[0, 5] == pytest.approx(decayed[3, 5])
    assert library_driver(world, {"r": "random"}).half_life_days == server_half_life() == 14.0
    assert library_driver(world, {"r": "random"}, half_life_days=None).half_life_days is None
    with pytest.raises(ConfigError, match="half_life_days"):
        LibraryDriver(world, {}, decayed, half_life_days=-1.0)


def test_search_visits_find_what_the_shopper_has_in_mind(world: World) -> None:
    from shelfwise.experiments.simulate.run import Shown, Visits

    rng = np.random.default_rng(0)
    users = np.arange(60)
    intents = world.intents(users, rng)
    # the wanted items come from each shopper's preferred categories
    liked = world.tastes.leaf_preference[users, world.catalog.leaf[intents]]
    assert np.median(liked) > 1.0 / len(world.tastes.leaf_preference[0])
    queries = world.queries(intents, rng)
    driver = LibraryDriver(world, {}, history_matrix(world))
    found = driver.search("a", users, queries, 10, rng).slates.ids
    same_leaf = world.catalog.leaf[np.maximum(found, 0)] == world.catalog.leaf[intents][:, None]
    same_leaf &= found >= 0
    assert same_leaf.sum() / (found >= 0).sum() > 0.5
    # the intent raises the click probability of its category, and of itself the most
    base = world.click_probabilities(users, found)
    wanted = world.click_probabilities(users, found, intents=intents)
    assert (wanted[same_leaf] > base[same_leaf]).all()
    assert np.allclose(wanted[~same_leaf], base[~same_leaf])
    events = Visits(
        "a", 0, users[:1], np.array([world.start]), ["s0"], Shown(Slates(found[:1])),
        np.ones((1, 10), bool), np.zeros((1, 10), bool), np.zeros((1, 10), bool),
        wanted[:1], queries[:1],
    ).events(world)  # fmt: skip
    assert events["type"].iloc[0] == "search" and events["query"].iloc[0] == queries[0]
    assert events["item_id"].iloc[0] is None


def test_a_simulation_with_searches_counts_them(world: World) -> None:
    searching = World(world.store, world.catalog, world.tastes,
                      world.model.model_copy(update={"search_rate": 0.5}))  # fmt: skip
    driver = LibraryDriver(searching, {"r": RandomPolicy(world.n_items)}, history_matrix(world))
    res = simulate(searching, driver, ["r"], days=3, seed=4)
    t = res.totals
    assert 0.35 < t["searches"].sum() / t["sessions"].sum() < 0.65
    # searches find wanted items, random lists rarely: more clicks than browsing alone
    browse = simulate(world, LibraryDriver(world, {"r": RandomPolicy(world.n_items)},
                      history_matrix(world)), ["r"], days=3, seed=4).totals  # fmt: skip
    assert t["clicks"].sum() / t["impressions"].sum() > 2 * (
        browse["clicks"].sum() / browse["impressions"].sum()
    )
