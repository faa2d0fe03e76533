"""Serving a tuned model-store version: its own item order is mapped onto the catalogue."""

from __future__ import annotations

from pathlib import Path

from shelfwise.data.matrix import build_interactions
from shelfwise.modelstore import ModelStore
from shelfwise.recommenders import create

from .conftest import AppFactory


def test_activate_tuned_version_maps_item_ids(
    make_client: AppFactory, shop, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    store, engine = shop
    # trained on the purchases only, with the item vocabulary in its own (first-seen) order,
    # which differs from the bundle's catalogue order
    data = build_interactions(store.interactions(types=["purchase"]))
    assert list(data.items) != list(engine.catalog.item_id[: len(data.items)])
    model = create("itemknn", neighbors=10, shrink=0.0).fit(data)
    version = ModelStore(tmp_path / "models").save_version(
        model, {"validation": {"ndcg@10": 0.5}}, dataset="shop", items=data.items
    )
    client = make_client()
    listed = {v["version"]: v for v in client.get("/v1/models").json()["versions"]}
    assert listed[version]["metrics"] == {"validation": {"ndcg@10": 0.5}}
    assert not listed[version]["active"]
    r = client.post(f"/v1/models/{version}/activate")
    assert r.status_code == 200 and r.json()["active"]
    assert engine.serving_label == f"itemknn@{version}"
    body = client.get("/v1/users/u3/recommendations", params={"k": 1}).json()
    assert body["strategy"] == "personalised" and body["items"][0]["item_id"] == "B1"
    assert body["model"] == f"itemknn@{version}"
    body = client.get("/v1/users/u4/recommendations", params={"k": 1}).json()
    assert body["items"][0]["item_id"] == "K1"  # u6 bought K1 with H1
    metrics = client.get("/metrics").text
    assert f'serving="itemknn@{version}"' in metrics
    assert ModelStore(tmp_path / "models").active().version == version  # type: ignore[union-attr]
