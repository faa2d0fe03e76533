"""The simulator driving the real HTTP API (the app over a DuckDB store of its world)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from shelfwise.artifacts import ensure_bundle
from shelfwise.data.demo import DemoConfig
from shelfwise.errors import ConfigError
from shelfwise.experiments.simulate.http import HttpDriver
from shelfwise.experiments.simulate.report import report
from shelfwise.experiments.simulate.run import simulate
from shelfwise.experiments.simulate.world import World
from shelfwise.serve import create_app
from shelfwise.serving import Engine
from shelfwise.settings import ServeSettings, Settings
from shelfwise.store import Store, open_store

SMALL = DemoConfig(seed=9, n_items=300, n_users=200, days=20)


@pytest.fixture(scope="module")
def world() -> World:
    return World.generate(SMALL)


@pytest.fixture()
def served(world: World, tmp_path: Path) -> Iterator[tuple[Store, TestClient]]:
    store = open_store(f"duckdb:///{tmp_path / 'sim.duckdb'}")
    store.ingest(items=world.store.items, users=world.store.users, events=world.store.events)
    bundle, _ = ensure_bundle(store, tmp_path / "artifacts")
    app = create_app(Engine(store, bundle), Settings(serve=ServeSettings(auth=False, rate_limit=0)))
    with TestClient(app) as client:
        yield store, client
    store.close()


def test_simulated_shoppers_use_the_api_and_post_their_events(
    world: World, served: tuple[Store, TestClient]
) -> None:
    store, client = served
    before = store.counts()["events"]
    driver = HttpDriver(world, {"a": "default", "b": "popularity", "c": "random"}, client,
                        concurrency=1)  # fmt: skip
    assert driver.check()["status"] == "ready"
    result = simulate(world, driver, ["a", "b", "c"], days=3, users=80, seed=1)
    driver.flush()
    t = result.totals
    served_visits = int(t.loc[t["arm"] != "c", "sessions"].sum())
    assert driver.requests == served_visits > 0  # random is ranked here, not asked for
    expected_events = int(2 * t["clicks"].sum() + t["carts"].sum() + t["purchases"].sum())
    assert driver.posted == expected_events > 0
    assert store.counts()["events"] == before + expected_events
    assert driver.unknown_items == 0
    # every served list has a request id, and the events carry it back for attribution
    assert driver.request_ids_seen == driver.requests
    asked = t[t["arm"] != "c"]
    from_served = int(2 * asked["clicks"].sum() + asked["carts"].sum() + asked["purchases"].sum())
    outcomes = store.outcome_events()
    assert int(outcomes["request_id"].notna().sum()) == from_served > 0
    out = report(result)
    assert set(out["policies"]) == {"a", "b", "c"}

    # the server reacts: an item a shopper just clicked is not recommended to them again
    clicked = store.events()
    sim = clicked[clicked["event_id"].astype(str).str.startswith("sim-")]
    user, item = sim.iloc[0][["user_id", "item_id"]]
    answer = client.get(f"/v1/users/{user}/recommendations", params={"k": 50}).json()
    assert item not in [i["item_id"] for i in answer["items"]]


def test_a_server_with_another_catalogue_is_refused(
    served: tuple[Store, TestClient],
) -> None:
    _, client = served
    other = World.generate(DemoConfig(seed=9, n_items=400, n_users=200, days=20))
    with pytest.raises(ConfigError, match="generate-demo"):
        HttpDriver(other, {"a": "default"}, client).check()


def test_random_arm_is_ranked_locally(world: World, served: tuple[Store, TestClient]) -> None:
    _, client = served
    driver = HttpDriver(world, {"r": "random"}, client)
    shown = driver.show("r", np.arange(5), 10, np.random.default_rng(0))
    assert shown.slates.ids.shape == (5, 10) and driver.requests == 0
    assert shown.request_ids is None


def test_searching_shoppers_use_the_search_api(
    world: World, served: tuple[Store, TestClient]
) -> None:
    store, client = served
    searching = World(world.store, world.catalog, world.tastes,
                      world.model.model_copy(update={"search_rate": 1.0}))  # fmt: skip
    driver = HttpDriver(searching, {"a": "default"}, client, concurrency=1)
    result = simulate(searching, driver, ["a"], days=2, users=40, seed=3)
    driver.flush()
    t = result.totals
    assert t["searches"].sum() == t["sessions"].sum() == driver.requests > 0
    searches = store.events(types=["search"])
    simulated = searches[searches["event_id"].astype(str).str.startswith("sim-")]
    assert len(simulated) == t["searches"].sum()
    assert simulated["query"].notna().all()
    # the search lists' request ids come back with the clicks
    outcomes = store.outcome_events()
    assert int(outcomes["request_id"].notna().sum()) == int(
        2 * t["clicks"].sum() + t["carts"].sum() + t["purchases"].sum()
    )


def test_the_engine_driver_serves_the_chain_in_process(
    world: World, served: tuple[Store, TestClient]
) -> None:
    from shelfwise.experiments.simulate.engine import EngineDriver

    store, client = served
    engine = client.app.state.engine  # type: ignore[attr-defined]
    before = store.counts()["events"]
    searching = World(world.store, world.catalog, world.tastes,
                      world.model.model_copy(update={"search_rate": 0.3}))  # fmt: skip
    driver = EngineDriver(searching, {"a": "default", "b": "tfidf", "r": "random"}, engine)
    result = simulate(searching, driver, ["a", "b", "r"], days=3, users=90, seed=2)
    t = result.totals
    expected = int(
        t["searches"].sum() + 2 * t["clicks"].sum() + t["carts"].sum() + t["purchases"].sum()
    )
    assert driver.appended == expected > 0
    assert store.counts()["events"] == before + expected
    assert t["searches"].sum() > 0
    assert (t.loc[t["sessions"] > 0, "impressions"] > 0).all()  # every visit saw a list
    # what a shopper clicked is in their history now, so it is not recommended again
    clicked = store.events(types=["click"])
    user, item = clicked[clicked["event_id"].str.startswith("sim-engine-")].iloc[-1][
        ["user_id", "item_id"]
    ]
    assert item not in [i["item_id"] for i in engine.recommend(user, 50).items]
