"""The demo API end to end over a real DuckDB store (no mocks)."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from shelfwise.data.frames import records_to_frame
from shelfwise.data.schemas import Event, Item
from shelfwise.engine import Engine, ensure_bundle
from shelfwise.serve import create_app
from shelfwise.store import open_store

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ITEMS = [
    Item(
        item_id="K1", title="Chef Knife", brand="Acme", category="Home > Kitchen > Knives", price=40
    ),
    Item(
        item_id="K2",
        title="Bread Knife",
        brand="Acme",
        category="Home > Kitchen > Knives",
        price=25,
    ),
    Item(item_id="B1", title="Bamboo Cutting Board", category="Home > Kitchen > Boards", price=18),
    Item(
        item_id="H1",
        title="Wireless Headphones",
        brand="Sonix",
        category="Electronics > Audio > Headphones",
        price=99,
    ),
    Item(
        item_id="H2",
        title="Headphone Stand",
        category="Electronics > Audio > Accessories",
        price=15,
        description="holds wireless headphones",
    ),
]
# kitchen users buy K1+K2+B1 together, audio users H1+H2; K1 is the most popular overall
BASKETS = {
    "u1": ["K1", "K2", "B1"],
    "u2": ["K1", "K2", "B1"],
    "u3": ["K1", "K2"],
    "u4": ["H1", "H2"],
    "u5": ["H1", "H2"],
    "u6": ["K1", "H1"],
    "u7": ["K1"],
}


@pytest.fixture()
def client(tmp_path):
    events = [
        Event(
            event_id=f"{u}-{i}",
            user_id=u,
            item_id=item,
            type="purchase",
            timestamp=T0 + timedelta(minutes=i),
        )
        for u, items in BASKETS.items()
        for i, item in enumerate(items)
    ]
    store = open_store(f"duckdb:///{tmp_path / 'api.duckdb'}")
    store.ingest(items=records_to_frame("items", ITEMS), events=records_to_frame("events", events))
    bundle, built = ensure_bundle(store, tmp_path / "artifacts")
    assert built
    with TestClient(create_app(Engine(store, bundle))) as c:
        yield c, store, tmp_path
    store.close()


def test_search_bm25_over_titles(client):
    c, _, _ = client
    body = c.get("/v1/search", params={"q": "knife"}).json()
    ids = [r["item_id"] for r in body["results"]]
    assert set(ids) == {"K1", "K2"}
    assert all(r["score"] > 0 and r["title"] for r in body["results"])
    # description and plural/singular both match; title matches rank first
    ids = [r["item_id"] for r in c.get("/v1/search", params={"q": "headphones"}).json()["results"]]
    assert ids[0] == "H1" and "H2" in ids
    assert c.get("/v1/search", params={"q": "zzzz"}).json()["results"] == []


def test_search_validation(client):
    c, _, _ = client
    assert c.get("/v1/search").status_code == 422
    r = c.get("/v1/search", params={"q": "knife", "k": 0})
    assert r.status_code == 422 and "k" in str(r.json()["detail"])


def test_recommendations_personalised_and_fallback(client):
    c, _, _ = client
    body = c.get("/v1/users/u3/recommendations", params={"k": 2}).json()
    assert body["strategy"] == "itemknn"
    assert body["items"][0]["item_id"] == "B1"  # co-bought with K1 and K2
    assert {i["item_id"] for i in body["items"]}.isdisjoint({"K1", "K2"})
    body = c.get("/v1/users/nobody/recommendations", params={"k": 3}).json()
    assert body["strategy"] == "popularity"
    assert body["items"][0]["item_id"] == "K1"
    popular = c.get("/v1/users/u3/recommendations", params={"model": "popularity"}).json()
    assert popular["strategy"] == "popularity"
    r = c.get("/v1/users/u3/recommendations", params={"model": "nope"})
    assert r.status_code == 400 and "choose one of" in r.json()["detail"]


def test_recommendations_follow_new_events_without_retraining(client):
    c, store, _ = client
    assert c.get("/v1/users/newbie/recommendations").json()["strategy"] == "popularity"
    store.append_events(
        records_to_frame(
            "events",
            [Event(user_id="newbie", item_id="H1", type="view", timestamp=T0 + timedelta(days=1))],
        )
    )
    body = c.get("/v1/users/newbie/recommendations", params={"k": 1}).json()
    assert body["strategy"] == "itemknn" and body["items"][0]["item_id"] == "H2"


def test_item_and_health(client):
    c, _, _ = client
    item = c.get("/v1/items/K1").json()
    assert item["title"] == "Chef Knife" and item["attributes"] == {}
    assert c.get("/v1/items/none").status_code == 404
    assert c.get("/healthz").json() == {"status": "ok"}
    ready = c.get("/readyz").json()
    assert ready["items"] == 5 and ready["events"] == 15


def test_bundle_reused_until_store_changes(client):
    _, store, tmp_path = client
    bundle, built = ensure_bundle(store, tmp_path / "artifacts")
    assert not built
    store.upsert_items(records_to_frame("items", [Item(item_id="N1", title="New Knife")]))
    bundle, built = ensure_bundle(store, tmp_path / "artifacts")
    assert built and "N1" in set(bundle.items["item_id"])
    assert isinstance(bundle.items, pd.DataFrame)
