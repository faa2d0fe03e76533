"""The bundle's learned search re-ranker, end to end: trained from a generated store's own
search -> click / purchase events, saved and loaded with the bundle, used by /v1/search."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from shelfwise.artifacts import build_bundle, ensure_bundle
from shelfwise.data.demo import DemoConfig, generate
from shelfwise.serve.app import create_app
from shelfwise.serving import Engine
from shelfwise.settings import ServeSettings, Settings
from shelfwise.store import Store, open_store


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Path]]:
    root = tmp_path_factory.mktemp("rerank")
    demo = generate(DemoConfig(n_items=400, n_users=300, days=30, seed=5))
    store = open_store(f"duckdb:///{root / 'shop.duckdb'}")
    store.upsert_items(demo.items)
    store.append_events(demo.events)
    try:
        yield store, root
    finally:
        store.close()


def _predict(reranker: object) -> np.ndarray:
    model = reranker.model  # type: ignore[attr-defined]
    names = model.feature_names
    x = np.random.default_rng(0).normal(size=(50, len(names)))
    return np.asarray(model.booster.predict(x))


def test_bundle_trains_saves_and_loads_the_reranker(demo_store: tuple[Store, Path]) -> None:
    store, root = demo_store
    bundle, built = ensure_bundle(store, root / "artifacts")
    assert built and bundle.search_reranker is not None
    assert (bundle.directory / "search" / "reranker").is_dir()  # saved with the service
    again, built_again = ensure_bundle(store, root / "artifacts")
    assert not built_again and again.search_reranker is not None
    # same features, same model: the loaded re-ranker scores exactly as the trained one
    a = _predict(bundle.search_reranker)
    b = _predict(again.search_reranker)
    np.testing.assert_allclose(a, b)
    plain = build_bundle(store, root / "plain", search_rerank=False)
    assert plain.search_reranker is None
    assert not (plain.directory / "search" / "reranker").exists()


def test_search_is_reranked_and_personalised(demo_store: tuple[Store, Path]) -> None:
    store, root = demo_store
    bundle, _ = ensure_bundle(store, root / "artifacts")
    app = create_app(
        Engine(store, bundle), Settings(serve=ServeSettings(auth=False, refresh_seconds=0))
    )
    with TestClient(app) as client:
        # a query shoppers typed that matches many items, so there is an order to learn
        for query in store.events(types=["search"])["query"].astype(str).unique():
            anon = client.get("/v1/search", params={"q": query, "per_page": 10})
            if anon.json()["total"] >= 20:
                break
        assert anon.status_code == 200
        assert anon.json()["engine"] == "service+ltr"
        assert anon.json()["items"]
        users = store.events(types=["purchase"])["user_id"].unique()[:20]
        orders = {
            tuple(i["item_id"] for i in client.get(
                "/v1/search", params={"q": query, "per_page": 10, "user": str(u)}
            ).json()["items"])
            for u in users
        }  # fmt: skip
        # shoppers with different histories see different orders of the same matches
        assert len(orders) > 1
        unknown = client.get("/v1/search", params={"q": query, "user": "nobody-at-all"})
        assert unknown.status_code == 200 and unknown.json()["items"]


def test_a_server_starts_on_numpy_trees_and_swaps_lightgbm_in(
    demo_store: tuple[Store, Path],
) -> None:
    """`serve` reads the re-ranker's trees without LightGBM (`search.trees.TreeEnsemble`),
    answers with them, and once ready swaps LightGBM's booster in: the same ranking."""
    import lightgbm as lgb

    from shelfwise.search.trees import TreeEnsemble
    from shelfwise.serve.app import _open_engine
    from shelfwise.serve.search import served_search
    from shelfwise.serve.warmup import use_lightgbm

    store, root = demo_store
    ensure_bundle(store, root / "artifacts")
    settings = Settings().with_(
        store={"url": store.url}, paths={"artifacts": root / "artifacts"}, serve={"auth": False}
    )
    opened, engine = _open_engine(settings)  # what `serve` does at start
    try:
        model = engine.bundle.search.reranker.model  # type: ignore[union-attr]
        assert isinstance(model.booster, TreeEnsemble)
        service = served_search(engine)
        asked = [str(q) for q in store.events(types=["search"])["query"].unique()[:15]]
        before = [[(i["item_id"], i["score"]) for i in service.search(q).items] for q in asked]
        assert asked and any(before)
        assert use_lightgbm(engine)
        assert isinstance(model.booster, lgb.Booster)
        after = [[(i["item_id"], i["score"]) for i in service.search(q).items] for q in asked]
        assert after == before
        assert not use_lightgbm(engine)  # already on LightGBM
    finally:
        opened.close()
