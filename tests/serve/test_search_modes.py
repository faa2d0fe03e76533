"""Semantic and hybrid search served by GET /v1/search: a store whose shoppers search and
click, a bundle whose re-ranker is trained with the dense features, the `mode` parameter,
filters over dense candidates, items added through the API found semantically, and the
lexical fallback when dense retrieval is off. The real MiniLM model, offline; no mocks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shelfwise.artifacts import build_bundle, ensure_bundle
from shelfwise.data.frames import records_to_frame
from shelfwise.data.schemas import Event, Item
from shelfwise.serve.app import create_app
from shelfwise.serving import Engine
from shelfwise.settings import PathSettings, SearchSettings, ServeSettings, Settings
from shelfwise.store import Store, open_store

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
ITEMS = [
    Item(item_id="SOFA", title="Grey Fabric Three-Seater Sofa", category="Home > Living > Sofas",
         brand="Lounger", price=499),
    Item(item_id="CHAIR", title="Leather Armchair", category="Home > Living > Chairs",
         brand="Lounger", price=249),
    Item(item_id="LAMP", title="Brass Floor Lamp", category="Home > Living > Lighting",
         brand="Woodly", price=120),
    Item(item_id="K1", title="Chef Knife", category="Home > Kitchen > Knives", brand="Acme",
         price=40),
    Item(item_id="K2", title="Bread Knife", category="Home > Kitchen > Knives", brand="Acme",
         price=25),
    Item(item_id="B1", title="Bamboo Cutting Board", category="Home > Kitchen > Boards",
         price=18),
    Item(item_id="H1", title="Wireless Headphones", category="Electronics > Audio > Headphones",
         brand="Sonix", price=99),
    Item(item_id="S1", title="Bluetooth Speaker", category="Electronics > Audio > Speakers",
         brand="Sonix", price=60),
]  # fmt: skip
# (query, clicked item): searched in the last third of 30 days, after 20 days of purchases
SEARCHES = [
    ("knife", "K1"), ("knife", "K2"), ("bread knife", "K2"), ("sofa", "SOFA"),
    ("grey sofa", "SOFA"), ("headphones", "H1"), ("speaker", "S1"), ("armchair", "CHAIR"),
    ("lamp", "LAMP"), ("cutting board", "B1"), ("chef knife", "K1"), ("knife", "K1"),
]  # fmt: skip


def shop_events() -> list[Event]:
    events = []
    for u in range(8):  # history: everyone bought a kitchen or a living-room item
        item = ["K1", "K2", "SOFA", "H1"][u % 4]
        events.append(
            Event(event_id=f"p{u}", user_id=f"u{u}", item_id=item, type="purchase",
                  timestamp=T0 + timedelta(days=u))
        )  # fmt: skip
    for n, (query, item) in enumerate(SEARCHES * 3):
        user, at = f"u{n % 8}", T0 + timedelta(days=21 + n / 5)
        session = f"s{n}"
        events.append(
            Event(event_id=f"q{n}", user_id=user, type="search", query=query,
                  session_id=session, timestamp=at)
        )  # fmt: skip
        events.append(
            Event(event_id=f"c{n}", user_id=user, item_id=item, type="click",
                  session_id=session, timestamp=at + timedelta(minutes=1))
        )  # fmt: skip
    return events


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Path]]:
    root = tmp_path_factory.mktemp("modes")
    patch = pytest.MonkeyPatch()
    patch.setenv("SHELFWISE_CACHE_DIR", str(root / "cache"))
    patch.delenv("SHELFWISE_SEARCH_MODE", raising=False)
    store = open_store(f"duckdb:///{root / 'shop.duckdb'}")
    store.ingest(
        items=records_to_frame("items", ITEMS), events=records_to_frame("events", shop_events())
    )
    try:
        yield store, root
    finally:
        store.close()
        patch.undo()


def test_bundle_trains_the_reranker_with_dense_features_when_asked(
    shop: tuple[Store, Path],
) -> None:
    store, root = shop
    dense, built = ensure_bundle(store, root / "dense", cache_dir=_cache(root), search_dense=True)
    assert built and dense.manifest["search"] == {
        "dense": True, "reranker": True, "reranker_dense": True,
        "reranker_source": "events", "judgements": None,
    }  # fmt: skip
    assert dense.search_reranker.uses_dense
    assert "dense_sim" in dense.search_reranker.model.feature_names
    assert not ensure_bundle(store, root / "dense", cache_dir=_cache(root), search_dense=True)[
        1
    ]  # reused
    assert not ensure_bundle(store, root / "dense", cache_dir=_cache(root))[
        1
    ]  # None: whatever is there
    loaded = ensure_bundle(store, root / "dense", cache_dir=_cache(root))[0]
    assert loaded.search_reranker.uses_dense  # persisted in reranker.json
    # the embeddings came from (and went to) the cache: one segment set, no re-embedding
    assert list((root / "cache" / "embeddings").glob("*/*.keys.npy"))
    lexical = build_bundle(store, root / "lexical", cache_dir=_cache(root), search_dense=False)
    assert lexical.manifest["search"]["dense"] is False
    assert not lexical.search_reranker.uses_dense
    # asking for dense search rebuilds a bundle that was built without
    rebuilt, built = ensure_bundle(
        store, root / "lexical", cache_dir=_cache(root), search_dense=True
    )
    assert built and rebuilt.search_reranker.uses_dense


def _cache(root: Path) -> Path:
    """The embedding cache of this module's bundles and apps."""
    return root / "cache" / "embeddings"


def _client(store: Store, root: Path, name: str, mode: str) -> TestClient:
    bundle, _ = ensure_bundle(
        store, root / name, cache_dir=_cache(root), search_dense=mode != "lexical"
    )
    settings = Settings(
        serve=ServeSettings(auth=False, rate_limit=0, refresh_seconds=0),
        search=SearchSettings(mode=mode),
        paths=PathSettings(cache=root / "cache"),
    )
    return TestClient(create_app(Engine(store, bundle), settings))


def _ids(body: dict) -> list[str]:
    return [i["item_id"] for i in body["items"]]


def test_hybrid_search_over_http(shop: tuple[Store, Path]) -> None:
    store, root = shop
    with _client(store, root, "dense", "hybrid") as client:
        res = client.get("/v1/search", params={"q": "couch"})
        assert res.status_code == 200
        body = res.json()
        assert body["mode"] == "hybrid" and body["engine"] == "service+hybrid+ltr"
        assert "SOFA" in _ids(body)[:3] and body["notice"] is None
        assert "K1" not in _ids(body)  # unrelated items stay out of the dense candidates
        lexical = client.get("/v1/search", params={"q": "couch", "mode": "lexical"}).json()
        assert lexical["total"] == 0 and lexical["mode"] == "lexical"
        semantic = client.get("/v1/search", params={"q": "couch", "mode": "semantic"}).json()
        assert "SOFA" in _ids(semantic)[:3] and semantic["engine"] == "service+semantic+ltr"
        # exact words still win in hybrid mode
        knife = client.get("/v1/search", params={"q": "bread knife", "per_page": 3}).json()
        assert _ids(knife)[0] == "K2"

        bad = client.get("/v1/search", params={"q": "couch", "mode": "fuzzy"})
        assert bad.status_code == 422
        detail = bad.json()["detail"][0]
        assert detail["loc"] == ["query", "mode"]
        assert all(m in detail["msg"] for m in ("lexical", "semantic", "hybrid"))

        # filters, facets, sorting and pages apply to dense candidates too
        audio = client.get(
            "/v1/search", params={"q": "couch", "category": "Electronics", "facets": "category"}
        ).json()
        assert "SOFA" not in _ids(audio)
        assert all(i["category"].startswith("Electronics") for i in audio["items"])
        cheap = client.get(
            "/v1/search", params={"q": "couch", "price_max": 300, "sort": "price_asc"}
        ).json()
        prices = [i["price"] for i in cheap["items"]]
        assert "SOFA" not in _ids(cheap) and prices == sorted(prices) and prices
        one = client.get("/v1/search", params={"q": "couch", "per_page": 1, "page": 2}).json()
        everything = client.get("/v1/search", params={"q": "couch"}).json()
        assert _ids(one) == _ids(everything)[1:2] and one["total"] == everything["total"]

        # an item added through the API is found semantically at once, and gone when deleted
        put = client.put(
            "/v1/items/LOVE",
            json={"title": "Velvet Loveseat", "category": "Home > Living > Sofas", "price": 350},
        )
        assert put.status_code == 200
        found = client.get("/v1/search", params={"q": "small couch for two", "mode": "semantic"})
        assert "LOVE" in _ids(found.json())
        assert client.delete("/v1/items/LOVE").status_code == 200
        gone = client.get("/v1/search", params={"q": "small couch for two", "mode": "semantic"})
        assert "LOVE" not in _ids(gone.json())


def test_semantic_request_without_dense_retrieval_falls_back(shop: tuple[Store, Path]) -> None:
    store, root = shop
    with _client(store, root, "plain", "lexical") as client:
        res = client.get("/v1/search", params={"q": "knife", "mode": "hybrid"})
        assert res.status_code == 200
        body = res.json()
        assert body["mode"] == "lexical" and body["engine"] == "service+ltr"
        assert "not enabled" in body["notice"] and _ids(body)
        plain = client.get("/v1/search", params={"q": "knife"}).json()
        assert plain["notice"] is None and plain["mode"] == "lexical"


def test_build_command_search_mode_flag(shop: tuple[Store, Path]) -> None:
    """`shelfwise build --search-mode hybrid` trains the re-ranker with dense features; the
    flag wins over $SHELFWISE_SEARCH_MODE, and a later lexical build rebuilds without."""
    from shelfwise.cli import main

    store, root = shop
    db = root / "cli.duckdb"
    with open_store(f"duckdb:///{db}") as copy:
        copy.ingest(items=store.items(), events=store.events())
    artifacts = root / "cli-bundle"
    argv = ["build", "--store", f"duckdb:///{db}", "--artifacts", str(artifacts)]
    patch = pytest.MonkeyPatch()
    patch.setenv("SHELFWISE_SEARCH_MODE", "lexical")
    try:
        assert main([*argv, "--search-mode", "hybrid"]) == 0
        with open_store(f"duckdb:///{db}") as copy:
            assert ensure_bundle(copy, artifacts)[0].manifest["search"]["dense"] is True
        assert main([*argv, "--search-mode", "lexical"]) == 0
        with open_store(f"duckdb:///{db}") as copy:
            bundle = ensure_bundle(copy, artifacts)[0]
            assert bundle.manifest["search"]["dense"] is False
            assert not bundle.search_reranker.uses_dense
    finally:
        patch.undo()
    with pytest.raises(SystemExit):
        main([*argv, "--search-mode", "fuzzy"])
