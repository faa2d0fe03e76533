"""`RerankDriver`: two search arms over one service, differing only in the re-ranker."""

from __future__ import annotations

import numpy as np
import pytest

from shelfwise.data.demo import DemoConfig
from shelfwise.errors import ConfigError
from shelfwise.experiments.simulate.policies import history_matrix
from shelfwise.experiments.simulate.report import report
from shelfwise.experiments.simulate.run import simulate
from shelfwise.experiments.simulate.search import RerankDriver
from shelfwise.experiments.simulate.world import ShopperModel, World
from shelfwise.search.build import build_search_service


@pytest.fixture(scope="module")
def world() -> World:
    config = DemoConfig(seed=4, n_items=300, n_users=300, days=30)
    return World.generate(config, ShopperModel(search_rate=1.0))


@pytest.fixture(scope="module")
def driver(world: World) -> RerankDriver:
    return RerankDriver(world, {"plain": False, "ranked": True}, history_matrix(world))


def test_arms_differ_only_in_the_reranker(world: World, driver: RerankDriver) -> None:
    assert driver.service.reranker is not None
    rng = np.random.default_rng(0)
    users = np.arange(40)
    queries = world.queries(world.intents(users, rng), rng)
    plain = driver.search("plain", users, queries, 10, rng).slates.ids
    ranked = driver.search("ranked", users, queries, 10, rng).slates.ids
    for row, query in enumerate(queries.tolist()):
        # the plain arm is the service's own answer without the re-ranker
        expect = driver.service.search(str(query), per_page=10, rerank=False).rows[:10]
        got = plain[row][plain[row] >= 0]
        assert got.tolist() == np.asarray(expect).tolist()
    # the re-ranker re-orders some of the lists (and never adds or drops the depth it sees)
    assert (plain != ranked).any(axis=1).any()


def test_simulated_search_test_reports_both_arms(world: World, driver: RerankDriver) -> None:
    driver.reset()
    result = simulate(world, driver, ["plain", "ranked"], days=2, seed=1, salt="t")
    assert result.totals["searches"].sum() == result.totals["sessions"].sum() > 0
    out = report(result)
    assert set(out["policies"]) == {"plain", "ranked"}
    (ctr,) = [c for c in out["comparisons"] if c["metric"] == "ctr"]
    assert ctr["ci95"][0] <= ctr["diff"] <= ctr["ci95"][1]


def test_bad_arms_are_refused(world: World, driver: RerankDriver) -> None:
    rng = np.random.default_rng(0)
    users, queries = np.arange(2), np.array(["mug", "lamp"], dtype=object)
    with pytest.raises(ConfigError, match="unknown search arm"):
        driver.search("other", users, queries, 5, rng)
    with pytest.raises(ConfigError, match="no browsing policy"):
        driver.show("plain", users, 5, rng)
    plain = build_search_service(world.store.items, world.history, rerank=False)
    with pytest.raises(ConfigError, match="no learned re-ranker"):
        RerankDriver(world, {"on": True}, history_matrix(world), service=plain)
    with pytest.raises(ConfigError, match="at least one arm"):
        RerankDriver(world, {}, history_matrix(world), service=plain)
